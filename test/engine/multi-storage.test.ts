// A target with `storages: [local, offsite]`: one dump pass feeds both; when one storage fails the
// other still completes, bk exits 3 and names the storage that failed. Through bin/bk.js, with
// s3rver behind the fault proxy as "offsite".
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf, startFaultProxy, startS3, type FaultProxy, type S3Server } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';
import { backupsInBucket, bucketClient, makeSourceTree, MiB, s3StorageYaml, treeDigest, writeConfig } from '../storage/s3-fixtures.js';

let s3: S3Server;
let proxy: FaultProxy;
let client: S3Client;
let tmp: string;
let source: string;
let n = 0;

beforeAll(async () => {
  s3 = await startS3({ buckets: ['backups'] });
  proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
  client = bucketClient(s3);
  tmp = await makeTmpDir('bk-multi-');
  source = join(tmp, 'source');
  // Larger than one 5 MiB part, so an offsite failure can hit mid-stream.
  await makeSourceTree(source, 14 * MiB, 4);
});
afterAll(async () => {
  client?.destroy();
  await proxy?.stop();
  await s3?.stop();
  if (tmp) await rmrf(tmp);
});
beforeEach(() => proxy.reset());

interface Setup {
  dir: string;
  cfg: string;
  local: string;
  prefix: string;
}

async function setup(opts: { localPath?: string; bucket?: string } = {}): Promise<Setup> {
  const dir = join(tmp, `run-${++n}`);
  await mkdir(dir);
  const local = opts.localPath ?? join(dir, 'local');
  const prefix = `multi-${n}`;
  const yaml =
    `storages:\n  local:\n    type: local\n    path: ${local}\n` +
    s3StorageYaml('offsite', { endpoint: proxy.endpoint, prefix, bucket: opts.bucket, extra: { part_size: '5MiB', max_attempts: 2 } }) +
    `targets:\n  app:\n    driver: files\n    source: ${source}\n    compression: none\n    storages: [local, offsite]\n`;
  return { dir, local, prefix, cfg: await writeConfig(dir, yaml) };
}

interface BackupJson {
  results: { id: string; status: string; storages: { storage: string; ok: boolean; error: string | null }[] }[];
}

describe('one dump, several storages', () => {
  it('writes the same backup to local and offsite in one pass', async () => {
    const s = await setup();
    const res = await runBk(['--config', s.cfg, '--json', 'backup', 'app'], { cwd: s.dir });
    expect(res.exitCode, res.stderr).toBe(0);
    const r = res.json<BackupJson>().results;
    // One result, one id, both storages: a single run of the dump fed both.
    expect(r).toHaveLength(1);
    expect(r[0]!.storages).toEqual([
      { storage: 'local', ok: true, error: null },
      { storage: 'offsite', ok: true, error: null },
    ]);
    const id = r[0]!.id;
    expect((await readdir(join(s.local, 'app'))).sort()).toEqual([`${id}.manifest.json`, `${id}.tar`]);
    expect(await backupsInBucket(client, `${s.prefix}/`)).toEqual({ manifests: [`${s.prefix}/app/${id}.manifest.json`], archives: [`${s.prefix}/app/${id}.tar`] });
    // The archive crossed the proxy once, as parts of one multipart upload.
    expect(proxy.log.filter((e) => e.method === 'POST' && e.url.includes('?uploads')).length).toBe(1);

    const list = await runBk(['--config', s.cfg, '--json', 'list'], { cwd: s.dir });
    const listed = list.json<{ backups: { id: string; storage: string; sha256: string }[] }>().backups;
    expect(listed.map((b) => [b.id, b.storage])).toEqual([
      [id, 'local'],
      [id, 'offsite'],
    ]);
    expect(listed[0]!.sha256).toBe(listed[1]!.sha256);
    const verify = await runBk(['--config', s.cfg, 'verify', '--all'], { cwd: s.dir });
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);

    const dest = join(s.dir, 'from-offsite');
    const restore = await runBk(['--config', s.cfg, 'restore', 'app', '--storage', 'offsite', '--to', dest, '--yes'], { cwd: s.dir });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(source));
  });

  it('offsite failing mid-stream: local completes, exit 3, offsite named, nothing committed offsite', async () => {
    const s = await setup();
    // The second part is refused (not retryable): offsite fails after the dump has started flowing.
    proxy.setRule((r) => (r.method === 'PUT' && r.query.get('partNumber') === '2' ? { type: 'fail', status: 403, code: 'AccessDenied' } : undefined));
    const res = await runBk(['--config', s.cfg, '--json', 'backup', 'app'], { cwd: s.dir });
    expect(res.exitCode, res.stderr).toBe(3);
    const r = res.json<BackupJson>().results[0]!;
    expect(r.status).toBe('partial');
    expect(r.storages[0]).toEqual({ storage: 'local', ok: true, error: null });
    expect(r.storages[1]!.storage).toBe('offsite');
    expect(r.storages[1]!.ok).toBe(false);
    expect(r.storages[1]!.error).toMatch(/access denied/);
    expect((await backupsInBucket(client, `${s.prefix}/`)).manifests).toEqual([]);
    const verify = await runBk(['--config', s.cfg, 'verify', '--latest', '--storage', 'local'], { cwd: s.dir });
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);

    // The text output names the failed storage too.
    const text = await runBk(['--config', s.cfg, 'backup', 'app'], { cwd: s.dir });
    expect(text.exitCode).toBe(3);
    expect(text.stdout).toMatch(/backed up \S+ → local; FAILED on offsite \(.*access denied/);
  });

  it('offsite bucket missing: local completes, exit 3', async () => {
    const s = await setup({ bucket: 'missing-bucket' });
    const res = await runBk(['--config', s.cfg, 'backup', 'app'], { cwd: s.dir });
    expect(res.exitCode, res.stderr).toBe(3);
    expect(res.stdout).toMatch(/→ local; FAILED on offsite \(.*bucket "missing-bucket" does not exist/);
    expect((await readdir(join(s.local, 'app'))).filter((f) => f.endsWith('.manifest.json'))).toHaveLength(1);
  });

  it('local failing: offsite completes, exit 3, local named', async () => {
    const blocker = join(tmp, `blocker-${n}`);
    await writeFile(blocker, 'a file where a directory should be');
    const s = await setup({ localPath: join(blocker, 'repo') });
    const res = await runBk(['--config', s.cfg, 'backup', 'app'], { cwd: s.dir });
    expect(res.exitCode, res.stderr).toBe(3);
    expect(res.stdout).toMatch(/→ offsite; FAILED on local/);
    expect((await backupsInBucket(client, `${s.prefix}/`)).manifests).toHaveLength(1);
    const verify = await runBk(['--config', s.cfg, 'verify', '--latest', '--storage', 'offsite'], { cwd: s.dir });
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
  });

  it('every storage failing: exit 1, nothing committed anywhere', async () => {
    const blocker = join(tmp, `blocker-all-${n}`);
    await writeFile(blocker, 'x');
    const s = await setup({ localPath: join(blocker, 'repo'), bucket: 'missing-bucket' });
    const res = await runBk(['--config', s.cfg, 'backup', 'app'], { cwd: s.dir });
    expect(res.exitCode).toBe(1);
    expect(res.stdout).toMatch(/FAILED/);
  });
});
