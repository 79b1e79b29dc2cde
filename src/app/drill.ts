/**
 * Restore drills and scheduled verification from a Context: which driver, key and storage a drill
 * of a stored backup uses. `bk verify --restore-test` and the daemon both come through here.
 */
import type { StoredBackup } from '../catalog/manifest.js';
import { select, type Selector } from '../catalog/select.js';
import { runRestoreDrill, type DrillResult } from '../engine/drill.js';
import { checkIntegrity, type IntegrityReport } from '../engine/restore.js';
import { BkError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { driverFor, storagesFor, targetFor, type Context } from './context.js';
import { decryptionFor } from './decryption.js';
import { findBackups } from './find.js';

/** Drills one stored backup. A target that is not configured (bk --repo) is drilled ad hoc. */
export async function drillBackup(ctx: Context, backup: StoredBackup, storage: Storage, opts: { identity?: string } = {}): Promise<DrillResult> {
  const m = backup.manifest;
  const cfg = ctx.config.targets[m.target] ?? targetFor(ctx, m.driver, { source: m.contents?.[0] });
  if (cfg.driver !== m.driver) {
    throw new BkError('USAGE', `backup ${m.id} was made by driver ${m.driver}, target ${m.target} uses ${cfg.driver}`, { target: m.target, step: 'drill' });
  }
  return runRestoreDrill({
    manifest: m,
    storage,
    driver: driverFor(cfg),
    ...(m.encryption ? optionalDecryption(decryptionFor(ctx, cfg, opts.identity)) : {}),
    drillOptions: cfg.verify?.url ? { url: cfg.verify.url } : {},
    logger: ctx.logger,
    signal: ctx.signal,
    clock: ctx.clock,
  });
}

const optionalDecryption = <T>(d: T | undefined): { decryption?: T } => (d ? { decryption: d } : {});

/**
 * For the daemon: drills the backup of `target` that `selector` picks (default: the latest), from
 * the first of the target's storages that holds it. A passed result's `finishedAt` is the
 * `last_verified_timestamp` to record; anything else is a failure to notify about (`error`).
 */
export async function runDrill(ctx: Context, target: string, selector: Selector = { kind: 'latest' }): Promise<DrillResult> {
  const { storage, backup } = await pick(ctx, target, selector);
  return drillBackup(ctx, backup, storage);
}

export type ScheduledVerifyResult = { kind: 'drill'; drill: DrillResult } | { kind: 'integrity'; backup: StoredBackup; report: IntegrityReport; finishedAt: string };

/**
 * What the daemon runs on a target's `verify.schedule`: a restore drill when `verify.restore_test`
 * is set, else an integrity read (sizes and sha256) of the latest backup.
 */
export async function runScheduledVerify(ctx: Context, target: string): Promise<ScheduledVerifyResult> {
  const cfg = ctx.config.targets[target];
  if (cfg?.verify?.restoreTest) return { kind: 'drill', drill: await runDrill(ctx, target) };
  const { storage, backup } = await pick(ctx, target, { kind: 'latest' });
  const report = await checkIntegrity(storage, backup.manifest, {
    signal: ctx.signal,
    ...optionalDecryption(backup.manifest.encryption ? decryptionFor(ctx, cfg) : undefined),
  });
  return { kind: 'integrity', backup, report, finishedAt: ctx.clock().toISOString() };
}

async function pick(ctx: Context, target: string, selector: Selector): Promise<{ storage: Storage; backup: StoredBackup }> {
  const storages = storagesFor(ctx, ctx.config.targets[target]);
  const [found] = await findBackups(ctx, storages, [target]);
  const sel = select(found?.backups ?? [], selector);
  if (!sel.ok) throw new BkError('NOT_FOUND', `${target}: ${sel.reason}`, { target, step: 'drill' });
  return { storage: storages.find((s) => s.name === sel.backup.storage)!, backup: sel.backup };
}
