// `bk list` over 1,000 backups in S3 reads their manifests quickly (the catalog reads them 16 at a
// time): the real CLI against s3rver. The measured time is printed for the record.
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/catalog.js';
import { FORMAT_VERSION, serializeManifest, type Manifest } from '../../src/catalog/manifest.js';
import { S3Storage } from '../../src/storage/s3.js';
import { s3OptionsSchema } from '../../src/storage/s3-config.js';
import { makeTmpDir, rmrf, startS3, type S3Server } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';
import { backupsInBucket, bucketClient, s3StorageYaml, writeConfig } from '../storage/s3-fixtures.js';

let s3: S3Server;
let client: S3Client;
let tmp: string;

beforeAll(async () => {
  s3 = await startS3({ buckets: ['backups'] });
  client = bucketClient(s3);
  tmp = await makeTmpDir('bk-s3-scale-');
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  if (tmp) await rmrf(tmp);
});

describe('catalog', () => {
  it('lists 1,000 backups in S3 quickly', async () => {
    const storage = new S3Storage(
      'offsite',
      s3OptionsSchema.parse({ type: 's3', bucket: 'backups', prefix: 'many', endpoint: s3.endpoint, access_key_id: 'S3RVER', secret_access_key: 'S3RVER' }),
    );
    const start = Date.UTC(2024, 0, 1);
    const manifests: Manifest[] = Array.from({ length: 1000 }, (_, i) => {
      const at = new Date(start + i * 3600_000);
      const id = `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')}-${(4096 + i).toString(16)}`;
      const sha = 'a'.repeat(64);
      return {
        formatVersion: FORMAT_VERSION,
        id,
        target: 'db',
        driver: 'files',
        host: 'h',
        startedAt: at.toISOString(),
        finishedAt: new Date(at.getTime() + 60_000).toISOString(),
        bkVersion: '0.0.0',
        tools: [],
        payload: { kind: 'files', ext: 'tar' },
        compression: 'zstd',
        encryption: null,
        archive: `db/${id}.tar.zst`,
        raw: { bytes: 100, sha256: sha },
        stored: { bytes: 50, sha256: sha },
        tags: [],
      };
    });
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < manifests.length) {
          const m = manifests[next++]!;
          await storage.writeBytes(`db/${m.id}.manifest.json`, serializeManifest(m));
        }
      }),
    );
    expect((await backupsInBucket(client, 'many/')).manifests).toHaveLength(1000);
    const tIn = performance.now();
    expect((await listBackups(storage, 'db')).backups).toHaveLength(1000);
    const inProcessMs = performance.now() - tIn;

    const dir = join(tmp, 'list');
    await mkdir(dir);
    const cfg = await writeConfig(dir, `storages:\n${s3StorageYaml('offsite', { endpoint: s3.endpoint, prefix: 'many' })}targets: {}\n`);
    const version = await runBk(['--version'], { cwd: dir });
    expect(version.exitCode).toBe(0);
    const t0 = performance.now();
    const res = await runBk(['--config', cfg, '--json', 'list'], { cwd: dir });
    const listMs = performance.now() - t0;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.json<{ backups: unknown[] }>().backups).toHaveLength(1000);
    const t1 = performance.now();
    await runBk(['--version'], { cwd: dir });
    const startupMs = performance.now() - t1;
    console.log(`bk list over 1,000 manifests in S3 (s3rver): ${Math.round(listMs)} ms (process start alone: ${Math.round(startupMs)} ms; listBackups in process: ${Math.round(inProcessMs)} ms)`);
    // A loose guard against reading manifests one at a time (~4× slower on the same box).
    expect(listMs).toBeLessThan(20_000);
  });
});
