/** `bk backup [target…]`: back up targets, one after another, and report each. */
import { configuredTargets, driverFor, storageConfigsFor, storagesFor, targetFor, type Context } from '../app/context.js';
import { latestArchiveSize } from '../catalog/catalog.js';
import { runBackup, type BackupResult } from '../engine/backup.js';
import { BkError, ExitCode, toBkError } from '../errors.js';
import { formatBytes, formatDuration } from '../output/format.js';
import { startProgress } from '../output/progress.js';
import { render } from '../output/render.js';
import type { AdHocFlags } from '../drivers/registry.js';
import type { Driver } from '../drivers/driver.js';
import type { Storage } from '../storage/storage.js';
import type { Compression } from '../codecs/compression.js';
import { publishRuns } from '../ops/publish.js';
import { runTarget } from '../ops/target-run.js';
import { acquireHostLock, hostLockDir } from '../locks/host-lock.js';
import { isEmptyPolicy } from '../retention/policy.js';
import { policyFromConfig } from '../retention/config.js';
import { exitCodeFor as pruneExitCode, policyFor, pruneTargetOn, type PruneResult } from './prune.js';
import { retentionFromFlags, type RetentionFlags } from './retention-flags.js';
import { createEncryptionStage } from '../codecs/encryption.js';

export interface BackupFlags extends AdHocFlags, RetentionFlags {
  all?: boolean;
  compression?: Compression;
  tag?: string[];
  /** false with --no-prune. */
  prune?: boolean;
}

export async function backupCommand(ctx: Context, names: string[], flags: BackupFlags): Promise<number> {
  const targets = names.length > 0 && !flags.all ? names : configuredTargets(ctx);
  if (targets.length === 0) {
    throw new BkError('USAGE', 'no target to back up', {
      hint: 'name one (bk backup files --source DIR) or configure targets in backup.config.yaml (bk init)',
    });
  }
  const results: BackupResult[] = [];
  const prunes = new Map<string, PruneResult[]>();
  for (const name of targets) {
    if (ctx.signal.aborted) break;
    results.push(await backupTarget(ctx, name, flags, ctx.signal, prunes));
  }
  await publishRuns(ctx, results);
  render(
    ctx,
    'backup',
    { results: results.map((r) => ({ ...toJson(r), prune: prunes.get(r.target)?.map(pruneJson) ?? null })) },
    () => (ctx.quiet ? '' : results.map((r) => [toText(r), ...(prunes.get(r.target) ?? []).map(pruneText)].join('\n')).join('\n')),
  );
  const code = exitCodeFor(results, ctx.signal.aborted);
  // A backup that worked but could not be pruned still needs attention: disks fill up.
  const pruneFailed = [...prunes.values()].some((p) => pruneExitCode(p, false) !== ExitCode.ok);
  return code === ExitCode.ok && pruneFailed ? ExitCode.partial : code;
}

function pruneJson(p: PruneResult): Record<string, unknown> {
  return {
    storage: p.storage,
    policySource: p.policySource,
    kept: p.outcome?.keep.length ?? null,
    removed: p.outcome?.remove.map((r) => r.id) ?? [],
    garbage: p.outcome?.garbage.map((g) => g.key) ?? [],
    error: p.error ? { code: p.error.code, step: p.error.step ?? null, message: p.error.describe() } : null,
  };
}

function pruneText(p: PruneResult): string {
  if (p.error) return `  prune on ${p.storage} FAILED: ${p.error.describe()}`;
  const o = p.outcome!;
  return `  pruned ${p.storage}: kept ${o.keep.length}, removed ${o.remove.length}${o.garbage.length ? ` and ${o.garbage.length} leftovers` : ''}`;
}

/**
 * The size to plan the upload for: the latest archive's on any of the storages, or — for a first
 * backup — the driver's estimate of the source. A failed estimate is no error: the backup that
 * follows reports the real problem (server down, source missing).
 */
async function expectedArchiveSize(ctx: Context, target: string, storages: Storage[], driver: Driver, signal: AbortSignal): Promise<number | undefined> {
  const previous = await Promise.all(storages.map((s) => latestArchiveSize(s, target).catch(() => undefined)));
  const latest = Math.max(0, ...previous.map((p) => p ?? 0));
  if (latest > 0 || !driver.estimateSize) return latest || undefined;
  try {
    const estimate = await driver.estimateSize({ signal, logger: ctx.logger });
    ctx.logger.debug('estimated the size of a first backup', { target, step: 'estimate size', bytes: estimate ?? null });
    return estimate;
  } catch (e) {
    ctx.logger.debug(`could not estimate the size of a first backup: ${toBkError(e).message}`, { target, step: 'estimate size' });
    return undefined;
  }
}

/**
 * One target with its hooks and timeout; `bk schedule` runs this too, with a signal of its own per
 * run. Usage and config errors are thrown, anything else becomes a failed result.
 */
export async function backupTarget(
  ctx: Context,
  name: string,
  flags: BackupFlags = {},
  signal: AbortSignal = ctx.signal,
  prunes?: Map<string, PruneResult[]>,
): Promise<BackupResult> {
  const started = ctx.clock();
  let lock;
  try {
    const target = targetFor(ctx, name, flags);
    const storages = storagesFor(ctx, target);
    const flagPolicy = retentionFromFlags(flags as Record<string, unknown>);
    lock = await acquireHostLock({ dir: hostLockDir(ctx.env), target: name, locations: storages.map((s) => s.location), command: 'bk backup', logger: ctx.logger });
    const run = { target, storages: storages.map((s) => s.name), logger: ctx.logger, env: ctx.env, signal, clock: ctx.clock };
    const driver = driverFor(target);
    return await runTarget(run, async (signal) => {
      // S3 sizes its upload parts from this, so an archive that outgrew 10,000 default parts fits.
      // Found out only when a storage asks, once, while the dump starts.
      let sizing: Promise<number | undefined> | undefined;
      const expectedSize = () => (sizing ??= expectedArchiveSize(ctx, name, storages, driver, signal));
      const progress = await startProgress(ctx.interactive && !ctx.quiet, `backing up ${name}`);
      const result = await runBackup({
        target: name,
        driver,
        storages,
        compression: flags.compression ?? target.compression,
        compressionLevel: target.compressionLevel,
        ...(target.encryption ? { encryption: createEncryptionStage(target.encryption) } : {}),
        tags: [...target.tags, ...(flags.tag ?? [])],
        logger: ctx.logger,
        signal,
        clock: ctx.clock,
        bkVersion: ctx.bkVersion,
        expectedSize,
        onProgress: (p) => progress.update(p.rawBytes, p.elapsedMs),
      });
      if (result.status === 'ok') progress.succeed(toText(result));
      else progress.fail(toText(result));
      // Prune only the storages that got the new backup, and only when a policy says something.
      if (result.status !== 'failed' && flags.prune !== false && target.prune) {
        const got = storageConfigsFor(ctx, target).filter((c) => result.storages.some((s) => s.ok && s.storage === c.name));
        const withPolicy = got.filter((c) => flagPolicy !== undefined || !isEmptyPolicy(policyFromConfig(policyFor(target, c).policy)));
        if (withPolicy.length > 0) {
          const pruned = await pruneTargetOn(ctx, name, withPolicy, { policy: flagPolicy, dryRun: false, takeHostLock: false });
          prunes?.set(name, pruned);
          for (const p of pruned) if (p.error) ctx.logger.error(`prune after backup failed: ${p.error.describe()}`, { target: name, storage: p.storage });
        }
      }
      return result;
    });
  } catch (e) {
    // Config and usage errors abort the whole command: nothing else would work either.
    const error = toBkError(e, name, 'backup');
    if (error.exitCode === ExitCode.usage) throw error;
    ctx.logger.error(error.describe(), { target: name });
    return {
      target: name,
      id: '',
      status: 'failed',
      storages: [],
      rawBytes: 0,
      storedBytes: 0,
      seconds: (ctx.clock().getTime() - started.getTime()) / 1000,
      error,
    };
  } finally {
    await lock?.release();
  }
}

function toJson(r: BackupResult): Record<string, unknown> {
  return {
    target: r.target,
    id: r.id || null,
    status: r.status,
    rawBytes: r.rawBytes,
    bytes: r.storedBytes,
    sha256: r.status === 'failed' ? null : (r.sha256 ?? null),
    seconds: Number(r.seconds.toFixed(3)),
    storages: r.storages.map((s) => ({ storage: s.storage, ok: s.ok, error: s.error ? s.error.describe() : null })),
    error: r.error ? { code: r.error.code, step: r.error.step ?? null, message: r.error.describe() } : null,
  };
}

function toText(r: BackupResult): string {
  if (r.status === 'ok') {
    const where = r.storages.map((s) => s.storage).join(', ');
    return `${r.target}: backed up ${r.id} → ${where} (${formatBytes(r.rawBytes)} → ${formatBytes(r.storedBytes)}, ${formatDuration(r.seconds)})`;
  }
  const failedStorages = r.storages.filter((s) => !s.ok);
  if (r.status === 'partial') {
    const ok = r.storages.filter((s) => s.ok).map((s) => s.storage);
    return `${r.target}: backed up ${r.id} → ${ok.join(', ')}; FAILED on ${failedStorages.map((s) => `${s.storage} (${s.error?.message})`).join(', ')}`;
  }
  const cause = r.error?.describe() ?? 'unknown error';
  return `${r.target}: backup FAILED: ${cause.startsWith(`${r.target}: `) ? cause.slice(r.target.length + 2) : cause}`;
}

/** 0 all ok · 1 all failed · 3 some targets or storages failed · 130 interrupted (DESIGN §5). */
export function exitCodeFor(results: BackupResult[], interrupted: boolean): number {
  if (interrupted || results.some((r) => r.error?.code === 'INTERRUPTED')) return ExitCode.interrupted;
  if (results.every((r) => r.status === 'ok')) return ExitCode.ok;
  if (results.every((r) => r.status === 'failed')) return results.length === 1 && results[0]!.error ? results[0]!.error.exitCode : ExitCode.failed;
  return ExitCode.partial;
}
