import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BkError } from '../../src/errors.js';
import { acquireStorageLock, storageLockKey, type StorageLockRecord } from '../../src/locks/storage-lock.js';
import { LocalStorage } from '../../src/storage/local.js';
import { S3Storage } from '../../src/storage/s3.js';
import { StorageError, type Storage } from '../../src/storage/storage.js';
import { makeTmpDir, rmrf, startFaultProxy, startS3, type FaultProxy, type S3Server } from '../harness/index.js';

let dir: string;
let local: LocalStorage;
let s3: S3Server;
let proxy: FaultProxy;
beforeAll(async () => {
  dir = await makeTmpDir('bk-storagelock-');
  local = new LocalStorage('local', dir);
  s3 = await startS3({ buckets: ['backups'] });
  proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
});
afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
  await rmrf(dir);
});

const s3Storage = (endpoint: string, prefix: string) =>
  new S3Storage('offsite', { type: 's3', bucket: 'backups', prefix, endpoint, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, max_attempts: 1 } as never);

/** A conditional create the server ignored: it overwrites, and says it created. */
function ignoredCondition(s: LocalStorage): Storage {
  return { ...plain(s), createBytes: async (k, d) => (await s.writeBytes(k, d), true) };
}

/** The same directory without conditional create: the write, wait, read-back path (plain S3). */
function plain(s: LocalStorage): Storage {
  return {
    name: s.name,
    location: s.location,
    check: () => s.check(),
    write: (k, b, o) => s.write(k, b, o),
    writeBytes: (k, d) => s.writeBytes(k, d),
    read: (k, o) => s.read(k, o),
    readBytes: (k) => s.readBytes(k),
    stat: (k) => s.stat(k),
    list: (p) => s.list(p),
    delete: (k) => s.delete(k),
    describeObject: (k) => s.describeObject(k),
  };
}

async function plantForeign(target: string, expiresAt: Date): Promise<void> {
  const r: StorageLockRecord = {
    formatVersion: 1,
    target,
    op: 'prune',
    owner: { host: 'other-host', pid: 4242, nonce: 'foreign' },
    acquiredAt: new Date(expiresAt.getTime() - 600_000).toISOString(),
    expiresAt: expiresAt.toISOString(),
  };
  await local.writeBytes(storageLockKey(target), Buffer.from(JSON.stringify(r)));
}

describe('storage lock', () => {
  for (const [name, storage] of [
    ['conditional create (local O_EXCL)', () => local],
    ['plain writes (write, settle, read back)', () => plain(local)],
    ['a create whose condition the server ignores (read back)', () => ignoredCondition(local)],
  ] as const) {
    it(`${name}: exactly one of concurrent contenders wins`, async () => {
      const target = `race-${name.length}`;
      const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => acquireStorageLock({ storage: storage(), target, op: 'prune', settleMs: 500 })));
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as BkError).code).toBe('LOCKED');
      await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireStorageLock>>>).value.release();
      expect(await local.stat(storageLockKey(target))).toBeUndefined();
    });
  }

  it('honours another host until its lease expires, naming owner and expiry', async () => {
    await plantForeign('held', new Date(Date.now() + 60_000));
    const err = (await acquireStorageLock({ storage: local, target: 'held', op: 'prune' }).catch((e: unknown) => e)) as BkError;
    expect(err.code).toBe('LOCKED');
    expect(err.exitCode).toBe(5);
    expect(err.message).toMatch(/held by prune on other-host \(pid 4242, since .*, lease until /);
  });

  it('takes over an expired lease', async () => {
    await plantForeign('expired', new Date(Date.now() - 1000));
    const lock = await acquireStorageLock({ storage: local, target: 'expired', op: 'prune', settleMs: 10 });
    const stored = JSON.parse((await local.readBytes(storageLockKey('expired'))).toString()) as StorageLockRecord;
    expect(stored.owner.nonce).toBe(lock.record.owner.nonce);
    await lock.release();
  });

  it('renews at half the lease and stops when the lock was lost or the lease ran out', async () => {
    let now = Date.parse('2024-01-01T00:00:00Z');
    const clock = () => new Date(now);
    const lock = await acquireStorageLock({ storage: local, target: 'lease', op: 'prune', leaseMs: 60_000, clock });
    now += 10_000;
    await lock.keepAlive(); // not due yet
    now += 25_000;
    await lock.keepAlive(); // renewed
    expect(lock.record.expiresAt).toBe(new Date(now + 60_000).toISOString());
    now += 100_000;
    await expect(lock.keepAlive()).rejects.toThrow(/expired before the prune finished/);
    now -= 99_000;
    await plantForeign('lease', new Date(now + 60_000));
    now += 40_000;
    await expect(lock.keepAlive()).rejects.toThrow(/lost the prune lock/);
    await lock.release(); // not ours any more: left alone
    expect((JSON.parse((await local.readBytes(storageLockKey('lease'))).toString()) as StorageLockRecord).owner.nonce).toBe('foreign');
  });

  it('S3 (s3rver ignores If-None-Match): exactly one of concurrent contenders wins, by reading back', async () => {
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => acquireStorageLock({ storage: s3Storage(s3.endpoint, 'race'), target: 'app', op: 'prune', settleMs: 300 })));
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as BkError).code).toBe('LOCKED');
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireStorageLock>>>).value.release();
    expect(await s3Storage(s3.endpoint, 'race').stat(storageLockKey('app'))).toBeUndefined();
  });

  it('S3 that honours If-None-Match: the loser of the conditional PUT reports the holder', async () => {
    const holder = await acquireStorageLock({ storage: s3Storage(s3.endpoint, 'cond'), target: 'app', op: 'prune', settleMs: 10 });
    // What AWS S3 answers to a conditional PUT on a key that exists (the lock written in between
    // this contender's read and its create, so it passes step 1 and loses at the create).
    const storage = s3Storage(proxy.endpoint, 'cond');
    const realRead = storage.readBytes.bind(storage);
    let reads = 0;
    storage.readBytes = async (k) => (reads++ === 0 ? Promise.reject(new StorageError('not-found', 'offsite', 'no lock yet')) : realRead(k));
    proxy.setRule((r) => (r.method === 'PUT' && r.headers['if-none-match'] === '*' ? { type: 'fail', status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold' } : undefined));
    try {
      const err = (await acquireStorageLock({ storage, target: 'app', op: 'prune', settleMs: 10 }).catch((e: unknown) => e)) as BkError;
      expect(err.code).toBe('LOCKED');
      expect(err.message).toMatch(/is held by prune on /);
      expect(proxy.log.some((e) => e.method === 'PUT' && e.status === 412)).toBe(true);
    } finally {
      proxy.setRule(undefined);
    }
    await holder.release();
  });
});
