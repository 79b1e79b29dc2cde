// The previous archive's size (the S3 part-size guess) comes from the listing alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestArchiveSize } from '../../src/catalog/catalog.js';
import { LocalStorage } from '../../src/storage/local.js';
import { makeTmpDir, rmrf } from '../harness/index.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTmpDir('bk-latest-size-');
});
afterAll(async () => rmrf(dir));

describe('latestArchiveSize', () => {
  it('is the stored size of the newest committed archive of the target', async () => {
    const s = new LocalStorage('local', dir);
    expect(await latestArchiveSize(s, 'db')).toBeUndefined();
    await s.writeBytes('db/20240101T000000Z-aaaa.sql.zst', Buffer.alloc(10));
    await s.writeBytes('db/20240101T000000Z-aaaa.manifest.json', Buffer.from('{}'));
    await s.writeBytes('db/20240102T000000Z-bbbb.sql.zst', Buffer.alloc(30));
    await s.writeBytes('db/20240102T000000Z-bbbb.manifest.json', Buffer.from('{}'));
    // An archive without a manifest (a failed run) does not count.
    await s.writeBytes('db/20240103T000000Z-cccc.sql.zst', Buffer.alloc(99));
    await s.writeBytes('db2/20240109T000000Z-dddd.sql.zst', Buffer.alloc(77));
    await s.writeBytes('db2/20240109T000000Z-dddd.manifest.json', Buffer.from('{}'));
    expect(await latestArchiveSize(s, 'db')).toBe(30);
  });
  it('is undefined when the storage cannot be listed', async () => {
    expect(await latestArchiveSize(new LocalStorage('x', '/proc/1/nonexistent-root'), 'db')).toBeUndefined();
  });
});
