// The manifest cache against a real S3 protocol server (s3rver): a catalog read downloads only the
// manifests it has not read before, and the listing stays the catalog — a changed manifest is read
// again, a deleted one is gone, and a cache that others can write is not used.
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/catalog.js';
import { serializeManifest } from '../../src/catalog/manifest.js';
import { S3Storage } from '../../src/storage/s3.js';
import { s3OptionsSchema } from '../../src/storage/s3-config.js';
import { makeTmpDir, rmrf, startS3, type S3Server } from '../harness/index.js';
import { writeManyManifests } from '../retention/synthetic.js';
import { bucketClient } from '../storage/s3-fixtures.js';

let s3: S3Server;
let client: S3Client;
let tmp: string;
let storage: S3Storage;
let reads: string[];
const cacheDirBefore = process.env.BK_CACHE_DIR;

beforeAll(async () => {
  s3 = await startS3({ buckets: ['backups'] });
  client = bucketClient(s3);
  tmp = await makeTmpDir('bk-manifest-cache-');
  process.env.BK_CACHE_DIR = join(tmp, 'cache');
  storage = new S3Storage('offsite', s3OptionsSchema.parse({ type: 's3', bucket: 'backups', prefix: 'c', endpoint: s3.endpoint, access_key_id: 'S3RVER', secret_access_key: 'S3RVER' }));
  // Counts the downloads the catalog makes; every call still goes to the real storage.
  const readBytes = storage.readBytes.bind(storage);
  storage.readBytes = async (key: string) => {
    reads.push(key);
    return readBytes(key);
  };
  await writeManyManifests(storage, 'db', 40);
});
beforeEach(() => {
  reads = [];
});
afterAll(async () => {
  process.env.BK_CACHE_DIR = cacheDirBefore;
  client?.destroy();
  await s3?.stop();
  if (tmp) await rmrf(tmp);
});

const cacheFiles = async () => (await readdir(join(tmp, 'cache', 'manifests')).catch(() => [] as string[])).map((f) => join(tmp, 'cache', 'manifests', f));

describe('manifest cache', () => {
  it('reads each manifest from the storage once; the next listing downloads none and lists the same', async () => {
    const first = await listBackups(storage, 'db');
    expect(first.backups).toHaveLength(40);
    expect(reads).toHaveLength(40);
    const [file] = await cacheFiles();
    expect((await stat(file!)).mode & 0o777).toBe(0o600);
    expect((await stat(join(tmp, 'cache', 'manifests'))).mode & 0o777).toBe(0o700);

    reads = [];
    const second = await listBackups(storage, 'db');
    expect(reads).toEqual([]);
    expect(second).toEqual(first);
  });

  it('reads a manifest again when its object changed, and never lists one the storage no longer has', async () => {
    const before = (await listBackups(storage, 'db')).backups;
    const changed = before[5]!.manifest;
    await storage.writeBytes(`db/${changed.id}.manifest.json`, serializeManifest({ ...changed, tags: ['changed'] }));
    const gone = before[6]!.manifest;
    await client.send(new DeleteObjectCommand({ Bucket: 'backups', Key: `c/db/${gone.id}.manifest.json` }));

    reads = [];
    const after = (await listBackups(storage, 'db')).backups;
    expect(reads).toEqual([`db/${changed.id}.manifest.json`]);
    expect(after.find((b) => b.manifest.id === changed.id)?.manifest.tags).toEqual(['changed']);
    expect(after.map((b) => b.manifest.id)).not.toContain(gone.id);
    expect(after).toHaveLength(39);
    // The entry of the deleted manifest is dropped from the cache too.
    expect(await readFile((await cacheFiles())[0]!, 'utf8')).not.toContain(gone.id);
  });

  it('does not use a cache file that other users can write', async () => {
    const [file] = await cacheFiles();
    const entries = JSON.parse(await readFile(file!, 'utf8')) as Record<string, { body: string }>;
    // The same length, so only the permission check can keep it out.
    for (const e of Object.values(entries)) e.body = e.body.replace('"files"', '"forgd"');
    await writeFile(file!, JSON.stringify(entries));
    await chmod(file!, 0o666);
    reads = [];
    const listed = (await listBackups(storage, 'db')).backups;
    expect(reads).toHaveLength(39);
    expect(listed.every((b) => b.manifest.driver === 'files')).toBe(true);
  });

  it('BK_CACHE_DIR=off: every listing reads every manifest', async () => {
    process.env.BK_CACHE_DIR = 'off';
    try {
      await listBackups(storage, 'db');
      await listBackups(storage, 'db');
      expect(reads).toHaveLength(78);
    } finally {
      process.env.BK_CACHE_DIR = join(tmp, 'cache');
    }
  });
});
