/**
 * `bk prune [target…] [--dry-run] [--keep-* …] [--storage NAME] [--grace D]`: per target and
 * storage, what the retention policy keeps (with every reason) and what it removes; then removes it
 * (manifest first, then archive) and collects old crash leftovers. Also run after every successful
 * backup (commands/backup.ts), through `pruneTargetOn`.
 */
import { storageConfigsFor, createStorage, configuredTargets, type Context } from '../app/context.js';
import { listBackups } from '../catalog/catalog.js';
import type { StorageConfig, TargetConfig } from '../config/resolve.js';
import { NAME } from '../config/schema.js';
import { BkError, ExitCode, toBkError } from '../errors.js';
import { acquireHostLock, hostLockDir, type HostLock } from '../locks/host-lock.js';
import { table } from '../output/format.js';
import { render } from '../output/render.js';
import { policyFromConfig, policyToConfig, type RetentionConfig } from '../retention/config.js';
import { parseDuration, subtractDuration } from '../retention/duration.js';
import { DEFAULT_GARBAGE_GRACE_MS, pruneTarget, type PruneOutcome } from '../retention/prune.js';
import { mapLimit } from '../util/concurrency.js';
import { retentionFromFlags, type RetentionFlags } from './retention-flags.js';

export interface PruneFlags extends RetentionFlags {
  dryRun?: boolean;
  storage?: string;
  grace?: string;
}

export interface PruneResult {
  target: string;
  storage: string;
  /** Where the policy came from: "command line", "defaults.retention", "storages.x.retention", … */
  policySource: string;
  policyConfig: RetentionConfig;
  outcome?: PruneOutcome;
  error?: BkError;
}

export interface PruneOptions {
  /** A policy from flags; replaces every configured one. */
  policy?: RetentionConfig;
  dryRun: boolean;
  /** Garbage grace as a restic duration (flag), else the target's, else 24h. */
  grace?: string;
  /** False when the caller already holds the target's host lock (prune after backup). */
  takeHostLock: boolean;
}

export async function pruneCommand(ctx: Context, names: string[], flags: PruneFlags): Promise<number> {
  const options: PruneOptions = { policy: retentionFromFlags(flags as Record<string, unknown>), dryRun: Boolean(flags.dryRun), grace: flags.grace, takeHostLock: !flags.dryRun };
  if (flags.grace !== undefined && typeof parseDuration(flags.grace) === 'string') {
    throw new BkError('USAGE', `--grace ${flags.grace}: ${parseDuration(flags.grace) as string}`);
  }
  for (const n of names) if (!NAME.test(n)) throw new BkError('USAGE', `"${n}" is not a target name`);
  const targets = names.length > 0 ? names : configuredTargets(ctx).length > 0 ? configuredTargets(ctx) : await targetsInStorages(ctx);
  if (targets.length === 0) throw new BkError('USAGE', 'no target to prune', { hint: 'name one, or configure targets in backup.config.yaml' });

  const results: PruneResult[] = [];
  for (const name of targets) {
    if (ctx.signal.aborted) break;
    const target = ctx.config.targets[name];
    const storages = storageConfigsFor(ctx, target).filter((s) => flags.storage === undefined || s.name === flags.storage);
    if (storages.length === 0) throw new BkError('USAGE', `no storage named "${flags.storage}" for ${name}`);
    results.push(...(await pruneTargetOn(ctx, name, storages, options)));
  }
  render(ctx, 'prune', { dryRun: options.dryRun, results: results.map(toJson) }, () => (ctx.quiet ? '' : results.map(toText).join('\n\n')));
  return exitCodeFor(results, ctx.signal.aborted);
}

/** Prunes one target on the given storages, one after another, under the target's host lock. */
export async function pruneTargetOn(ctx: Context, name: string, storageConfigs: StorageConfig[], o: PruneOptions): Promise<PruneResult[]> {
  const target: TargetConfig | undefined = ctx.config.targets[name];
  const timeZone = target?.timezone ?? ctx.config.timezone;
  const storages = storageConfigs.map((c) => ({ config: c, storage: createStorage(c, ctx) }));
  const policies = storageConfigs.map((c) => (o.policy ? { policy: o.policy, source: 'command line' } : policyFor(target, c)));
  let lock: HostLock | undefined;
  try {
    if (o.takeHostLock) {
      lock = await acquireHostLock({ dir: hostLockDir(ctx.env), target: name, locations: storages.map((s) => s.storage.location), command: 'bk prune', logger: ctx.logger });
    }
  } catch (e) {
    const error = toBkError(e, name, 'lock');
    ctx.logger.error(error.describe(), { target: name });
    return storages.map((s, i) => ({ target: name, storage: s.config.name, policySource: policies[i]!.source, policyConfig: policies[i]!.policy, error }));
  }
  try {
    const results: PruneResult[] = [];
    for (const [i, { config, storage }] of storages.entries()) {
      const { policy, source } = policies[i]!;
      const base = { target: name, storage: config.name, policySource: source, policyConfig: policyToConfig(policy) };
      try {
        const outcome = await pruneTarget({
          storage,
          target: name,
          policy: policyFromConfig(policy),
          timeZone,
          clock: ctx.clock,
          dryRun: o.dryRun,
          graceMs: graceMs(o.grace ?? target?.garbageGrace, ctx.clock(), timeZone),
          logger: ctx.logger,
          signal: ctx.signal,
          testDelayMs: ctx.env.BK_TEST_PRUNE_DELAY_MS ? Number(ctx.env.BK_TEST_PRUNE_DELAY_MS) : undefined,
        });
        for (const p of outcome.problems) ctx.logger.warn(`ignoring ${p.key}: ${p.error}`, { storage: p.storage });
        results.push({ ...base, outcome });
      } catch (e) {
        const error = toBkError(e, name, 'prune');
        ctx.logger.error(error.describe(), { target: name, storage: config.name });
        results.push({ ...base, error });
      }
    }
    return results;
  } finally {
    await lock?.release();
  }
}

/**
 * The policy for a target on a storage, most specific first, each replacing the others whole
 * (keys are never merged): targets.<t>.retention_by_storage.<s> → storages.<s>.retention →
 * targets.<t>.retention → defaults.retention → none (keep everything).
 */
export function policyFor(target: TargetConfig | undefined, storage: StorageConfig): { policy: RetentionConfig; source: string } {
  const byStorage = target?.retentionByStorage[storage.name];
  if (byStorage) return { policy: byStorage, source: `targets.${target!.name}.retention_by_storage.${storage.name}` };
  if (storage.retention) return { policy: storage.retention, source: `storages.${storage.name}.retention` };
  if (target?.retention) return target.retention;
  return { policy: {}, source: 'none' };
}

function graceMs(grace: string | undefined, now: Date, timeZone: string): number {
  if (grace === undefined) return DEFAULT_GARBAGE_GRACE_MS;
  const d = parseDuration(grace);
  if (typeof d === 'string') throw new BkError('CONFIG', `garbage_grace: ${d}`, { step: 'config' });
  return now.getTime() - subtractDuration(now, d, timeZone).getTime();
}

/** Without config: every target that has backups in the storages. */
async function targetsInStorages(ctx: Context): Promise<string[]> {
  const catalogs = await mapLimit(storageConfigsFor(ctx).map((c) => createStorage(c, ctx)), 4, (s) => listBackups(s));
  return [...new Set(catalogs.flatMap((c) => c.backups.map((b) => b.manifest.target)))].sort();
}

function toJson(r: PruneResult): Record<string, unknown> {
  const o = r.outcome;
  return {
    target: r.target,
    storage: r.storage,
    policy: r.policyConfig,
    policySource: r.policySource,
    timezone: o?.timeZone ?? null,
    keep: o?.keep ?? [],
    remove: o?.remove.map(({ id, time }) => ({ id, time })) ?? [],
    garbage: o?.garbage ?? [],
    error: r.error ? { code: r.error.code, step: r.error.step ?? null, message: r.error.describe() } : null,
  };
}

function toText(r: PruneResult): string {
  const head = `${r.target} on ${r.storage}`;
  if (!r.outcome) return `${head}: prune FAILED: ${r.error?.describe() ?? 'unknown error'}`;
  const o = r.outcome;
  const verb = o.dryRun ? 'would remove' : 'removed';
  const rows = [
    ...o.keep.map((k) => ['keep', k.id, k.reasons.join(', ')]),
    ...o.remove.map((x) => [o.dryRun ? 'would remove' : 'remove', x.id, '']),
    ...o.garbage.map((g) => [o.dryRun ? 'would remove' : 'remove', g.key, `${g.reason}, ${g.ageHours} h old`]),
  ];
  const summary =
    o.remove.length + o.garbage.length === 0
      ? 'nothing to remove'
      : `${verb} ${o.remove.length} backup${o.remove.length === 1 ? '' : 's'}${o.garbage.length ? ` and ${o.garbage.length} leftover${o.garbage.length === 1 ? '' : 's'}` : ''}`;
  return [`${head}: ${o.policy} (${r.policySource}; days in ${o.timeZone})`, ...(rows.length ? [table(rows).replace(/^/gm, '  ')] : []), `  ${summary}`].join('\n');
}

/** 0 ok · the error's code when everything failed the same way · 3 when some failed (DESIGN §5). */
export function exitCodeFor(results: PruneResult[], interrupted: boolean): number {
  if (interrupted || results.some((r) => r.error?.code === 'INTERRUPTED')) return ExitCode.interrupted;
  const failed = results.filter((r) => r.error);
  if (failed.length === 0) return ExitCode.ok;
  if (failed.length === results.length) {
    const codes = new Set(failed.map((r) => r.error!.exitCode));
    return codes.size === 1 ? [...codes][0]! : ExitCode.failed;
  }
  return ExitCode.partial;
}
