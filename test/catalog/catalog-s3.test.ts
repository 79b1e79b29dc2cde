// `bk list` over 1,000 backups in S3 lists every one, through the real CLI against s3rver. How long
// it takes is measured by `npm run bench` (section list), not here.
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/catalog.js';
import { S3Storage } from '../../src/storage/s3.js';
import { s3OptionsSchema } from '../../src/storage/s3-config.js';
import { makeTmpDir, rmrf, startS3, type S3Server } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';
import { writeManyManifests } from '../retention/synthetic.js';
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
  it('lists 1,000 backups in S3, in process and through the CLI', async () => {
    const storage = new S3Storage(
      'offsite',
      s3OptionsSchema.parse({ type: 's3', bucket: 'backups', prefix: 'many', endpoint: s3.endpoint, access_key_id: 'S3RVER', secret_access_key: 'S3RVER' }),
    );
    await writeManyManifests(storage, 'db', 1000);
    expect((await backupsInBucket(client, 'many/')).manifests).toHaveLength(1000);
    expect((await listBackups(storage, 'db')).backups).toHaveLength(1000);

    const dir = join(tmp, 'list');
    await mkdir(dir);
    const cfg = await writeConfig(dir, `storages:\n${s3StorageYaml('offsite', { endpoint: s3.endpoint, prefix: 'many' })}targets: {}\n`);
    const res = await runBk(['--config', cfg, '--json', 'list'], { cwd: dir });
    expect(res.exitCode, res.stderr).toBe(0);
    const ids = res.json<{ backups: { id: string }[] }>().backups.map((b) => b.id);
    expect(new Set(ids).size).toBe(1000);
  });
});
