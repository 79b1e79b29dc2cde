// Throughput and peak RSS of the two ways bk could stream age: in-process (age-encryption's web
// streams) and the `age` binary through a pipe. Each run is its own process so maxRSS is its own.
//
//   node bench/age.mjs            # runs every case, prints a table
//   node bench/age.mjs <case> <MiB>   # one case (used by the table runner)
//
// Input is incompressible (compressed dumps are), fed in 1 MiB chunks with backpressure.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, createWriteStream, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const CHUNK = 1 << 20;
const pattern = randomBytes(8 * CHUNK);

function source(mib) {
  let i = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (i >= mib) return this.push(null);
      const off = (i % 8) * CHUNK;
      i++;
      this.push(pattern.subarray(off, off + CHUNK));
    },
  });
}
const sink = () => new Writable({ highWaterMark: CHUNK, write: (_c, _e, cb) => cb() });

async function inProcessEncrypt(mib, recipient, out) {
  const { Encrypter } = await import('age-encryption');
  const e = new Encrypter();
  e.addRecipient(recipient);
  const input = new TransformStream();
  const encrypted = await e.encrypt(input.readable);
  await Promise.all([
    pipeline(source(mib), Writable.fromWeb(input.writable)),
    pipeline(Readable.fromWeb(encrypted), out ? createWriteStream(out) : sink()),
  ]);
}

async function inProcessDecrypt(file, identity) {
  const { Decrypter } = await import('age-encryption');
  const d = new Decrypter();
  d.addIdentity(identity);
  const plain = await d.decrypt(Readable.toWeb(createReadStream(file, { highWaterMark: CHUNK })));
  await pipeline(Readable.fromWeb(plain), sink());
}

/** Runs `age args` under /usr/bin/time; resolves to the child's maxRSS (KiB) and CPU seconds. */
async function binary(args, input) {
  const child = spawn('/usr/bin/time', ['-f', '%M %U %S', 'age', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((res, rej) => child.on('close', (c) => (c === 0 ? res() : rej(new Error(`age exited ${c}: ${err}`)))));
  await Promise.all([pipeline(input, child.stdin), pipeline(child.stdout, sink()), exited]);
  const [kib, user, sys] = err.trim().split('\n').pop().split(' ').map(Number);
  return { kib, cpu: user + sys };
}

async function one(kind, mib, dir) {
  const key = readFileSync(join(dir, 'key.txt'), 'utf8');
  const identity = key.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'));
  const recipient = /public key: (age1\S+)/.exec(key)[1];
  const enc = join(dir, 'data.age');
  const t0 = performance.now();
  let child = { kib: 0, cpu: 0 };
  const c0 = process.cpuUsage();
  if (kind === 'js-encrypt') await inProcessEncrypt(mib, recipient);
  if (kind === 'js-decrypt') await inProcessDecrypt(enc, identity);
  if (kind === 'bin-encrypt') child = await binary(['-r', recipient], source(mib));
  if (kind === 'bin-decrypt') child = await binary(['-d', '-i', join(dir, 'key.txt')], createReadStream(enc, { highWaterMark: CHUNK }));
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6 + child.cpu;
  const size = kind.endsWith('decrypt') ? statSync(enc).size / CHUNK : mib;
  process.stdout.write(JSON.stringify({ kind, mib: Math.round(size), seconds: s, mibPerS: size / s, cpuSeconds: cpu, mibPerCpuS: size / cpu, nodeMaxRssMiB: process.resourceUsage().maxRSS / 1024, childMaxRssMiB: child.kib / 1024 }) + '\n');
}

async function table(mib) {
  const dir = mkdtempSync(join(tmpdir(), 'bk-age-bench-'));
  try {
    execFileSync('age-keygen', ['-o', join(dir, 'key.txt')], { stdio: 'ignore' });
    const key = readFileSync(join(dir, 'key.txt'), 'utf8');
    await inProcessEncrypt(mib, /public key: (age1\S+)/.exec(key)[1], join(dir, 'data.age'));
    // The age CLI must read what age-encryption wrote (and the other way round, below).
    execFileSync('age', ['-d', '-i', join(dir, 'key.txt'), '-o', '/dev/null', join(dir, 'data.age')]);
    const self = fileURLToPath(import.meta.url);
    const rows = [];
    for (const kind of ['js-encrypt', 'bin-encrypt', 'js-decrypt', 'bin-decrypt']) {
      const out = execFileSync(process.execPath, [self, kind, String(mib), dir], { encoding: 'utf8' });
      rows.push(JSON.parse(out));
    }
    console.log(`age streaming, ${mib} MiB incompressible, Node ${process.version}, age ${execFileSync('age', ['--version'], { encoding: 'utf8' }).trim()}`);
    // MiB per CPU second (node + age child) holds up on a busy machine; wall MiB/s does not.
    console.log('case          MiB/s  MiB/cpu-s   node maxRSS  age maxRSS');
    for (const r of rows) {
      console.log(`${r.kind.padEnd(12)} ${r.mibPerS.toFixed(0).padStart(6)}  ${r.mibPerCpuS.toFixed(0).padStart(9)}   ${r.nodeMaxRssMiB.toFixed(0).padStart(6)} MiB  ${r.childMaxRssMiB ? `${r.childMaxRssMiB.toFixed(0).padStart(6)} MiB` : '     -'}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const [kind, mib, dir] = process.argv.slice(2);
if (kind && dir) await one(kind, Number(mib), dir);
else await table(Number(kind ?? 512));

