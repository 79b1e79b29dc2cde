/**
 * Prune safety end to end: a crash mid-prune, the host lock, and two prunes plus a backup of one
 * target at once on shared storage.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/catalog.js';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk, spawnBk } from '../helpers/run-bk.js';
import { expectNoManifestWithoutArchive, files, fresh, sleep, waitFor, type PruneJson } from './prune-helpers.js';
import { writeDailyBackups } from './synthetic.js';

let root: string;
beforeAll(async () => {
  root = await makeTmpDir('bk-prune-e2e-');
});
afterAll(async () => {
  await rmrf(root);
});

describe('bk prune safety', () => {
  it('a crash mid-prune never leaves a manifest without its archive', async () => {
    const { repo, storage, env } = await fresh(root);
    await writeDailyBackups(storage, 'app', 12);
    // Slow prune: 300 ms before each delete, so the kill lands between a manifest and its archive.
    const child = spawnBk(['prune', '--repo', repo, '--keep-last', '2'], { env: { ...env, BK_TEST_PRUNE_DELAY_MS: '300' } });
    await waitFor('the first manifest to go', async () => (await listBackups(storage, 'app')).backups.length < 12);
    await sleep(120);
    child.kill('SIGKILL');
    await child;
    const listed = (await listBackups(storage, 'app')).backups.length;
    expect(listed).toBeGreaterThan(2);
    expect(listed).toBeLessThan(12);
    await expectNoManifestWithoutArchive(storage, 'app');
    const orphans = (await files(storage, 'app')).filter((f) => f.endsWith('.tar') && !existsSync(join(repo, 'app', f.replace('.tar', '.manifest.json'))));
    expect(orphans.length).toBeLessThanOrEqual(1);

    // The next prune takes over the dead run's host and storage locks and finishes the job.
    const next = await runBk(['prune', '--repo', repo, '--keep-last', '2', '--grace', '0h', '--json'], { env });
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/taking over a stale lock of pid/);
    expect(next.stderr).toMatch(/taking over the stale prune lock of .* pid \d+ \(that process is gone\)/);
    expect(next.json<PruneJson>().results[0]!.garbage.map((g) => g.reason)).toEqual(orphans.map(() => 'orphan archive'));
    expect(await files(storage, 'app')).toHaveLength(4);
  });
  it('one prune per target per host: a second gets exit 5 with the holder pid; a dead holder is taken over', async () => {
    const { repo, storage, env } = await fresh(root);
    await writeDailyBackups(storage, 'app', 6);
    const first = spawnBk(['prune', '--repo', repo, '--keep-last', '1'], { env: { ...env, BK_TEST_PRUNE_DELAY_MS: '400' } });
    await waitFor('the host lock', async () => existsSync(env.BK_LOCK_DIR!) && (await readdir(env.BK_LOCK_DIR!)).some((f) => f.endsWith('.lock')));
    const second = await runBk(['prune', '--repo', repo, '--keep-last', '1'], { env });
    expect(second.exitCode).toBe(5);
    expect(second.stderr).toMatch(new RegExp(`target app is locked by pid ${first.pid} \\(bk prune, started \\d{4}-`));
    first.kill('SIGKILL');
    await first;
    // The dead prune's locks are stale: taken over, and the job finished.
    const third = await runBk(['prune', 'app', '--repo', repo, '--keep-last', '1'], { env });
    expect(third.stderr).toMatch(/taking over a stale lock/);
    expect(third.exitCode, third.stderr).toBe(0);
    expect((await listBackups(storage, 'app')).backups).toHaveLength(1);
    await expectNoManifestWithoutArchive(storage, 'app');
  });
  it('two prunes and a backup of one target at once on shared storage: one prune works, the other reports the lock, nothing is lost', async () => {
    const { dir, repo, storage } = await fresh(root);
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'data.txt'), 'precious');
    await writeDailyBackups(storage, 'files', 8, 2);
    const before = (await listBackups(storage, 'files')).backups.map((b) => b.manifest.id);
    // Three "hosts": separate host-lock directories, one shared storage.
    const host = (h: string) => ({ BK_LOCK_DIR: join(dir, `locks-${h}`), TZ: 'UTC', BK_TEST_PRUNE_DELAY_MS: '500' });
    const [p1, p2, b] = await Promise.all([
      runBk(['prune', '--repo', repo, '--keep-last', '3', '--json'], { env: host('a') }),
      runBk(['prune', '--repo', repo, '--keep-last', '3', '--json'], { env: host('b') }),
      runBk(['backup', 'files', '--source', src, '--repo', repo, '--json'], { env: host('c') }),
    ]);
    expect(b.exitCode, b.stderr).toBe(0);
    const codes = [p1.exitCode, p2.exitCode].sort();
    expect(codes, `${p1.stderr}\n${p2.stderr}`).toEqual([0, 5]);
    const loser = p1.exitCode === 5 ? p1 : p2;
    expect(loser.stderr).toMatch(/files\/\.lock is held by prune on .* \(pid \d+, since .*, lease until /);
    const winner = (p1.exitCode === 0 ? p1 : p2).json<PruneJson>().results[0]!;
    // 8 old backups, plus the new one if it was committed before the winner listed.
    expect(winner.keep).toHaveLength(3);
    expect([8, 9]).toContain(winner.keep.length + winner.remove.length);

    const after = (await listBackups(storage, 'files')).backups.map((b) => b.manifest.id);
    const newId = (b.json<{ results: { id: string }[] }>().results[0]!).id;
    expect(after).toContain(newId);
    // Nothing but what the winner removed is gone. It kept the newest three it saw: the new
    // backup among them when that was committed before its listing, so the two newest old ones
    // always stay.
    const removed = winner.remove.map((r) => r.id);
    expect([...after].sort()).toEqual([...before, newId].filter((id) => !removed.includes(id)).sort());
    expect(removed).not.toContain(newId);
    expect(removed.filter((id) => before.slice(-2).includes(id))).toEqual([]);
    await expectNoManifestWithoutArchive(storage, 'files');
    const verify = await runBk(['verify', 'files', '--id', newId, '--repo', repo], { env: host('c') });
    expect(verify.exitCode, verify.stderr).toBe(0);
  });

});
