/**
 * The prune lock on shared storage: a lock object `<target>/.lock` with an owner and a lease, so two
 * hosts never prune the same target at once (backups need no lock: prune removes only backups
 * whose manifest it listed, and never young orphans, so a backup in progress is safe).
 *
 * Acquire:
 * 1. Read the lock. One held by someone else whose lease has not expired → LOCKED (exit 5) naming
 *    the owner and the expiry. Other hosts honour it until then.
 * 2. An expired one is deleted (its holder stops on its own: see keepAlive), and so is one of
 *    this host whose process is gone (pid and process start time, as for host locks).
 * 3. Create ours. Where the storage can create an object only if it is absent (`createBytes`:
 *    link(2) on local disk; S3's `If-None-Match: *` where the server honours it), a contender that
 *    loses the create reads the winner and reports it. Where the create is known to be exclusive
 *    (`exclusiveCreate`: local disk) that is the whole decision. Otherwise (a plain PUT, or an S3
 *    clone that ignores If-None-Match, like s3rver) we also wait SETTLE_MS and read back: the
 *    last writer owns the lock, and everyone who reads back someone else's nonce backs off. Without
 *    an honoured condition that leaves one window — a contender whose read→write gap is longer
 *    than the settle time, e.g. a process paused mid-acquire — which conditional writes close.
 *    After deleting an expired lock we always read back too: two takers could both have deleted
 *    it, and delete-then-create is not a compare-and-swap (S3 `If-Match` on PUT/DELETE would be).
 * 4. keepAlive() before each deletion renews the lease when half of it is used and fails when the
 *    lock is no longer ours or the lease ran out, so a paused prune stops instead of racing a
 *    newer holder (restic's refresh rule).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';
import { isNotFound, type Storage } from '../storage/storage.js';
import { holderState, processStart } from './host-lock.js';

export const STORAGE_LOCK_NAME = '.lock';
export const DEFAULT_LEASE_MS = 10 * 60_000;
const SETTLE_MS = 500;

export interface StorageLockRecord {
  formatVersion: 1;
  target: string;
  op: string;
  owner: { host: string; pid: number; nonce: string; processStart?: string };
  acquiredAt: string;
  expiresAt: string;
}

export interface StorageLock {
  record: StorageLockRecord;
  /** Renews the lease when due; throws LOCKED if the lock was lost. Call before every deletion. */
  keepAlive(): Promise<void>;
  release(): Promise<void>;
}

export interface StorageLockOptions {
  storage: Storage;
  target: string;
  op: string;
  leaseMs?: number;
  clock?: () => Date;
  logger?: Logger;
  /** How long to wait before reading back a plain (unconditional) write. */
  settleMs?: number;
}

export const storageLockKey = (target: string): string => `${target}/${STORAGE_LOCK_NAME}`;

export async function acquireStorageLock(o: StorageLockOptions): Promise<StorageLock> {
  const key = storageLockKey(o.target);
  const clock = o.clock ?? (() => new Date());
  const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
  const settleMs = o.settleMs ?? SETTLE_MS;
  const nonce = randomBytes(8).toString('hex');
  const ownStart = await processStart(process.pid);
  const where = `${o.storage.name}:${key}`;

  const existing = await readRecord(o.storage, key);
  let brokeExpired = false;
  if (existing !== undefined) {
    // An unreadable lock (not written by bk) blocks until it is as old as a lease.
    const stale = existing === 'unreadable' && ((await o.storage.stat(key))?.modified.getTime() ?? 0) + leaseMs < clock().getTime();
    if (existing === 'unreadable' && !stale) {
      throw new BkError('LOCKED', `${where} exists but cannot be read`, { target: o.target, step: 'lock', hint: `if no prune is running anywhere, delete ${o.storage.describeObject(key)}` });
    }
    // A lock of this host whose process is gone needs no lease to run out.
    const dead = existing !== 'unreadable' && existing.owner.host === hostname() && (await holderState({ pid: existing.owner.pid, processStart: existing.owner.processStart, hostname: existing.owner.host })) === 'dead';
    if (existing !== 'unreadable' && !dead && Date.parse(existing.expiresAt) > clock().getTime()) throw heldError(o.target, where, existing);
    o.logger?.warn(
      existing === 'unreadable'
        ? `removing an unreadable prune lock older than the lease`
        : `taking over the ${dead ? 'stale' : 'expired'} prune lock of ${existing.owner.host} pid ${existing.owner.pid} (${dead ? 'that process is gone' : `expired ${existing.expiresAt}`})`,
      { target: o.target, storage: o.storage.name, step: 'lock' },
    );
    await o.storage.delete(key);
    brokeExpired = true;
  }

  const record = (): StorageLockRecord => {
    const now = clock();
    return {
      formatVersion: 1,
      target: o.target,
      op: o.op,
      owner: { host: hostname(), pid: process.pid, nonce, ...(ownStart ? { processStart: ownStart } : {}) },
      acquiredAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + leaseMs).toISOString(),
    };
  };
  let mine = record();
  const body = (r: StorageLockRecord) => Buffer.from(`${JSON.stringify(r, null, 2)}\n`);

  let needsReadBack = brokeExpired;
  if (o.storage.createBytes) {
    if (!(await o.storage.createBytes(key, body(mine)))) {
      const winner = await readRecord(o.storage, key);
      throw typeof winner === 'object' ? heldError(o.target, where, winner) : new BkError('LOCKED', `${where} was taken by another run`, { target: o.target, step: 'lock', hint: 'try again later' });
    }
    // A server may have ignored the condition (S3 clones): then only the read-back decides.
    if (!o.storage.exclusiveCreate) needsReadBack = true;
  } else {
    await o.storage.writeBytes(key, body(mine));
    needsReadBack = true;
  }
  if (needsReadBack) {
    await sleep(settleMs);
    const back = await readRecord(o.storage, key);
    if (typeof back !== 'object' || back.owner.nonce !== nonce) {
      throw typeof back === 'object' ? heldError(o.target, where, back) : new BkError('LOCKED', `${where} vanished while it was being taken`, { target: o.target, step: 'lock', hint: 'another prune is contending for it; try again later' });
    }
  }

  let released = false;
  return {
    get record() {
      return mine;
    },
    async keepAlive() {
      if (released) throw new BkError('FAILED', 'prune lock used after release', { target: o.target, step: 'lock' });
      const now = clock().getTime();
      if (now >= Date.parse(mine.expiresAt)) {
        throw new BkError('LOCKED', `the prune lock ${where} expired before the prune finished`, { target: o.target, step: 'lock', hint: 'run prune again; nothing was removed after the lease ran out' });
      }
      if (now - Date.parse(mine.acquiredAt) < leaseMs / 2) return;
      const current = await readRecord(o.storage, key);
      if (typeof current !== 'object' || current.owner.nonce !== nonce) {
        throw new BkError('LOCKED', `lost the prune lock ${where}`, { target: o.target, step: 'lock', hint: 'another host took it over; run prune again later' });
      }
      mine = record();
      await o.storage.writeBytes(key, body(mine));
    },
    async release() {
      if (released) return;
      released = true;
      const current = await readRecord(o.storage, key).catch(() => undefined);
      if (typeof current === 'object' && current.owner.nonce === nonce) await o.storage.delete(key);
    },
  };
}

async function readRecord(storage: Storage, key: string): Promise<StorageLockRecord | 'unreadable' | undefined> {
  let bytes: Buffer;
  try {
    bytes = await storage.readBytes(key);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  try {
    const r = JSON.parse(bytes.toString('utf8')) as StorageLockRecord;
    if (typeof r?.owner?.nonce !== 'string' || Number.isNaN(Date.parse(r.expiresAt))) return 'unreadable';
    return r;
  } catch {
    return 'unreadable';
  }
}

function heldError(target: string, where: string, r: StorageLockRecord): BkError {
  return new BkError('LOCKED', `${where} is held by ${r.op} on ${r.owner.host} (pid ${r.owner.pid}, since ${r.acquiredAt}, lease until ${r.expiresAt})`, {
    target,
    step: 'lock',
    hint: 'wait for that prune to finish; other hosts honour the lock until its lease expires',
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
