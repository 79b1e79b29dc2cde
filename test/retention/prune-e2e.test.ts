/**
 * `bk prune` end to end through bin/bk.js, on backups with chosen times written through the storage
 * API: reasons and removals, config policies and their sources, garbage, prune after backup.
 */
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/catalog.js';
import { LocalStorage } from '../../src/storage/local.js';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';
import { expectNoManifestWithoutArchive, files, fresh, type PruneJson } from './prune-helpers.js';
import { writeDailyBackups, writeSyntheticBackup } from './synthetic.js';

let root: string;
beforeAll(async () => {
  root = await makeTmpDir('bk-prune-e2e-');
});
afterAll(async () => {
  await rmrf(root);
});

describe('bk prune', () => {
  it('keeps by policy with every reason and removes manifest and archive of the rest', async () => {
    const { repo, storage, env } = await fresh(root);
    const made = await writeDailyBackups(storage, 'app', 10);
    const dry = await runBk(['prune', '--repo', repo, '--keep-daily', '3', '--keep-weekly', '2', '--dry-run'], { env });
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/app on repo: keep 3 daily, 2 weekly \(command line; days in UTC\)/);
    expect(dry.stdout).toMatch(/keep\s+\S+\s+daily snapshot, weekly snapshot/);
    expect(dry.stdout).toMatch(/would remove \d+ backups/);
    expect(await files(storage, 'app')).toHaveLength(20); // dry run: nothing touched

    const run = await runBk(['prune', '--repo', repo, '--keep-daily', '3', '--keep-weekly', '2', '--json'], { env });
    expect(run.exitCode, run.stderr).toBe(0);
    const [r] = run.json<PruneJson>().results;
    expect(r!.policySource).toBe('command line');
    expect(r!.keep.length).toBeGreaterThanOrEqual(3);
    expect(r!.keep[0]).toEqual({ id: made.at(-1)!.id, time: made.at(-1)!.startedAt, reasons: ['daily snapshot', 'weekly snapshot'] });
    expect(r!.keep.every((k) => k.reasons.length > 0)).toBe(true);
    expect(r!.keep.length + r!.remove.length).toBe(10);
    for (const x of r!.remove) expect(dry.stdout).toContain(x.id);
    const left = await files(storage, 'app');
    expect(left).toHaveLength(2 * r!.keep.length);
    for (const x of r!.remove) expect(left.some((f) => f.startsWith(x.id))).toBe(false);
    await expectNoManifestWithoutArchive(storage, 'app');
  });

  it('an empty policy removes nothing; an invalid flag is a usage error', async () => {
    const { repo, storage, env } = await fresh(root);
    await writeDailyBackups(storage, 'app', 4);
    const run = await runBk(['prune', '--repo', repo, '--json'], { env });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.json<PruneJson>().results[0]!.remove).toEqual([]);
    expect(await files(storage, 'app')).toHaveLength(8);
    const bad = await runBk(['prune', '--repo', repo, '--keep-within', '1w'], { env });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/there is no week unit: use 7d/);
  });

  it('takes policies from the config: defaults, per target, per storage, per target and storage', async () => {
    const { dir, env } = await fresh(root);
    const a = new LocalStorage('a', join(dir, 'a'));
    const b = new LocalStorage('b', join(dir, 'b'));
    for (const s of [a, b]) {
      await writeDailyBackups(s, 'web', 6);
      await writeDailyBackups(s, 'db', 6);
    }
    await writeFile(
      join(dir, 'backup.config.yaml'),
      [
        'defaults:',
        '  timezone: UTC',
        '  retention: {keep_last: 1}',
        'storages:',
        `  a: {type: local, path: ${join(dir, 'a')}}`,
        `  b: {type: local, path: ${join(dir, 'b')}, retention: {keep_last: 2}}`,
        'targets:',
        `  web: {driver: files, source: ${dir}}`,
        `  db: {driver: files, source: ${dir}, retention: {keep_last: 3}, retention_by_storage: {b: {keep_last: 4}}}`,
      ].join('\n'),
    );
    const config = join(dir, 'backup.config.yaml');
    const run = await runBk(['prune', '--config', config, '--json'], { env, cwd: dir });
    expect(run.exitCode, run.stderr).toBe(0);
    const got = run.json<PruneJson>().results.map((r) => [r.target, r.storage, r.policySource, r.keep.length]);
    expect(got).toEqual([
      ['web', 'a', 'defaults.retention', 1],
      ['web', 'b', 'storages.b.retention', 2],
      ['db', 'a', 'targets.db.retention', 3],
      ['db', 'b', 'targets.db.retention_by_storage.b', 4],
    ]);
    // Backups never count across storages: each storage kept its own newest.
    expect((await files(a, 'web')).length).toBe(2);
    expect((await files(b, 'db')).length).toBe(8);

    await writeFile(config, ['targets:', `  web: {driver: files, source: ${dir}, retention: {keep_daily: -1}}`].join('\n'));
    const invalid = await runBk(['prune', '--config', config], { env, cwd: dir });
    expect(invalid.exitCode).toBe(2);
    expect(invalid.stderr).toMatch(/targets\.web\.retention\.keep_daily/);
  });

  it('collects old crash leftovers and never touches young ones or foreign files', async () => {
    const { repo, storage, env } = await fresh(root);
    const [m] = await writeDailyBackups(storage, 'app', 1);
    const dir = join(repo, 'app');
    const old = new Date(Date.now() - 2 * 86_400_000);
    const leftovers = {
      oldOrphan: '20200101T000000Z-aaaa.tar.zst',
      youngOrphan: '20200102T000000Z-bbbb.tar.zst',
      oldTemp: '.bk-tmp-0123456789ab',
      youngTemp: '.bk-tmp-ba9876543210',
      foreign: 'README.txt',
    };
    for (const f of Object.values(leftovers)) await writeFile(join(dir, f), 'x');
    for (const f of [leftovers.oldOrphan, leftovers.oldTemp, leftovers.foreign, `${m!.id}.tar`]) await utimes(join(dir, f), old, old);

    const run = await runBk(['prune', '--repo', repo, '--keep-last', '5', '--json'], { env });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.json<PruneJson>().results[0]!.garbage.map((g) => [g.key, g.reason])).toEqual([
      [`app/${leftovers.oldTemp}`, 'temp file'],
      [`app/${leftovers.oldOrphan}`, 'orphan archive'],
    ]);
    expect(await files(storage, 'app')).toEqual([leftovers.youngTemp, leftovers.youngOrphan, leftovers.foreign, `${m!.id}.manifest.json`, `${m!.id}.tar`].sort());

    const graceZero = await runBk(['prune', '--repo', repo, '--grace', '0h', '--json'], { env });
    expect(graceZero.json<PruneJson>().results[0]!.garbage.map((g) => g.key).sort()).toEqual([`app/${leftovers.youngOrphan}`, `app/${leftovers.youngTemp}`].sort());
  });




  it('prunes after every successful backup, only where the backup went, unless --no-prune', async () => {
    const { dir, repo, storage, env } = await fresh(root);
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'a'), 'a');
    await writeSyntheticBackup(storage, 'files', new Date(Date.now() - 3 * 86_400_000));
    const first = await runBk(['backup', 'files', '--source', src, '--repo', repo, '--keep-last', '1', '--no-prune'], { env });
    expect(first.exitCode, first.stderr).toBe(0);
    expect((await listBackups(storage, 'files')).backups).toHaveLength(2);
    const second = await runBk(['backup', 'files', '--source', src, '--repo', repo, '--keep-last', '2', '--json'], { env });
    expect(second.exitCode, second.stderr).toBe(0);
    const prune = second.json<{ results: { prune: { storage: string; removed: string[] }[] }[] }>().results[0]!.prune;
    expect(prune).toHaveLength(1);
    expect(prune[0]!.removed).toHaveLength(1);
    expect((await listBackups(storage, 'files')).backups).toHaveLength(2);
  });
});
