// Cost of the files driver's restore-test checks (content digest from a tar scanner tapped onto the
// stream, files-tar-tap.ts): GNU tar's stream alone vs the driver's backup stream, each in its own
// process, output discarded. cpu is this process's only (tar's own time is not in it).
//
//   npm run build && node bench/files-digest.mjs [DIR]   # default: a generated tree like
//                                                        # research/toolchain.md §4 (~400 MB)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const child = ['pack', 'backup'].includes(process.argv[2]);
const [mode, root] = child ? process.argv.slice(2) : [undefined, process.argv[2]];

async function one() {
  const { createTar } = await import('../dist/drivers/gnu-tar.js');
  const { FilesDriver } = await import('../dist/drivers/files.js');
  let bytes = 0;
  const count = new Transform({ transform: (c, _e, cb) => ((bytes += c.length), cb(null, c)) });
  const sink = new Writable({ highWaterMark: 1 << 20, write: (_c, _e, cb) => cb() });
  const t0 = performance.now();
  if (mode === 'pack') {
    const tar = createTar(root, []);
    await pipeline(tar.stream, count, sink);
    await tar.done;
  } else {
    const quiet = { info() {}, warn() {}, error() {}, debug() {}, child() { return quiet; } };
    const s = await new FilesDriver('bench', { driver: 'files', source: root, exclude: [] }).backup({ signal: new AbortController().signal, logger: quiet });
    await pipeline(s.stream, count, sink);
    await s.done;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({ mode, mb: bytes / 1e6, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
}

function generate(dir) {
  for (let d = 0; d < 100; d++) {
    mkdirSync(join(dir, 'small', `d${d}`), { recursive: true });
    for (let i = 0; i < 200; i++) writeFileSync(join(dir, 'small', `d${d}`, `f${i}.txt`), randomBytes(2200).toString('hex'));
  }
  const block = randomBytes(1 << 20);
  let fd = openSync(join(dir, 'repeated.bin'), 'w');
  for (let i = 0; i < 150; i++) writeSync(fd, block);
  closeSync(fd);
  fd = openSync(join(dir, 'random.bin'), 'w');
  for (let i = 0; i < 100; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
}

if (mode) {
  await one();
} else {
  const made = root ? undefined : mkdtempSync(join(tmpdir(), 'bk-digest-bench-'));
  const dir = root ?? made;
  try {
    if (made) generate(made);
    const self = fileURLToPath(import.meta.url);
    const runs = [];
    for (let i = 0; i < 3; i++) for (const m of ['pack', 'backup']) runs.push(JSON.parse(execFileSync(process.execPath, [self, m, dir], { encoding: 'utf8' })));
    for (const m of ['pack', 'backup']) {
      const r = runs.filter((x) => x.mode === m);
      const med = (k) => r.map((x) => x[k]).sort((a, b) => a - b)[1];
      console.log(`${m.padEnd(7)} ${r[0].mb.toFixed(0)} MB  wall ${med('seconds').toFixed(2)} s  cpu ${med('cpuSeconds').toFixed(2)} s  maxRSS ${med('maxRssMiB').toFixed(0)} MiB  (median of 3)`);
    }
  } finally {
    if (made) rmSync(made, { recursive: true, force: true });
  }
}
