/**
 * `bk import` end to end: a legacy dump (gzip-compressed tar, as an old cron script would leave it)
 * becomes a backup with the file's time, restores byte for byte, and falls under retention.
 */
import { execa } from 'execa';
import { mkdir, readFile, stat, utimes, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/catalog.js';
import { LocalStorage } from '../../src/storage/local.js';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';

let dir: string;
let config: string;
let env: Record<string, string>;
let storage: LocalStorage;
beforeAll(async () => {
  dir = await makeTmpDir('bk-import-e2e-');
  await mkdir(join(dir, 'app', 'sub'), { recursive: true });
  await writeFile(join(dir, 'app', 'a.txt'), 'alpha\n');
  await writeFile(join(dir, 'app', 'sub', 'b.bin'), Buffer.from([0, 1, 2, 255]));
  await chmod(join(dir, 'app', 'sub', 'b.bin'), 0o640);
  // What the old cron job left: app-YYYYmmddHHMM.tar.gz, with its original modification time.
  await execa('tar', ['-czf', join(dir, 'app-202401010200.tar.gz'), '-C', join(dir, 'app'), '.']);
  await execa('tar', ['-cf', join(dir, 'app-202402010200.tar'), '-C', join(dir, 'app'), '.']);
  const jan = new Date('2024-01-01T02:00:00Z');
  await utimes(join(dir, 'app-202401010200.tar.gz'), jan, jan);
  config = join(dir, 'backup.config.yaml');
  await writeFile(
    config,
    ['defaults: {timezone: UTC}', 'storages:', `  local: {type: local, path: ${join(dir, 'repo')}}`, 'targets:', `  app: {driver: files, source: ${join(dir, 'app')}}`].join('\n'),
  );
  env = { BK_LOCK_DIR: join(dir, 'locks') };
  storage = new LocalStorage('local', join(dir, 'repo'));
});
afterAll(async () => {
  await rmrf(dir);
});

describe('bk import', () => {
  it('adopts dump files with their original time; they restore byte for byte', async () => {
    const run = await runBk(['import', 'app', join(dir, 'app-202401010200.tar.gz'), '--config', config, '--json'], { env });
    expect(run.exitCode, run.stderr).toBe(0);
    const withTime = await runBk(['import', 'app', join(dir, 'app-202402010200.tar'), '--time', '2024-02-01T02:00', '--config', config], { env });
    expect(withTime.exitCode, withTime.stderr).toBe(0);
    expect(withTime.stdout).toMatch(/imported as app 20240201T020000Z-/);

    const { backups } = await listBackups(storage, 'app');
    expect(backups.map((b) => b.manifest.startedAt)).toEqual(['2024-01-01T02:00:00.000Z', '2024-02-01T02:00:00.000Z']);
    const jan = backups[0]!.manifest;
    expect(jan.id).toMatch(/^20240101T020000Z-/);
    expect(jan.tags).toContain('imported');
    expect(jan.compression).toBe('zstd');
    expect(jan.extra).toMatchObject({ imported: { file: 'app-202401010200.tar.gz', compression: 'gzip' } });

    const verify = await runBk(['verify', 'app', '--all', '--config', config], { env });
    expect(verify.exitCode, verify.stderr).toBe(0);
    const to = join(dir, 'restored');
    const restore = await runBk(['restore', 'app', '--id', jan.id, '--to', to, '--yes', '--config', config], { env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await readFile(join(to, 'a.txt'), 'utf8')).toBe('alpha\n');
    expect([...(await readFile(join(to, 'sub', 'b.bin')))]).toEqual([0, 1, 2, 255]);
    expect((await stat(join(to, 'sub', 'b.bin'))).mode & 0o777).toBe(0o640);
  });

  it('does not import the same file twice, and retention applies by the original time', async () => {
    const again = await runBk(['import', 'app', join(dir, 'app-202401010200.tar.gz'), '--config', config], { env });
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/skipped \(already imported\)/);
    const prune = await runBk(['prune', 'app', '--keep-monthly', '1', '--config', config, '--json'], { env });
    expect(prune.exitCode, prune.stderr).toBe(0);
    const r = prune.json<{ results: { keep: { time: string; reasons: string[] }[]; remove: { time: string }[] }[] }>().results[0]!;
    expect(r.keep).toEqual([{ id: expect.any(String), time: '2024-02-01T02:00:00.000Z', reasons: ['monthly snapshot'] }]);
    expect(r.remove.map((x) => x.time)).toEqual(['2024-01-01T02:00:00.000Z']);
  });

  it('rejects --time with several files and names unreadable files', async () => {
    const two = await runBk(['import', 'app', 'x', 'y', '--time', '2024-01-01', '--config', config], { env });
    expect(two.exitCode).toBe(2);
    const missing = await runBk(['import', 'app', join(dir, 'nope.sql.gz'), '--config', config], { env });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.sql\.gz/);
  });
});
