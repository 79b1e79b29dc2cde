// End to end through bin/bk.js: a tree with everything a directory can hold goes through backup,
// list, verify and restore (with bk, and by hand with zstd and tar) and comes back identical;
// --at, --id, --dry-run and the confirmation rule pick and touch exactly what they should.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';
import { buildSampleTree } from '../helpers/sample-tree.js';
import { listTree, type TreeEntry } from '../helpers/tree.js';

const SHA256 = /^[0-9a-f]{64}$/;
const ID = /^\d{8}T\d{6}Z-[0-9a-f]{4}$/;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface ListJson {
  schemaVersion: number;
  backups: { id: string; target: string; driver: string; finishedAt: string; rawBytes: number; storedBytes: number; sha256: string; storage: string }[];
}

let work: string;
beforeAll(async () => {
  work = await makeTmpDir('bk-e2e-files-');
});
afterAll(async () => {
  await rmrf(work);
});

describe('files: round trip of a full tree', () => {
  let src: string;
  let repo: string;
  let original: TreeEntry[];
  let backupId: string;

  beforeAll(async () => {
    src = join(work, 'src');
    repo = join(work, 'repo');
    await mkdir(src);
    await buildSampleTree(src, { bigFileMiB: 50 });
    original = await listTree(src);
  });

  it('backs up and reports the result as JSON (id, bytes, sha256, seconds, status, error)', async () => {
    const r = await runBk(['backup', 'files', '--source', src, '--repo', repo, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = r.json<{ schemaVersion: number; command: string; results: Record<string, unknown>[] }>();
    expect(doc.schemaVersion).toBe(1);
    expect(doc.command).toBe('backup');
    expect(doc.results).toHaveLength(1);
    const res = doc.results[0]!;
    expect(res).toMatchObject({ target: 'files', status: 'ok', error: null });
    expect(res.id).toMatch(ID);
    expect(res.sha256).toMatch(SHA256);
    expect(typeof res.seconds).toBe('number');
    expect(res.bytes as number).toBeGreaterThan(50 << 20);
    expect(res.rawBytes as number).toBeGreaterThan(res.bytes as number);
    backupId = res.id as string;
    // The stored sha256 is the sha256 of the archive file itself.
    const files = (await readdir(join(repo, 'files'))).sort();
    expect(files).toEqual([`${backupId}.manifest.json`, `${backupId}.tar.zst`]);
    expect(await sha256File(join(repo, 'files', `${backupId}.tar.zst`))).toBe(res.sha256);
    // Backups hold whole databases: directories 0700, objects 0600.
    for (const d of [repo, join(repo, 'files')]) expect((await stat(d)).mode & 0o777).toBe(0o700);
    for (const f of files) expect((await stat(join(repo, 'files', f))).mode & 0o777).toBe(0o600);
  });

  it('lists the backup as JSON (id, target, driver, finishedAt, rawBytes, storedBytes, sha256, storage)', async () => {
    const r = await runBk(['list', '--repo', repo, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = r.json<ListJson>();
    expect(doc.schemaVersion).toBe(1);
    expect(doc.backups).toHaveLength(1);
    const b = doc.backups[0]!;
    expect(b).toMatchObject({ id: backupId, target: 'files', driver: 'files', storage: 'repo' });
    expect(new Date(b.finishedAt).toISOString()).toBe(b.finishedAt);
    expect(b.sha256).toMatch(SHA256);
    expect(b.storedBytes).toBe((await readFile(join(repo, 'files', `${backupId}.tar.zst`))).length);
    const manifest = JSON.parse(await readFile(join(repo, 'files', `${backupId}.manifest.json`), 'utf8')) as { raw: { bytes: number }; contents: string[] };
    expect(b.rawBytes).toBe(manifest.raw.bytes);
    expect(manifest.contents).toEqual([src]);
  });

  it('verifies it (--json: per backup ok, stored and raw checked)', async () => {
    const r = await runBk(['verify', '--repo', repo, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = r.json<{ results: Record<string, unknown>[] }>();
    expect(doc.results).toEqual([expect.objectContaining({ target: 'files', id: backupId, storage: 'repo', ok: true, stored: true, raw: true, error: null })]);
  });

  it('restores byte-identical: types, modes, owners, sizes, sha256, mtimes, link targets, hardlinks', async () => {
    const out = join(work, 'restored');
    const r = await runBk(['restore', 'files', '--repo', repo, '--to', out, '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`restored ${backupId}`);
    expect(await listTree(out)).toEqual(original);
    // Staging directories are cleaned up.
    expect((await readdir(work)).filter((n) => n.startsWith('.bk-restore'))).toEqual([]);
  });

  it('restores over an existing directory: what is not in the backup is removed, changed files are put back', async () => {
    const out = join(work, 'dirty');
    await mkdir(join(out, 'docs'), { recursive: true });
    await writeFile(join(out, 'not-in-backup.txt'), 'junk');
    await writeFile(join(out, 'docs', 'readme.txt'), 'changed');
    const r = await runBk(['restore', 'files', '--repo', repo, '--to', out, '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await listTree(out)).toEqual(original);
  });

  it('--dry-run prints the plan and the manual pipeline, and changes nothing', async () => {
    const out = join(work, 'untouched');
    await mkdir(out);
    await writeFile(join(out, 'keep.txt'), 'keep');
    const before = await listTree(out);
    const siblings = await readdir(work);
    const r = await runBk(['restore', 'files', '--repo', repo, '--to', out, '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(backupId);
    expect(r.stdout).toContain(out);
    expect(r.stdout).toMatch(/zstd -dc .*\.tar\.zst/);
    expect(r.stdout).toContain('tar -xpf -');
    expect(await listTree(out)).toEqual(before);
    expect(await readdir(work)).toEqual(siblings);
  });

  it('without --yes and without a terminal: exit 2, nothing touched', async () => {
    const out = join(work, 'untouched');
    const before = await listTree(out);
    const r = await runBk(['restore', 'files', '--repo', repo, '--to', out]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--yes/);
    expect(await listTree(out)).toEqual(before);
  });

  it('the printed manual pipeline (zstd -dc | tar -xpf -) reproduces the tree without bk', async () => {
    const out = join(work, 'by-hand');
    const r = await runBk(['restore', 'files', '--repo', repo, '--to', out, '--dry-run', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const manual = r.json<{ plan: { manual: string }[] }>().plan[0]!.manual;
    expect(manual).toMatch(/^zstd -dc .* \| .*tar -xpf - -C /);
    await execa('sh', ['-c', manual], { stdin: 'ignore' });
    // GNU tar keeps everything bk's restore keeps (as root also owners), directory times too:
    // the archive is depth first, and GNU tar settles a directory's time when it leaves it.
    expect(await listTree(out)).toEqual(original);
  });

  it('the archive ends within one 10 KiB tar record of its end marker, so tar -x reads it to the end (no SIGPIPE for zstd -dc)', async () => {
    // One 20,000-byte file: GNU tar's 64 KiB record would leave ~40 KiB of padding that a reader
    // with tar's default 10 KiB records never reads, failing `zstd -dc | tar -x` under pipefail.
    const one = join(work, 'one-file');
    await mkdir(one);
    await writeFile(join(one, 'data.bin'), Buffer.alloc(20_000, 0x5a));
    const oneRepo = join(work, 'one-file-repo');
    const r = await runBk(['backup', 'files', '--source', one, '--repo', oneRepo, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const id = r.json<{ results: { id: string }[] }>().results[0]!.id;
    const raw = (await execa('zstd', ['-dc', join(oneRepo, 'files', `${id}.tar.zst`)], { encoding: 'buffer' })).stdout;
    const content = raw.lastIndexOf(0x5a) + 1;
    const trailingZeros = raw.length - content;
    // The last content block's padding, the two-block end marker, and the rest of one 10 KiB record.
    expect(trailingZeros).toBeGreaterThanOrEqual(1024);
    expect(trailingZeros).toBeLessThan(512 + 1024 + 10240);
    expect(raw.length % 10240).toBe(0);
    const listed = await execa('bash', ['-o', 'pipefail', '-c', `zstd -dc ${join(oneRepo, 'files', `${id}.tar.zst`)} | tar -tf -`]);
    expect(listed.stdout.split('\n')).toContain('./data.bin');
  });

  it('restores to the source itself when no --to is given (ad hoc: the path recorded in the manifest)', async () => {
    await writeFile(join(src, 'docs', 'readme.txt'), 'edited after the backup');
    await rm(join(src, 'run.sh'));
    await writeFile(join(src, 'added-later.txt'), 'new');
    const r = await runBk(['restore', 'files', '--repo', repo, '--yes'], { cwd: work });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await listTree(src)).toEqual(original);
  });
});

describe('files: ad hoc use with relative paths', () => {
  it('a relative --source is recorded as an absolute path, so restore from elsewhere goes back there', async () => {
    const home = join(work, 'rel');
    await mkdir(join(home, 'data', 'sub'), { recursive: true });
    await writeFile(join(home, 'data', 'sub', 'f.txt'), 'original');
    const b = await runBk(['backup', 'files', '--source', 'data'], { cwd: home });
    expect(b.exitCode, b.stderr).toBe(0);
    // --repo defaults to ./backups
    expect(await readdir(join(home, 'backups', 'files'))).toHaveLength(2);
    await writeFile(join(home, 'data', 'sub', 'f.txt'), 'changed');
    const r = await runBk(['restore', 'files', '--repo', join(home, 'backups'), '--yes'], { cwd: work });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await readFile(join(home, 'data', 'sub', 'f.txt'), 'utf8')).toBe('original');
    await expect(readdir(join(work, 'data'))).rejects.toThrow(/ENOENT/);
  });
});

describe('files: choosing among several backups (--at, --id)', () => {
  let src: string;
  let config: string;
  const finished: string[] = [];
  const ids: string[] = [];

  const contentOf = async (dir: string) => ({ version: await readFile(join(dir, 'version.txt'), 'utf8'), files: (await readdir(dir)).sort() });

  beforeAll(async () => {
    src = join(work, 'site');
    await mkdir(src);
    config = join(work, 'backup.config.yaml');
    await writeFile(
      config,
      [
        'defaults:',
        '  timezone: Europe/Berlin',
        'storages:',
        '  local:',
        '    type: local',
        `    path: ${join(work, 'site-repo')}`,
        'targets:',
        '  site:',
        '    driver: files',
        `    source: ${src}`,
        '',
      ].join('\n'),
    );
    for (const v of [1, 2, 3]) {
      await writeFile(join(src, 'version.txt'), `v${v}`);
      await writeFile(join(src, `only-in-v${v}.txt`), `v${v}`);
      if (v > 1) await rm(join(src, `only-in-v${v - 1}.txt`));
      const r = await runBk(['backup', 'site', '--config', config, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const list = await runBk(['list', 'site', '--config', config, '--json']);
    for (const b of list.json<ListJson>().backups) {
      finished.push(b.finishedAt);
      ids.push(b.id);
    }
    expect(ids).toHaveLength(3);
  });

  const mid = (a: string, b: string) => new Date((Date.parse(a) + Date.parse(b)) / 2).toISOString();

  it.each([
    ['between the first and the second', () => mid(finished[0]!, finished[1]!), 1],
    ['exactly at the second finish time', () => finished[1]!, 2],
    ['between the second and the third', () => mid(finished[1]!, finished[2]!), 2],
    ['now', () => 'now', 3],
    ['a bare date far in the future', () => '2999-01-01', 3],
  ])('--at %s restores the right content', async (_name, at, version) => {
    const out = join(work, `at-${version}-${Math.random().toString(16).slice(2)}`);
    const r = await runBk(['restore', 'site', '--config', config, '--at', at(), '--to', out, '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    // The resolved instant and the chosen backup are printed before anything is touched.
    expect(r.stderr).toMatch(/restore as of /);
    expect(r.stderr).toContain(ids[version - 1]!);
    expect(await contentOf(out)).toEqual({ version: `v${version}`, files: [`only-in-v${version}.txt`, 'version.txt'] });
  });

  it('--at a bare date before the first backup fails, names the oldest backup, and touches nothing', async () => {
    const out = join(work, 'too-early');
    const r = await runBk(['restore', 'site', '--config', config, '--at', '2000-01-01', '--to', out, '--yes']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(ids[0]!);
    expect(r.stderr).toMatch(/2000-01-01|1999-12-31T23:00:00/);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });

  it('--id restores that backup', async () => {
    const out = join(work, 'by-id');
    const r = await runBk(['restore', 'site', '--config', config, '--id', ids[0]!, '--to', out, '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await contentOf(out)).toEqual({ version: 'v1', files: ['only-in-v1.txt', 'version.txt'] });
  });

  it('--id of a backup that does not exist fails without touching anything', async () => {
    const r = await runBk(['restore', 'site', '--config', config, '--id', '20000101T000000Z-dead', '--yes']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('20000101T000000Z-dead');
    expect(await contentOf(src)).toEqual({ version: 'v3', files: ['only-in-v3.txt', 'version.txt'] });
  });

  it('restore with no target and --at restores every configured target (dry run shows the plan)', async () => {
    const r = await runBk(['restore', '--config', config, '--at', mid(finished[0]!, finished[1]!), '--dry-run', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const plan = r.json<{ plan: { target: string; id: string }[] }>().plan;
    expect(plan).toEqual([expect.objectContaining({ target: 'site', id: ids[0] })]);
  });

  it('verify --all checks every backup', async () => {
    const r = await runBk(['verify', '--all', '--config', config, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json<{ results: { id: string; ok: boolean }[] }>().results.map((x) => [x.id, x.ok])).toEqual(ids.map((id) => [id, true]));
  });
});

describe('files: a repository inside the tree it backs up (the README quick start)', () => {
  it('the first backup makes the repository before tar reads the tree: no "file changed as we read it", and the repository is not archived', async () => {
    const src = join(work, 'with-repo-inside');
    await mkdir(src);
    // Large enough that tar is still reading the tree when the storage starts writing.
    await buildSampleTree(src, { bigFileMiB: 30 });
    const repo = join(src, 'backups');
    const r = await runBk(['backup', 'files', '--source', src, '--exclude', 'backups', '--repo', repo, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/changed as we read/);
    const id = r.json<{ results: { id: string }[] }>().results[0]!.id;
    const listed = await execa('bash', ['-o', 'pipefail', '-c', `zstd -dc ${join(repo, 'files', `${id}.tar.zst`)} | tar -tf -`]);
    const members = listed.stdout.split('\n');
    expect(members).toContain('./big.bin');
    expect(members.filter((m) => m.startsWith('./backups'))).toEqual([]);
  });
});
