// Failures end to end through bin/bk.js: each one must leave no listed backup, older backups
// intact and verifiable, the destination of a refused restore untouched, and nothing written
// outside a restore's destination.
import { chmod, chown, mkdir, open, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa, execaSync } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, makeTmpDir, rmrf } from '../harness/index.js';
import { storeForeignTar } from '../helpers/foreign-archive.js';
import { BK_BIN, runBk, spawnBk } from '../helpers/run-bk.js';
import { writeRandomFile } from '../helpers/sample-tree.js';
import { listTree } from '../helpers/tree.js';

const EVIL_TAR = fileURLToPath(new URL('../helpers/evil-tar.py', import.meta.url));

interface ListJson {
  backups: { id: string; target: string }[];
}

let work: string;
beforeAll(async () => {
  work = await makeTmpDir('bk-e2e-fail-');
});
afterAll(async () => {
  await rmrf(work);
});

async function listedIds(args: string[]): Promise<string[]> {
  const r = await runBk(['list', ...args, '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.json<ListJson>().backups.map((b) => b.id);
}

async function verifyAll(args: string[]): Promise<void> {
  const r = await runBk(['verify', '--all', ...args]);
  expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
}

/** Waits until a new temp object in `dir` has at least `bytes` bytes: the backup is streaming. */
async function waitForTempFile(dir: string, bytes: number, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  const existing = new Set(await readdir(dir).catch(() => [] as string[]));
  while (Date.now() < until) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.startsWith('.bk-tmp-') || existing.has(name)) continue;
      const s = await stat(join(dir, name)).catch(() => undefined);
      if (s && s.size >= bytes) return name;
    }
    await sleep(10);
  }
  throw new Error(`no temp file of ${bytes} bytes in ${dir} within ${timeoutMs} ms`);
}

function writeConfig(path: string, storagePath: string, targets: Record<string, string>, storageName = 'local'): Promise<void> {
  const lines = ['storages:', `  ${storageName}:`, '    type: local', `    path: ${storagePath}`, 'targets:'];
  for (const [name, source] of Object.entries(targets)) lines.push(`  ${name}:`, '    driver: files', `    source: ${source}`);
  return writeFile(path, `${lines.join('\n')}\n`);
}

describe('interrupted backups: source vanishing, kill -9', () => {
  let config: string;
  let repo: string;
  let src: string;
  let older: string;

  beforeAll(async () => {
    src = join(work, 'big');
    repo = join(work, 'big-repo');
    config = join(work, 'big.yaml');
    await mkdir(src);
    await writeFile(join(src, 'first.txt'), 'the first backup');
    await writeConfig(config, repo, { big: src });
    const r = await runBk(['backup', 'big', '--config', config]);
    expect(r.exitCode, r.stderr).toBe(0);
    older = (await listedIds(['--config', config]))[0]!;
    // Many files in many directories, so the walk is still going when the test strikes.
    for (let d = 0; d < 10; d++) {
      await mkdir(join(src, `d${d}`));
      for (let f = 0; f < 8; f++) await writeRandomFile(join(src, `d${d}`, `f${f}.bin`), 1);
    }
  });

  it('kill -9 mid-backup: no listed backup, the older one intact, leftovers not listed', async () => {
    const child = spawnBk(['backup', 'big', '--config', config]);
    await waitForTempFile(join(repo, 'big'), 4 << 20);
    child.kill('SIGKILL');
    const res = await child;
    expect(res.signal).toBe('SIGKILL');
    expect(await listedIds(['--config', config])).toEqual([older]);
    // The partial object is still there under its temp name, and nothing takes it for a backup.
    const left = (await readdir(join(repo, 'big'))).filter((n) => n.startsWith('.bk-tmp-'));
    expect(left.length).toBeGreaterThan(0);
    await verifyAll(['--config', config]);
  });

  it('the source vanishing mid-backup: non-zero exit, no listed backup, the older one intact', async () => {
    const child = spawnBk(['backup', 'big', '--config', config, '--json']);
    await waitForTempFile(join(repo, 'big'), 2 << 20);
    await rm(src, { recursive: true, force: true });
    const res = await child;
    expect(res.exitCode).toBe(1);
    const doc = JSON.parse(String(res.stdout)) as { results: { status: string; error: { code: string; message: string } }[] };
    expect(doc.results[0]!.status).toBe('failed');
    expect(doc.results[0]!.error.code).toBe('SOURCE');
    expect(doc.results[0]!.error.message).toMatch(/ENOENT|no such file|removed before we read/i);
    expect(doc.results[0]!.error.message).toMatch(/source changed during the backup/);
    expect(res.stderr).toMatch(/reading the source failed/);
    expect(await listedIds(['--config', config])).toEqual([older]);
    // A failed write removes its temp object.
    const before = new Set((await readdir(join(repo, 'big'))).filter((n) => n.startsWith('.bk-tmp-')));
    expect(before.size).toBeLessThanOrEqual(1); // only the kill -9 leftover
    await verifyAll(['--config', config]);
  });
});

describe('a full destination', () => {
  let mnt: string;
  let mounted = false;

  beforeAll(async () => {
    mnt = join(work, 'small-fs');
    await mkdir(mnt);
    const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mnt], { reject: false });
    mounted = m.exitCode === 0;
  });
  afterAll(async () => {
    if (mounted) await execa('umount', [mnt], { reject: false });
  });

  it('fails with exit 1 naming the storage and "no space"; no listed backup, older intact', async (ctx) => {
    if (!mounted) ctx.skip();
    const src = join(work, 'fill');
    await mkdir(src);
    await writeFile(join(src, 'small.txt'), 'fits');
    const config = join(work, 'small.yaml');
    await writeConfig(config, join(mnt, 'repo'), { fill: src }, 'small-disk');
    const first = await runBk(['backup', 'fill', '--config', config, '--json']);
    expect(first.exitCode, first.stderr).toBe(0);
    const older = [first.json<{ results: { id: string }[] }>().results[0]!.id];

    // Big enough that the source is still being read when the disk fills up.
    await writeRandomFile(join(src, 'big.bin'), 24);
    const r = await runBk(['backup', 'fill', '--config', config, '--json']);
    expect(r.exitCode).toBe(1);
    const error = r.json<{ results: { error: { code: string; step: string; message: string } }[] }>().results[0]!.error;
    // The storage is the cause, not the source whose reading it stopped.
    expect(error.code).toBe('STORAGE');
    expect(error.step).toBe('write small-disk');
    expect(error.message).toMatch(/no space left on device/);
    expect(error.message).toMatch(/fix: free space in /);
    expect(r.stderr).toMatch(/small-disk.*no space/);
    expect(await listedIds(['--config', config])).toEqual(older);
    // The partial temp object was removed: the space is free again.
    expect((await readdir(join(mnt, 'repo', 'fill'))).filter((n) => n.startsWith('.bk-tmp-'))).toEqual([]);
    await verifyAll(['--config', config]);
  });
});

describe('a damaged archive', () => {
  let repo: string;
  let id: string;
  let archive: string;

  beforeAll(async () => {
    const src = join(work, 'flip-src');
    repo = join(work, 'flip-repo');
    await mkdir(src);
    await writeRandomFile(join(src, 'data.bin'), 2);
    await writeFile(join(src, 'note.txt'), 'note');
    const r = await runBk(['backup', 'files', '--source', src, '--repo', repo, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    id = r.json<{ results: { id: string }[] }>().results[0]!.id;
    archive = join(repo, 'files', `${id}.tar.zst`);
    // Flip one byte in the middle; the size stays the same.
    const fh = await open(archive, 'r+');
    const { size } = await fh.stat();
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, Math.floor(size / 2));
    b[0] = b[0]! ^ 0x01;
    await fh.write(b, 0, 1, Math.floor(size / 2));
    await fh.close();
  });

  it('verify exits 4 and names the backup', async () => {
    const r = await runBk(['verify', '--repo', repo, '--json']);
    expect(r.exitCode).toBe(4);
    const res = r.json<{ results: { id: string; ok: boolean; stored: boolean; error: string }[] }>().results;
    expect(res).toEqual([expect.objectContaining({ id, ok: false, stored: false })]);
    expect(res[0]!.error).toMatch(/sha256/);
  });

  /** A restore from `from` into a directory with a file in it: exit 4, the damage named, nothing changed or left beside it. */
  async function expectRefusedRestore(from: string, destName: string): Promise<void> {
    const dest = join(work, destName);
    await mkdir(dest);
    await writeFile(join(dest, 'existing.txt'), 'keep me');
    const before = await listTree(dest);
    const siblings = (await readdir(work)).sort();
    const r = await runBk(['restore', 'files', '--repo', from, '--to', dest, '--yes']);
    expect(r.exitCode, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/does not match its manifest/);
    expect(await listTree(dest)).toEqual(before);
    expect((await readdir(work)).sort()).toEqual(siblings);
  }

  it('restore refuses (exit 4) and leaves the destination untouched', async () => {
    await expectRefusedRestore(repo, 'flip-dest');
  });

  it('restore names the damage (exit 4) when the decompressor fails on it first, and leaves no staging behind', async () => {
    // A files restore is checked in flight only; a broken zstd header fails zstd before the
    // archive's checksum is known, and the damage must still be what is reported.
    const copyRepo = join(work, 'header-repo');
    await execa('cp', ['-a', repo, copyRepo]);
    const fh = await open(join(copyRepo, 'files', `${id}.tar.zst`), 'r+');
    await fh.write(Buffer.from([0x00]), 0, 1, 1);
    await fh.close();
    await expectRefusedRestore(copyRepo, 'header-dest');
  });

  it('a truncated archive fails verify too', async () => {
    const copyRepo = join(work, 'trunc-repo');
    await execa('cp', ['-a', repo, copyRepo]);
    const fh = await open(join(copyRepo, 'files', `${id}.tar.zst`), 'r+');
    await fh.truncate(1000);
    await fh.close();
    const r = await runBk(['verify', '--repo', copyRepo]);
    expect(r.exitCode).toBe(4);
  });
});

describe('a bad config', () => {
  it.each([
    ['a misspelt key', 'targets:\n  app:\n    driver: files\n    sorce: /srv\n', /targets\.app\.source: missing.*targets\.app: unknown key sorce/],
    ['a wrong type', 'targets:\n  app:\n    driver: files\n    source: [1, 2]\n', /targets\.app\.source/],
    ['an unknown driver', 'targets:\n  app:\n    driver: oracle\n', /targets\.app\.driver.*oracle/],
    ['an unknown storage', 'storages:\n  local: {type: local, path: /tmp/x}\ntargets:\n  app:\n    driver: files\n    source: /srv\n    storages: [offsite]\n', /targets\.app\.storages\[0\].*offsite/],
    ['a bad target name', 'targets:\n  ../x:\n    driver: files\n    source: /srv\n', /targets\.\.\.\/x.*invalid name/],
    ['an unset variable', 'targets:\n  app:\n    driver: files\n    source: ${BK_TEST_UNSET_VAR}\n', /targets\.app\.source.*BK_TEST_UNSET_VAR/],
    ['broken YAML', 'targets:\n  app:\n    driver: files\n   source: /srv\n', /line \d+/],
  ])('%s: exit 2 with the key path in the message', async (name, yaml, expected) => {
    const file = join(work, `bad-${Math.random().toString(16).slice(2)}.yaml`);
    await writeFile(file, yaml);
    for (const cmd of name === 'a misspelt key' ? [['backup'], ['list'], ['config', 'check']] : [['config', 'check']]) {
      const r = await runBk([...cmd, '--config', file]);
      expect(r.exitCode, `${cmd.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(expected);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });
});

const EVIL_CASES = [
  'dotdot',
  'dotdot-then-more',
  'dotdot-nested',
  'absolute',
  'symlink-abs-write-through',
  'symlink-up-write-through',
  'symlink-deep-write-through',
  'symlink-under-symlink',
  'symlink-dotdot-name',
  'symlink-absolute-name',
  'symlink-replaces-dir',
  'hardlink-abs',
  'hardlink-dotdot',
  'device',
];

describe('a malicious archive', () => {
  let repo: string;
  let outside: string;
  let config: string;
  let beforeOutside: Awaited<ReturnType<typeof listTree>>;
  const before = new Map<string, { dest: Awaited<ReturnType<typeof listTree>>; parent: Awaited<ReturnType<typeof listTree>> }>();
  let results: Map<string, { ok: boolean; error: { code: string; message: string } | null }>;
  let exitCode: number;

  const parentOf = (kind: string) => join(work, `evil-${kind}`);
  const destOf = (kind: string) => join(parentOf(kind), 'dest');

  // Every case is its own configured target whose source is its destination, and one
  // `bk restore --yes` (every target: the whole-system restore) tries them all.
  beforeAll(async () => {
    repo = join(work, 'evil-repo');
    outside = join(work, 'outside');
    config = join(work, 'evil.yaml');
    await mkdir(outside);
    await writeFile(join(outside, 'victim.txt'), 'victim\n');
    const targets: Record<string, string> = {};
    for (const kind of EVIL_CASES) {
      const tar = Buffer.from((await execa('python3', [EVIL_TAR, kind, outside], { encoding: 'buffer' })).stdout);
      await storeForeignTar(repo, kind, tar, destOf(kind));
      await mkdir(destOf(kind), { recursive: true });
      await writeFile(join(destOf(kind), 'existing.txt'), 'keep me');
      // The staging directory lives beside the destination and is gone again afterwards; only
      // the parent's time may change.
      before.set(kind, { dest: await listTree(destOf(kind)), parent: await listTree(parentOf(kind), { dirMtimes: false }) });
      targets[kind] = destOf(kind);
    }
    await writeConfig(config, repo, targets);
    beforeOutside = await listTree(outside);
    const r = await runBk(['restore', '--config', config, '--yes', '--json']);
    exitCode = r.exitCode;
    const doc = r.json<{ results: { target: string; ok: boolean; error: { code: string; message: string } | null }[] }>();
    results = new Map(doc.results.map((x) => [x.target, x]));
  });

  it('every archive is refused: exit 4, nothing outside the destinations changed', async () => {
    expect(exitCode).toBe(4);
    expect([...results.keys()].sort()).toEqual([...EVIL_CASES].sort());
    expect(await listTree(outside)).toEqual(beforeOutside);
    expect(await readFile(join(outside, 'victim.txt'), 'utf8')).toBe('victim\n');
    expect(await readFile('/etc/passwd', 'utf8')).toMatch(/^root:/);
  });

  it.each(EVIL_CASES)('%s: UNSAFE_ARCHIVE, the destination untouched', async (kind) => {
    const res = results.get(kind)!;
    expect(res.ok).toBe(false);
    expect(res.error!.code, res.error!.message).toBe('UNSAFE_ARCHIVE');
    expect(res.error!.message).toMatch(/archive entry refused/);
    expect(await listTree(destOf(kind))).toEqual(before.get(kind)!.dest);
    expect(await listTree(parentOf(kind), { dirMtimes: false })).toEqual(before.get(kind)!.parent);
  });

  it('one target with --id and --to: exit 4 and the same guarantees', async () => {
    const tar = Buffer.from((await execa('python3', [EVIL_TAR, 'symlink-abs-write-through', outside], { encoding: 'buffer' })).stdout);
    const m = await storeForeignTar(repo, 'files', tar, join(work, 'evil-source'));
    const dest = join(work, 'evil-to');
    const siblings = (await readdir(work)).sort();
    const r = await runBk(['restore', 'files', '--repo', repo, '--id', m.id, '--to', dest, '--yes']);
    expect(r.exitCode, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/archive entry refused/);
    expect((await readdir(work)).sort()).toEqual(siblings);
    expect(await listTree(outside)).toEqual(beforeOutside);
  });

  it('a symlink already in the destination is replaced, not written through', async () => {
    const src = join(work, 'legit-src');
    await mkdir(join(src, 'data'), { recursive: true });
    await writeFile(join(src, 'data', 'x.txt'), 'legit');
    const legitRepo = join(work, 'legit-repo');
    const b = await runBk(['backup', 'files', '--source', src, '--repo', legitRepo]);
    expect(b.exitCode, b.stderr).toBe(0);
    const dest = join(work, 'legit-dest');
    await mkdir(dest);
    await symlink(outside, join(dest, 'data'));
    const r = await runBk(['restore', 'files', '--repo', legitRepo, '--to', dest, '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await stat(join(dest, 'data'))).isDirectory()).toBe(true);
    expect(await readFile(join(dest, 'data', 'x.txt'), 'utf8')).toBe('legit');
    expect(await listTree(outside)).toEqual(beforeOutside);
  });
});

describe('an unreadable file (bk runs as nobody)', () => {
  const asNobody = (args: string[]) =>
    execa('runuser', ['-u', 'nobody', '--', process.execPath, BK_BIN, ...args], { env: cleanEnv({ HOME: '/tmp' }), extendEnv: false, reject: false, cwd: '/tmp' });
  let root: string;
  // Root reads everything, so the test needs to drop to another user.
  const canSwitch = process.getuid?.() === 0 && execaSync('runuser', ['-u', 'nobody', '--', 'true'], { reject: false }).exitCode === 0;

  beforeAll(async () => {
    root = join(work, 'as-nobody');
    await mkdir(root);
    await chmod(work, 0o755);
    await chmod(root, 0o755);
  });

  it.skipIf(!canSwitch).each([
    ['a file', 'secret.txt'],
    ['a directory', 'private'],
  ])('%s bk cannot read fails the backup with a clear error', async (_name, unreadable) => {
    const src = join(root, `src-${unreadable}`);
    const repo = join(root, `repo-${unreadable}`);
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'sub', 'readable.txt'), 'ok');
    if (unreadable === 'private') {
      await mkdir(join(src, 'private'));
      await writeFile(join(src, 'private', 'inside.txt'), 'hidden');
      await chmod(join(src, 'private'), 0o700);
    } else {
      await writeFile(join(src, unreadable), 'root only');
      await chmod(join(src, unreadable), 0o600);
    }
    await mkdir(repo);
    const { uid, gid } = await (async () => {
      const id = await execa('id', ['-u', 'nobody']);
      const g = await execa('id', ['-g', 'nobody']);
      return { uid: Number(id.stdout), gid: Number(g.stdout) };
    })();
    await chown(repo, uid, gid);
    const r = await asNobody(['backup', 'files', '--source', src, '--repo', repo]);
    expect(r.exitCode, String(r.stderr)).toBe(1);
    // The result on stdout, the cause logged on stderr too.
    for (const out of [String(r.stdout), String(r.stderr)]) {
      expect(out).toMatch(/EACCES: permission denied|Permission denied/);
      expect(out).toContain(join(src, unreadable));
      expect(out).toMatch(/run bk as a user that can read every file, or exclude/);
      expect(out).not.toMatch(/\n\s+at /);
    }
    expect(await listedIds(['--repo', repo])).toEqual([]);
    // Excluding it makes the backup work.
    const ok = await asNobody(['backup', 'files', '--source', src, '--repo', repo, '--exclude', unreadable]);
    expect(ok.exitCode, String(ok.stderr)).toBe(0);
  });
});
