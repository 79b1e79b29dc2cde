// A remote files source (`user@host:/path`) pulled with rsync into a mirror cache, without an sshd:
// `rsh` is a script that drops rsync's ssh options and the host and runs the remote side locally.
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';
import { listTree, type TreeEntry } from '../helpers/tree.js';

let work: string;
let remote: string;
let cache: string;
let config: string;
let sshLog: string;

const mirror = () => join(cache, 'site');
const inodes = async (dir: string, names: string[]) => Object.fromEntries(await Promise.all(names.map(async (n) => [n, (await stat(join(dir, n))).ino] as const)));

beforeAll(async () => {
  work = await makeTmpDir('bk-e2e-remote-');
  remote = join(work, 'remote-data');
  cache = join(work, 'cache');
  sshLog = join(work, 'ssh.log');
  const fakeSsh = join(work, 'fake-ssh');
  // rsync runs: <rsh words> [-l user] host rsync --server …; drop ssh's options and the host.
  await writeFile(
    fakeSsh,
    [
      '#!/bin/sh',
      `echo "$@" >> '${sshLog}'`,
      'while [ $# -gt 0 ]; do',
      '  case "$1" in',
      '    -l|-p|-i|-o|-F|-J) shift 2 ;;',
      '    -*) shift ;;',
      '    *) break ;;',
      '  esac',
      'done',
      'shift',
      'exec "$@"',
      '',
    ].join('\n'),
  );
  await chmod(fakeSsh, 0o755);

  await mkdir(join(remote, 'docs', 'deep'), { recursive: true });
  await writeFile(join(remote, 'docs', 'a.txt'), 'a');
  await writeFile(join(remote, 'docs', 'deep', 'b.txt'), 'b');
  await writeFile(join(remote, 'unchanged.bin'), Buffer.alloc(100_000, 7));
  await writeFile(join(remote, 'will-change.txt'), 'v1');
  await writeFile(join(remote, 'will-go.txt'), 'bye');
  await writeFile(join(remote, 'noise.log'), 'excluded');
  await chmod(join(remote, 'docs', 'a.txt'), 0o640);

  config = join(work, 'backup.config.yaml');
  await writeFile(
    config,
    [
      'storages:',
      '  local:',
      '    type: local',
      `    path: ${join(work, 'repo')}`,
      'targets:',
      '  site:',
      '    driver: files',
      `    source: backup@fakehost:${remote}`,
      `    rsh: ${fakeSsh} -p 2222`,
      `    cache_dir: ${cache}`,
      '    exclude: ["*.log"]',
      '',
    ].join('\n'),
  );
});
afterAll(async () => {
  await rmrf(work);
});

const withoutExcluded = (tree: TreeEntry[]) => tree.filter((e) => !e.path.endsWith('.log'));

describe('files: remote source over rsync', () => {
  let firstTree: TreeEntry[];
  const ids: string[] = [];

  it('config check reaches the remote source through rsh', async () => {
    const r = await runBk(['config', 'check', '--config', config, '--json']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.json<{ findings: { subject: string; name: string; ok: boolean }[] }>().findings).toContainEqual(
      expect.objectContaining({ subject: 'target site', name: 'source', ok: true }),
    );
    expect(await readFile(sshLog, 'utf8')).toMatch(/^-p 2222 -l backup fakehost rsync --server --sender/m);
  });

  it('the first backup mirrors the remote into the cache (excludes left out) and archives it', async () => {
    firstTree = withoutExcluded(await listTree(remote));
    const r = await runBk(['backup', 'site', '--config', config, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    ids.push(r.json<{ results: { id: string }[] }>().results[0]!.id);
    const mirrored = await listTree(mirror());
    // The cache directory is bk's (0700); everything below it is the remote's.
    expect(mirrored.slice(1)).toEqual(firstTree.slice(1));
    expect(mirrored.some((e) => e.path.endsWith('.log'))).toBe(false);
    const manifest = JSON.parse(await readFile(join(work, 'repo', 'site', `${ids[0]}.manifest.json`), 'utf8')) as { contents: string[] };
    expect(manifest.contents).toEqual([`backup@fakehost:${remote}`]);
  });

  it('the second backup transfers only what changed (unchanged files keep their inode in the cache)', async () => {
    const before = await inodes(mirror(), ['unchanged.bin', 'docs/a.txt', 'docs/deep/b.txt', 'will-change.txt']);
    await writeFile(join(remote, 'will-change.txt'), 'v2 is longer');
    await rm(join(remote, 'will-go.txt'));
    await writeFile(join(remote, 'new.txt'), 'new');
    const r = await runBk(['backup', 'site', '--config', config, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    ids.push(r.json<{ results: { id: string }[] }>().results[0]!.id);
    const after = await inodes(mirror(), ['unchanged.bin', 'docs/a.txt', 'docs/deep/b.txt', 'will-change.txt']);
    expect(after['unchanged.bin']).toBe(before['unchanged.bin']);
    expect(after['docs/a.txt']).toBe(before['docs/a.txt']);
    expect(after['docs/deep/b.txt']).toBe(before['docs/deep/b.txt']);
    // rsync writes a changed file beside it and renames it over: a new inode.
    expect(after['will-change.txt']).not.toBe(before['will-change.txt']);
    expect((await listTree(mirror())).slice(1)).toEqual(withoutExcluded(await listTree(remote)).slice(1));
  });

  it('restores to user@host:/path through the same rsh', async () => {
    const elsewhere = join(work, 'restored-remote');
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, 'stale.txt'), 'not in the backup');
    const r = await runBk(['restore', 'site', '--config', config, '--id', ids[0]!, '--to', `backup@fakehost:${elsewhere}`, '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await listTree(elsewhere)).slice(1)).toEqual(firstTree.slice(1));
    expect(await readFile(sshLog, 'utf8')).toMatch(/^-p 2222 -l backup fakehost rsync --server (?!--sender)/m);
  });

  it('restores to the remote source itself when no --to is given', async () => {
    const r = await runBk(['restore', 'site', '--config', config, '--id', ids[0]!, '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    // The excluded file was never backed up, so the restore (rsync --delete) removes it.
    expect((await listTree(remote)).slice(1)).toEqual(firstTree.slice(1));
  });

  it('--dry-run shows a manual pipeline that ends with rsync to the remote', async () => {
    const r = await runBk(['restore', 'site', '--config', config, '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`rsync -aH --delete /tmp/restore/ backup@fakehost:${remote}/`);
  });
});
