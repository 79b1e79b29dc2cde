// End to end through bin/bk.js against s3rver: a backup restored on a "fresh machine" that has only
// the config, ad-hoc `--repo s3://…` with credentials from the environment, secrets kept out of
// every output, and an interrupt that aborts the multipart upload before bk exits.
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf, startFaultProxy, startS3, type FaultProxy, type S3Server } from '../harness/index.js';
import { runBk, spawnBk } from '../helpers/run-bk.js';
import { backupsInBucket, bucketClient, makeSourceTree, MiB, s3StorageYaml, treeDigest, writeConfig } from './s3-fixtures.js';

let s3: S3Server;
let proxy: FaultProxy;
let client: S3Client;
let tmp: string;
let source: string;

beforeAll(async () => {
  s3 = await startS3({ buckets: ['backups'] });
  proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
  client = bucketClient(s3);
  tmp = await makeTmpDir('bk-s3-cli-');
  source = join(tmp, 'source');
  await makeSourceTree(source, 3 * MiB);
});
afterAll(async () => {
  client?.destroy();
  await proxy?.stop();
  await s3?.stop();
  if (tmp) await rmrf(tmp);
});

const configYaml = (prefix: string, endpoint = s3.endpoint, extra: Record<string, string | number> = {}) =>
  `storages:\n${s3StorageYaml('offsite', { endpoint, prefix, extra })}targets:\n  app:\n    driver: files\n    source: ${source}\n`;

describe('backup → list → restore → verify against S3', () => {
  it('works from a fresh machine that has only the config and credentials', async () => {
    const machineA = join(tmp, 'a');
    await mkdir(machineA);
    const cfgA = await writeConfig(machineA, configYaml('fresh'));
    const backup = await runBk(['--config', cfgA, '--json', 'backup', 'app'], { cwd: machineA });
    expect(backup.exitCode, backup.stderr).toBe(0);
    const id = backup.json<{ results: { id: string; status: string }[] }>().results[0]!.id;
    expect((await backupsInBucket(client, 'fresh/')).manifests).toEqual([`fresh/app/${id}.manifest.json`]);

    // Machine B: a new directory, the same config text, no local state of any kind.
    const machineB = join(tmp, 'b');
    await mkdir(machineB);
    const cfgB = await writeConfig(machineB, configYaml('fresh'));
    const list = await runBk(['--config', cfgB, '--json', 'list'], { cwd: machineB });
    expect(list.exitCode, list.stderr).toBe(0);
    const listed = list.json<{ backups: { id: string; storage: string; target: string }[] }>().backups;
    expect(listed).toEqual([expect.objectContaining({ id, storage: 'offsite', target: 'app' })]);

    const verify = await runBk(['--config', cfgB, 'verify', '--latest'], { cwd: machineB });
    expect(verify.exitCode, verify.stderr).toBe(0);

    // The plan shows how to do the same by hand, with the AWS CLI fetching the archive.
    const dry = await runBk(['--config', cfgB, 'restore', 'app', '--to', join(machineB, 'x'), '--dry-run'], { cwd: machineB });
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`aws s3 cp --endpoint-url ${s3.endpoint} s3://backups/fresh/app/${id}.tar.zst - | zstd -dc - | `);

    const dest = join(machineB, 'restored');
    const restore = await runBk(['--config', cfgB, 'restore', 'app', '--to', dest, '--yes'], { cwd: machineB });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(source));
  });

  it('works ad hoc with --repo s3://bucket/prefix, BK_S3_ENDPOINT and AWS_* credentials', async () => {
    const dir = join(tmp, 'adhoc');
    await mkdir(dir);
    const env = { BK_S3_ENDPOINT: s3.endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
    const repo = 's3://backups/adhoc/space';
    const backup = await runBk(['--repo', repo, 'backup', 'files', '--source', source], { cwd: dir, env });
    expect(backup.exitCode, backup.stderr).toBe(0);
    expect((await backupsInBucket(client, 'adhoc/space/files/')).manifests).toHaveLength(1);

    const list = await runBk(['--repo', repo, '--json', 'list'], { cwd: dir, env });
    expect(list.exitCode, list.stderr).toBe(0);
    expect(list.json<{ backups: unknown[] }>().backups).toHaveLength(1);

    const dest = join(dir, 'restored');
    const restore = await runBk(['--repo', repo, 'restore', 'files', '--to', dest, '--yes'], { cwd: dir, env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(source));

    // Without credentials the SDK's chain finds none: a clear error, not a stack trace.
    const bare = await runBk(['--repo', repo, 'list'], { cwd: dir, env: { BK_S3_ENDPOINT: s3.endpoint, AWS_EC2_METADATA_DISABLED: 'true', HOME: dir } });
    expect(bare.exitCode).toBe(1);
    expect(bare.stderr).toMatch(/no S3 credentials found/);
    expect(bare.stderr).toMatch(/fix: set access_key_id/);
    expect(bare.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('config check reports a missing bucket with the fix', async () => {
    const dir = join(tmp, 'check');
    await mkdir(dir);
    const cfg = await writeConfig(dir, `storages:\n${s3StorageYaml('offsite', { endpoint: s3.endpoint, bucket: 'no-such-bucket' })}targets: {}\n`);
    const res = await runBk(['--config', cfg, 'config', 'check'], { cwd: dir });
    expect(res.exitCode).toBe(2);
    expect(res.stdout).toMatch(/FAIL storage offsite: write: .*bucket "no-such-bucket" does not exist.*fix: create it/);
  });
});

describe('secrets', () => {
  it('never shows credentials in logs, errors or JSON', async () => {
    const dir = join(tmp, 'secrets');
    await mkdir(dir);
    const secret = 'Wrong/Secret+Key-9f8e7d6c5b4a';
    const keyId = 'AKIAEXAMPLEKEYID0042';
    const yaml = `storages:\n  offsite:\n    type: s3\n    bucket: backups\n    endpoint: ${s3.endpoint}\n    access_key_id_file: ${join(dir, 'key-id')}\n    secret_access_key: ${secret}\n    max_attempts: 2\ntargets:\n  app:\n    driver: files\n    source: ${source}\n`;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'key-id'), `${keyId}\n`, { mode: 0o600 });
    const cfg = await writeConfig(dir, yaml);
    const runs = [
      await runBk(['--config', cfg, '--json', '--log-level', 'debug', 'backup', 'app'], { cwd: dir }),
      await runBk(['--config', cfg, '--log-level', 'debug', '--log-format', 'pretty', 'backup', 'app'], { cwd: dir }),
      await runBk(['--config', cfg, '--json', 'list'], { cwd: dir }),
      await runBk(['--config', cfg, '--json', 'config', 'check'], { cwd: dir }),
    ];
    for (const r of runs) {
      expect(r.exitCode).not.toBe(0);
      const all = r.stdout + r.stderr;
      // s3rver refuses the request before reading its body, so an upload may also see the
      // connection closed under it (EPIPE); either way the run fails without the secrets.
      expect(all).toMatch(/credentials rejected|access denied|cannot reach the server/);
      expect(all).not.toContain(secret);
      expect(all).not.toContain(keyId);
    }
    // The debug line describing the storage is there, with its credentials masked.
    expect(runs[0]!.stderr).toMatch(/"access_key_id":"\*\*\*"/);
  });
});

describe('interrupting an S3 backup', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal}: aborts the multipart upload, waits for it, exits 130, writes no manifest, keeps older backups`, async () => {
      const dir = join(tmp, `int-${signal}`);
      await mkdir(dir);
      const big = join(dir, 'big');
      await makeSourceTree(big, 24 * MiB, 3);
      const prefix = `int-${signal}`;
      const yaml = `storages:\n${s3StorageYaml('offsite', { endpoint: proxy.endpoint, prefix, extra: { part_size: '5MiB' } })}targets:\n  app:\n    driver: files\n    source: ${big}\n    compression: none\n`;
      const cfg = await writeConfig(dir, yaml);
      proxy.reset();
      const first = await runBk(['--config', cfg, 'backup', 'app'], { cwd: dir });
      expect(first.exitCode, first.stderr).toBe(0);
      const before = await backupsInBucket(client, `${prefix}/`);

      // Parts stall in the proxy, so the signal lands while the upload is in flight.
      proxy.reset();
      proxy.setRule((r) => (r.method === 'PUT' && r.query.has('partNumber') ? { type: 'stall', ms: 60_000, afterBytes: 64 * 1024 } : undefined));
      const child = spawnBk(['--config', cfg, '--log-level', 'debug', '--log-format', 'pretty', 'backup', 'app'], { cwd: dir });
      const deadline = Date.now() + 20_000;
      while (!proxy.log.some((e) => e.url.includes('partNumber=')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      child.kill(signal);
      const res = await child;
      const elapsed = Date.now() - t0;
      proxy.setRule(undefined);

      expect(res.exitCode).toBe(130);
      // Far less than the stall: the parts in flight were cancelled, not waited for.
      expect(elapsed).toBeLessThan(20_000);
      // bk waited for AbortMultipartUpload (logged at debug) before exiting.
      expect(String(res.stderr)).toMatch(/multipart upload aborted/);
      expect(proxy.log.filter((e) => e.method === 'DELETE' && e.url.includes('uploadId=')).map((e) => e.status)).toEqual([204]);
      expect(proxy.log.some((e) => e.method === 'POST' && e.url.includes('uploadId='))).toBe(false);
      expect(await backupsInBucket(client, `${prefix}/`)).toEqual(before);
      const verify = await runBk(['--config', cfg, 'verify', '--all'], { cwd: dir });
      expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
    });
  }
});

describe('an upload a killed bk left behind', () => {
  it('is invisible to list and verify, and bk prune --grace 0h aborts it (older backups kept)', async () => {
    const { CreateMultipartUploadCommand, UploadPartCommand, ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
    const dir = join(tmp, 'leftover');
    await mkdir(dir);
    const prefix = 'leftover';
    const cfg = await writeConfig(dir, configYaml(prefix));
    const first = await runBk(['--config', cfg, 'backup', 'app', '--no-prune'], { cwd: dir });
    expect(first.exitCode, first.stderr).toBe(0);
    const before = await backupsInBucket(client, `${prefix}/`);

    // What kill -9 during a multipart upload leaves: an upload with a part, never completed or aborted.
    const key = `${prefix}/app/20240101T000000Z-dead.tar.zst`;
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'backups', Key: key }));
    await client.send(new UploadPartCommand({ Bucket: 'backups', Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(5 * MiB, 7) }));
    const uploads = async () => ((await client.send(new ListMultipartUploadsCommand({ Bucket: 'backups', Prefix: `${prefix}/` }))).Uploads ?? []).map((u) => u.Key);
    expect(await uploads()).toEqual([key]);

    const list = await runBk(['--config', cfg, '--json', 'list'], { cwd: dir });
    expect(list.json<{ backups: unknown[] }>().backups).toHaveLength(1);

    // Younger than the default 24 h grace: it may be a backup running right now, so it stays.
    const young = await runBk(['--config', cfg, '--json', 'prune', 'app'], { cwd: dir });
    expect(young.exitCode, young.stderr).toBe(0);
    expect(await uploads()).toEqual([key]);

    const dry = await runBk(['--config', cfg, '--json', 'prune', 'app', '--grace', '0h', '--dry-run'], { cwd: dir });
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(JSON.stringify(dry.json())).toContain('incomplete upload');
    expect(await uploads()).toEqual([key]);

    const prune = await runBk(['--config', cfg, 'prune', 'app', '--grace', '0h'], { cwd: dir });
    expect(prune.exitCode, prune.stderr).toBe(0);
    expect(await uploads()).toEqual([]);
    expect(await backupsInBucket(client, `${prefix}/`)).toEqual(before);
  });
});

describe('upload part size', () => {
  it('a first backup plans its parts from the driver\'s estimate of the source; later ones from the previous archive', async () => {
    const dir = join(tmp, 'estimate');
    await mkdir(dir);
    const cfg = await writeConfig(dir, configYaml('estimate'));
    const logLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const first = await runBk(['--config', cfg, '--log-level', 'debug', '--log-format', 'json', 'backup', 'app'], { cwd: dir });
    expect(first.exitCode, first.stderr).toBe(0);
    const estimate = logLines(first.stderr).find((l) => l.msg === 'estimated the size of a first backup');
    // makeSourceTree wrote 3 MiB of files; du counts the directories too.
    expect(Number(estimate?.bytes)).toBeGreaterThanOrEqual(3 * MiB);
    expect(Number(estimate?.bytes)).toBeLessThan(4 * MiB);
    const upload = logLines(first.stderr).find((l) => l.msg === 'upload started' && String(l.key).endsWith('.tar.zst'));
    expect(upload).toMatchObject({ expectedSize: estimate!.bytes, partSize: 8 * MiB });

    const list = await runBk(['--config', cfg, '--json', 'list'], { cwd: dir });
    const [firstBackup] = list.json<{ backups: { storedBytes: number }[] }>().backups;
    const second = await runBk(['--config', cfg, '--log-level', 'debug', '--log-format', 'json', 'backup', 'app'], { cwd: dir });
    expect(second.exitCode, second.stderr).toBe(0);
    expect(logLines(second.stderr).some((l) => l.msg === 'estimated the size of a first backup')).toBe(false);
    const again = logLines(second.stderr).find((l) => l.msg === 'upload started' && String(l.key).endsWith('.tar.zst'));
    expect(again?.expectedSize).toBe(firstBackup!.storedBytes);
  });
});
