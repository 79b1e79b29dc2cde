/**
 * Prune one target on one storage: list, apply the policy, delete what it removes, collect
 * garbage. The catalog is the listing (DESIGN §4), so there is no state to drift.
 *
 * Order of deletion is the reverse of a backup's commit order: the manifest first, then the
 * archive. A crash in between leaves an archive without a manifest — invisible to list, restore
 * and retention, and collected as garbage later — never a listed backup without its archive.
 *
 * Garbage is what a crash leaves: an archive whose manifest does not exist (a backup that died
 * before committing, or a prune that died between its two deletes), the storage's temp files, and
 * uploads it started and never finished (S3 multipart uploads of a killed bk).
 * Both are removed only when older than the grace period, because a backup in progress looks
 * exactly like that until its manifest is written. Objects that are not bk's are never touched.
 */
import { listBackups, type CatalogProblem } from '../catalog/catalog.js';
import { MANIFEST_SUFFIX, manifestKey, type StoredBackup } from '../catalog/manifest.js';
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';
import { acquireStorageLock, STORAGE_LOCK_NAME, type StorageLock } from '../locks/storage-lock.js';
import { TEMP_PREFIX } from '../storage/local.js';
import { StorageError, type IncompleteWrite, type ObjectInfo, type Storage } from '../storage/storage.js';
import { applyPolicy, describePolicy, refusalOf, type RetentionPolicy } from './policy.js';

export const DEFAULT_GARBAGE_GRACE_MS = 24 * 3600_000;

export interface PruneJob {
  storage: Storage;
  target: string;
  policy: RetentionPolicy;
  timeZone: string;
  clock: () => Date;
  dryRun: boolean;
  /** Orphans and temp files younger than this are left alone. */
  graceMs: number;
  logger: Logger;
  signal: AbortSignal;
  /** Pause before each deletion (BK_TEST_PRUNE_DELAY_MS): makes crash and race tests deterministic. */
  testDelayMs?: number;
  /** Lease of the storage lock. */
  leaseMs?: number;
}

export interface KeptBackup {
  id: string;
  time: string;
  reasons: string[];
}

export interface RemovedBackup {
  id: string;
  time: string;
  archive: string;
}

export interface Garbage {
  key: string;
  reason: 'orphan archive' | 'temp file' | 'incomplete upload';
  ageHours: number;
  /** The store's id of an incomplete upload (S3 multipart upload id). */
  uploadId?: string;
}

export interface PruneOutcome {
  target: string;
  storage: string;
  policy: string;
  timeZone: string;
  dryRun: boolean;
  keep: KeptBackup[];
  /** Removed backups (would be removed, with dryRun). */
  remove: RemovedBackup[];
  garbage: Garbage[];
  /** Manifests that could not be read: their backups are neither counted nor removed. */
  problems: CatalogProblem[];
}

/** `<id>.<ext…>` — the names bk gives archives. */
const ARCHIVE_NAME = /^(\d{8}T\d{6}Z-[0-9a-f]{4,})\.(.+)$/;

export async function pruneTarget(job: PruneJob): Promise<PruneOutcome> {
  const { storage, target } = job;
  const log = job.logger.child({ target, storage: storage.name });
  let lock: StorageLock | undefined;
  // Nothing stored for this target here: nothing to decide, and no lock object to leave behind.
  // An upload a killed first backup left behind still counts: it holds space.
  const incompleteAtStart = await listIncomplete(storage, target, log);
  const nothing = (await storage.list(`${target}/`)).length === 0 && incompleteAtStart.length === 0;
  if (!job.dryRun && !nothing) {
    lock = await acquireStorageLock({ storage, target, op: 'prune', clock: job.clock, logger: log, leaseMs: job.leaseMs });
  }
  try {
    // Objects first, manifests second: a manifest committed in between only makes an archive
    // look less orphaned, never more.
    const objects = await storage.list(`${target}/`);
    const catalog = await listBackups(storage, target);
    const now = job.clock();
    const dated = catalog.backups.map((b) => ({ id: b.manifest.id, time: new Date(b.manifest.startedAt), stored: b }));
    const plan = applyPolicy(dated, job.policy, { timeZone: job.timeZone, now });
    const refusal = refusalOf(plan);
    if (refusal) {
      throw new BkError('REFUSED', `${refusal} of ${target} on ${storage.name}; nothing was removed`, {
        target,
        step: 'prune',
        hint: 'check the policy (bk prune --dry-run shows the plan)',
      });
    }
    const garbage = [
      ...findGarbage(target, objects, catalog.backups, catalog.problems, now, job.graceMs),
      ...incompleteGarbage(await listIncomplete(storage, target), now, job.graceMs),
    ];
    const outcome: PruneOutcome = {
      target,
      storage: storage.name,
      policy: describePolicy(job.policy),
      timeZone: job.timeZone,
      dryRun: job.dryRun,
      keep: plan.keep.map((d) => ({ id: d.backup.id, time: d.backup.stored.manifest.startedAt, reasons: d.reasons })),
      remove: plan.remove.map((d) => ({ id: d.backup.id, time: d.backup.stored.manifest.startedAt, archive: d.backup.stored.manifest.archive })),
      garbage,
      problems: catalog.problems,
    };
    if (job.dryRun || !lock || nothing) return outcome;

    const step = async () => {
      if (job.signal.aborted) throw new BkError('INTERRUPTED', 'prune interrupted', { target, step: 'prune' });
      if (job.testDelayMs) await new Promise((r) => setTimeout(r, job.testDelayMs));
      await lock.keepAlive();
    };
    for (const r of outcome.remove) {
      await step();
      await storage.delete(manifestKey(target, r.id));
      await step();
      await storage.delete(r.archive);
      log.info('backup removed', { step: 'prune', id: r.id });
    }
    for (const g of garbage) {
      await step();
      if (g.uploadId !== undefined) await storage.abortIncomplete?.({ key: g.key, id: g.uploadId, started: now });
      else await storage.delete(g.key);
      log.info(`${g.reason} removed`, { step: 'prune', key: g.key, ageHours: g.ageHours });
    }
    return outcome;
  } finally {
    await lock?.release().catch((e: unknown) => log.warn(`could not release the prune lock: ${(e as Error).message}`, { step: 'lock' }));
  }
}

/**
 * Incomplete uploads under the target; none when the store has no such thing, or when the
 * credentials may not list them (S3: s3:ListBucketMultipartUploads) — prune goes on without
 * them: their parts stay until a bucket lifecycle rule removes them.
 */
async function listIncomplete(storage: Storage, target: string, log?: Logger): Promise<IncompleteWrite[]> {
  try {
    return (await storage.listIncomplete?.(`${target}/`)) ?? [];
  } catch (e) {
    if (!(e instanceof StorageError) || e.kind !== 'permission') throw e;
    log?.warn(`cannot list incomplete uploads (${e.message}); parts of interrupted uploads stay until a lifecycle rule removes them`, { step: 'prune' });
    return [];
  }
}

/**
 * Uploads started before the grace period and never finished: a bk killed mid-upload (one that
 * fails or is interrupted aborts its own). A backup running now is younger than the grace.
 */
export function incompleteGarbage(writes: IncompleteWrite[], now: Date, graceMs: number): Garbage[] {
  return writes
    .filter((w) => now.getTime() - w.started.getTime() >= graceMs)
    .map((w) => ({ key: w.key, reason: 'incomplete upload' as const, ageHours: Math.round(((now.getTime() - w.started.getTime()) / 3600_000) * 10) / 10, uploadId: w.id }));
}

/** Archives without a manifest and temp files, older than the grace period. */
export function findGarbage(
  target: string,
  objects: ObjectInfo[],
  backups: StoredBackup[],
  problems: CatalogProblem[],
  now: Date,
  graceMs: number,
): Garbage[] {
  const manifestIds = new Set<string>();
  for (const o of objects) {
    const name = o.key.slice(target.length + 1);
    if (name.endsWith(MANIFEST_SUFFIX)) manifestIds.add(name.slice(0, -MANIFEST_SUFFIX.length));
  }
  for (const b of backups) manifestIds.add(b.manifest.id);
  // An unreadable manifest still claims its archive: it may be repaired, and is never ours to judge.
  for (const p of problems) manifestIds.add(p.key.slice(target.length + 1).replace(MANIFEST_SUFFIX, ''));
  const out: Garbage[] = [];
  for (const o of objects) {
    const name = o.key.slice(target.length + 1);
    if (name.includes('/') || name === STORAGE_LOCK_NAME) continue;
    const age = now.getTime() - o.modified.getTime();
    if (age < graceMs) continue;
    const ageHours = Math.round((age / 3600_000) * 10) / 10;
    if (name.startsWith(TEMP_PREFIX)) {
      out.push({ key: o.key, reason: 'temp file', ageHours });
      continue;
    }
    const m = ARCHIVE_NAME.exec(name);
    if (m && !name.endsWith(MANIFEST_SUFFIX) && !manifestIds.has(m[1]!)) out.push({ key: o.key, reason: 'orphan archive', ageHours });
  }
  return out;
}
