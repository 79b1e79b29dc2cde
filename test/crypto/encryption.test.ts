// age encryption end to end through bin/bk.js: standard age files the age CLI can open, keys
// checked before a restore touches anything, verify without the key, passphrase mode, rotation,
// and no key material in argv, logs or JSON.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk, spawnBk, type BkRun } from '../helpers/run-bk.js';
import { buildTree, snapshot } from './fixtures.js';
import { makeAgeKey, type AgeKey } from './keys.js';

const PASSPHRASE = 'correct horse battery staple 7';

let dir: string;
let src: string;
let repo: string;
let config: string;
let keyA: AgeKey;
let keyB: AgeKey;
const ageCli = (await execa('age', ['--version'], { reject: false }).catch(() => undefined))?.exitCode === 0;

interface Manifest {
  id: string;
  archive: string;
  encryption: { kind: string; recipients: string[]; passphrase?: boolean } | null;
  stored: { bytes: number; sha256: string };
}

const bk = (args: string[], env: Record<string, string> = {}, cfg = config): Promise<BkRun> => runBk(['--config', cfg, ...args], { env });

async function backup(target: string, cfg = config, env: Record<string, string> = {}): Promise<Manifest> {
  const r = await bk(['backup', target, '--json'], env, cfg);
  expect(r.exitCode, r.stderr).toBe(0);
  const id = r.json<{ results: { id: string }[] }>().results[0]!.id;
  return JSON.parse(await readFile(join(repo, target, `${id}.manifest.json`), 'utf8')) as Manifest;
}

function writeConfig(path: string, targets: string): Promise<void> {
  return writeFile(path, `storages:\n  local: { type: local, path: ${repo} }\ntargets:\n${targets}`);
}

beforeAll(async () => {
  dir = await makeTmpDir('bk-crypt-');
  src = join(dir, 'src');
  repo = join(dir, 'repo');
  await mkdir(src);
  await buildTree(src);
  keyA = await makeAgeKey(dir, 'key-a');
  keyB = await makeAgeKey(dir, 'key-b');
  await writeFile(join(dir, 'passphrase'), `${PASSPHRASE}\n`, { mode: 0o600 });
  config = join(dir, 'backup.config.yaml');
  await writeConfig(
    config,
    [
      `  docs: { driver: files, source: ${src}, encryption: { recipients: [${keyA.recipient}] } }`,
      `  broken: { driver: files, source: ${src}, encryption: { recipients: [${keyA.recipient}] } }`,
      `  both: { driver: files, source: ${src}, encryption: { recipients: [${keyA.recipient}, ${keyB.recipient}] } }`,
      `  secret: { driver: files, source: ${src}, encryption: { passphrase_file: ${join(dir, 'passphrase')} } }`,
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  if (dir) await rmrf(dir);
});

describe('age encryption', () => {
  it('stores a standard age file that bk restores with the identity', async () => {
    const m = await backup('docs');
    expect(m.encryption).toEqual({ kind: 'age', recipients: [keyA.recipient] });
    expect(m.archive).toMatch(/\.tar\.zst\.age$/);
    const stored = await readFile(join(repo, m.archive));
    expect(stored.subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    // The manifest's stored hash is of the encrypted object, so verify needs no key.
    expect(createHash('sha256').update(stored).digest('hex')).toBe(m.stored.sha256);

    const viaEnv = join(dir, 'restored-env');
    const r = await bk(['restore', 'docs', '--to', viaEnv, '--yes'], { BK_AGE_IDENTITY: keyA.identity });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await snapshot(viaEnv)).toEqual(await snapshot(src));

    const viaFlag = join(dir, 'restored-flag');
    const f = await bk(['restore', 'docs', '--to', viaFlag, '--yes', '--identity', keyA.file]);
    expect(f.exitCode, f.stderr).toBe(0);
    expect(await snapshot(viaFlag)).toEqual(await snapshot(src));
  });

  it.skipIf(!ageCli)('the age CLI decrypts a bk archive (age -d | zstd -d | tar -x)', async () => {
    const m = await backup('docs');
    const out = join(dir, 'by-age-cli');
    await mkdir(out);
    await execa('age', ['-d', '-i', keyA.file, join(repo, m.archive)])
      .pipe('zstd', ['-dc'])
      .pipe('tar', ['-xpf', '-', '-C', out]);
    expect(await snapshot(out)).toEqual(await snapshot(src));
  });
  if (!ageCli) it('age CLI test skipped: the age binary is not installed (apt-get install age)', () => undefined);

  it('a wrong or missing key fails before the destination is touched', async () => {
    await backup('docs');
    const parent = join(dir, 'wrong-key');
    const dest = join(parent, 'dest');
    await mkdir(dest, { recursive: true });
    await writeFile(join(dest, 'keep.txt'), 'untouched\n');
    const before = await snapshot(dest);

    const wrong = await bk(['restore', 'docs', '--to', dest, '--yes', '--identity', keyB.file]);
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain(`encrypted to ${keyA.recipient}`);
    expect(wrong.stderr).toContain(keyB.recipient);
    expect(wrong.stderr).toContain('does not open it');
    expect(wrong.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace

    const none = await bk(['restore', 'docs', '--to', dest, '--yes']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('no key was given');

    const missingFile = await bk(['restore', 'docs', '--to', dest, '--yes', '--identity', join(dir, 'nope.txt')]);
    expect(missingFile.exitCode).toBe(2);
    expect(missingFile.stderr).toContain('cannot read the identity file');

    expect(await snapshot(dest)).toEqual(before);
    // Not even a staging directory was made beside it.
    expect(await readdir(parent)).toEqual(['dest']);
  });

  it('verify checks the stored bytes without the key and everything with it; damage is exit 4 either way', async () => {
    const m = await backup('broken');
    type Verify = { results: { ok: boolean; stored: boolean; raw: boolean | null; rawSkipped: string | null }[] };

    const noKey = await bk(['verify', 'broken', '--json']);
    expect(noKey.exitCode, noKey.stderr).toBe(0);
    expect(noKey.json<Verify>().results).toEqual([expect.objectContaining({ ok: true, stored: true, raw: null, rawSkipped: expect.stringMatching(/no key/) })]);

    const withKey = await bk(['verify', 'broken', '--json'], { BK_AGE_IDENTITY: keyA.file });
    expect(withKey.exitCode, withKey.stderr).toBe(0);
    expect(withKey.json<Verify>().results[0]).toMatchObject({ ok: true, stored: true, raw: true });

    // A key that does not open the backup narrows the check; it does not fail it.
    const otherKey = await bk(['verify', 'broken', '--json', '--identity', keyB.file]);
    expect(otherKey.exitCode, otherKey.stderr).toBe(0);
    expect(otherKey.json<Verify>().results[0]).toMatchObject({ ok: true, stored: true, raw: null, rawSkipped: expect.stringMatching(/does not open/) });

    const path = join(repo, m.archive);
    const bytes = await readFile(path);
    bytes[bytes.length >> 1]! ^= 0x40;
    await writeFile(path, bytes);
    const damagedNoKey = await bk(['verify', 'broken', '--json']);
    expect(damagedNoKey.exitCode).toBe(4);
    expect(damagedNoKey.json<Verify>().results[0]).toMatchObject({ ok: false, stored: false });
    const damagedWithKey = await bk(['verify', 'broken', '--json'], { BK_AGE_IDENTITY: keyA.file });
    expect(damagedWithKey.exitCode).toBe(4);
  });

  it('passphrase mode round trip; the passphrase and identities never reach argv, logs or JSON', async () => {
    const secrets = [PASSPHRASE, keyA.identity, keyB.identity];
    const outputs: string[] = [];
    const seenInArgv: string[] = [];
    const watch = (run: ReturnType<typeof spawnBk>) => watchArgv(run, secrets, seenInArgv);

    const b = spawnBk(['--config', config, '--log-level', 'debug', '--log-format', 'json', 'backup', 'secret', '--json']);
    await watch(b);
    const br = await b;
    expect(br.exitCode, String(br.stderr)).toBe(0);
    outputs.push(String(br.stdout), String(br.stderr));
    const id = (JSON.parse(String(br.stdout)) as { results: { id: string }[] }).results[0]!.id;
    const manifestText = await readFile(join(repo, 'secret', `${id}.manifest.json`), 'utf8');
    expect(JSON.parse(manifestText).encryption).toEqual({ kind: 'age', recipients: [], passphrase: true });
    outputs.push(manifestText);

    const dest = join(dir, 'restored-secret');
    const r = spawnBk(['--config', config, '--log-level', 'debug', 'restore', 'secret', '--to', dest, '--yes', '--json']);
    await watch(r);
    const rr = await r;
    expect(rr.exitCode, String(rr.stderr)).toBe(0);
    outputs.push(String(rr.stdout), String(rr.stderr));
    expect(await snapshot(dest)).toEqual(await snapshot(src));

    // A passphrase backup is not opened by an identity (and says what it needs instead).
    const noPassConfig = join(dir, 'nopass.config.yaml');
    await writeConfig(noPassConfig, `  secret: { driver: files, source: ${src}, encryption: { recipients: [${keyA.recipient}], identity_file: ${keyA.file} } }\n`);
    const noPass = await bk(['--log-level', 'debug', 'restore', 'secret', '--to', join(dir, 'nope'), '--yes', '--json'], {}, noPassConfig);
    expect(noPass.exitCode).toBe(2);
    expect(noPass.stderr).toContain('encrypted with a passphrase');
    outputs.push(noPass.stdout, noPass.stderr);

    // Identity given inline in the environment, wrong then right, with debug logs and JSON.
    for (const identity of [keyB.identity, keyA.identity]) {
      const run = spawnBk(['--config', config, '--log-level', 'debug', 'verify', 'docs', '--restore-test', '--json'], { env: { BK_AGE_IDENTITY: identity } });
      await watch(run);
      const res = await run;
      outputs.push(String(res.stdout), String(res.stderr));
    }
    const all = outputs.join('\n');
    for (const s of secrets) expect(all).not.toContain(s);
    expect(seenInArgv).toEqual([]);
  });

  it('rotation: new recipients apply to new backups; old backups stay readable with the old key', async () => {
    const old = await backup('docs');
    const rotated = join(dir, 'rotated.config.yaml');
    await writeConfig(rotated, `  docs: { driver: files, source: ${src}, encryption: { recipients: [${keyB.recipient}] } }\n`);
    const fresh = await backup('docs', rotated);
    expect(fresh.encryption?.recipients).toEqual([keyB.recipient]);

    const restore = (id: string, key: AgeKey, to: string) => bk(['restore', 'docs', '--id', id, '--to', join(dir, to), '--yes', '--identity', key.file], {}, rotated);
    expect((await restore(old.id, keyA, 'rot-old')).exitCode).toBe(0);
    expect((await restore(fresh.id, keyA, 'rot-fresh-a')).exitCode).toBe(2);
    expect((await restore(fresh.id, keyB, 'rot-fresh-b')).exitCode).toBe(0);
    expect(await snapshot(join(dir, 'rot-fresh-b'))).toEqual(await snapshot(src));
  });

  it('several recipients: any one identity opens the backup', async () => {
    const m = await backup('both');
    expect(m.encryption?.recipients).toEqual([keyA.recipient, keyB.recipient]);
    for (const key of [keyA, keyB]) {
      const to = join(dir, `both-${key.recipient.slice(-6)}`);
      const r = await bk(['restore', 'both', '--to', to, '--yes', '--identity', key.file]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await snapshot(to)).toEqual(await snapshot(src));
    }
  });

  it('config check reports what a target encrypts to and whether the identity here fits it', async () => {
    type Check = { findings: { subject: string; name: string; ok: boolean; detail: string }[] };
    const find = (r: BkRun) => r.json<Check>().findings.filter((f) => f.subject === 'target docs' && ['encryption', 'identity'].includes(f.name));
    const good = await bk(['config', 'check', '--json'], { BK_AGE_IDENTITY: keyA.file });
    expect(find(good)).toEqual([
      expect.objectContaining({ name: 'encryption', ok: true, detail: 'age, to 1 recipient' }),
      expect.objectContaining({ name: 'identity', ok: true }),
    ]);
    const wrong = await bk(['config', 'check', '--json'], { BK_AGE_IDENTITY: keyB.identity });
    expect(wrong.exitCode).toBe(2);
    expect(find(wrong)[1]).toMatchObject({ name: 'identity', ok: false, detail: expect.stringContaining('not one of the configured recipients') });
    expect(wrong.stdout + wrong.stderr).not.toContain(keyB.identity);
  });
});

/** Reads every process's argv while `run` is alive and records any that holds a secret. */
async function watchArgv(run: Promise<unknown>, secrets: string[], seen: string[]): Promise<void> {
  let done = false;
  void run.finally(() => (done = true));
  while (!done) {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      const file = `/proc/${pid}/cmdline`;
      if (!existsSync(file)) continue;
      let argv = '';
      try {
        argv = readFileSync(file, 'latin1');
      } catch {
        continue;
      }
      if (secrets.some((s) => argv.includes(s))) seen.push(argv.replace(/\0/g, ' '));
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
