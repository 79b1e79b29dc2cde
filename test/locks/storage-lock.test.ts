import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BkError } from '../../src/errors.js';
import { acquireStorageLock, storageLockKey, type StorageLockRecord } from '../../src/locks/storage-lock.js';
import { LocalStorage } from '../../src/storage/local.js';
import type { Storage } from '../../src/storage/storage.js';
import { makeTmpDir, rmrf } from '../harness/index.js';

let dir: string;
let local: LocalStorage;
beforeAll(async () => {
  dir = await makeTmpDir('bk-storagelock-');
  local = new LocalStorage('local', dir);
});
afterAll(async () => {
  await rmrf(dir);
});

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
  ] as const) {
    it(`${name}: exactly one of concurrent contenders wins`, async () => {
      const target = `race-${name.length}`;
      const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => acquireStorageLock({ storage: storage(), target, op: 'prune', settleMs: 100 })));
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
});
