/**
 * `bk schedule`: the foreground daemon. Runs every target that has a `schedule:` on its cron
 * expression (same path as `bk backup`: hooks, timeout, notifications, metrics), and verifies the
 * latest backup of every target with a `verify.schedule` (a restore drill with `restore_test`,
 * else an integrity read; metrics and notifications too), serves /healthz and /metrics with
 * --listen, and owns the process signals:
 *
 *   SIGTERM / SIGINT  stop starting runs; running backups get --grace to finish, then are aborted
 *                     cleanly (nothing partial is listed); exit 0. A second signal aborts them at
 *                     once (exit 130); a third exits without waiting for their cleanup.
 *   SIGHUP            reload the config; an invalid one is logged and the running one kept.
 */
import { listBackups } from '../catalog/catalog.js';
import { configuredTargets, createStorage, storageConfigsFor, type Context } from '../app/context.js';
import { verifyTarget } from '../app/scheduled-verify.js';
import { loadConfigFile } from '../config/load.js';
import type { BackupResult } from '../engine/backup.js';
import { BkError, ExitCode } from '../errors.js';
import { BackupMetrics } from '../metrics/backup-metrics.js';
import { readMetricsTextfile, writeMetricsTextfile } from '../metrics/textfile.js';
import { notifyRun, notifyVerify } from '../notify/notify.js';
import { parseListen, startHttpListener, type HttpListener } from '../ops/http-listener.js';
import { Scheduler, type ScheduledTarget, type ScheduledVerify } from '../ops/scheduler.js';
import { DURATION_HINT, formatDurationMs, parseDuration } from '../time/duration.js';
import { nextCronRun } from '../time/cron.js';
import { backupTarget } from './backup.js';

export interface ScheduleFlags {
  listen?: string;
  grace?: string;
}

export const DEFAULT_GRACE = '10m';

/** The targets `bk schedule` runs: those with a `schedule:`. */
export function scheduledTargets(ctx: Context): ScheduledTarget[] {
  return configuredTargets(ctx)
    .map((n) => ctx.config.targets[n]!)
    .filter((t) => t.schedule !== undefined)
    .map((t) => ({
      name: t.name,
      schedule: t.schedule!,
      timezone: t.timezone,
      storages: storageConfigsFor(ctx, t).map((s) => s.name),
      jitterMs: t.jitterMs,
      timeoutMs: t.timeoutMs,
      maxAgeMs: t.maxAgeMs,
    }));
}

/** The verifications `bk schedule` runs: targets with a `verify.schedule`. */
export function scheduledVerifications(ctx: Context): ScheduledVerify[] {
  return configuredTargets(ctx)
    .map((n) => ctx.config.targets[n]!)
    .filter((t) => t.verify?.schedule !== undefined)
    .map((t) => ({ name: t.name, schedule: t.verify!.schedule!, timezone: t.timezone, restoreTest: t.verify!.restoreTest, jitterMs: t.jitterMs }));
}

/**
 * `releaseSignals` hands the process signals over from the CLI's default handler (abort on the
 * first signal) to the daemon's own.
 */
export async function scheduleCommand(ctx: Context, flags: ScheduleFlags, releaseSignals: () => void): Promise<number> {
  if (!ctx.config.path) {
    throw new BkError('USAGE', 'bk schedule needs a config file with scheduled targets', { hint: 'pass --config FILE (or BK_CONFIG), with schedule: "0 2 * * *" on a target' });
  }
  const graceMs = parseDuration(flags.grace ?? DEFAULT_GRACE);
  if (graceMs === undefined) throw new BkError('USAGE', `--grace ${flags.grace}: not ${DURATION_HINT}`);
  const listen = flags.listen !== undefined ? parseListen(flags.listen) : undefined;
  const plans = scheduledTargets(ctx);
  const verifications = scheduledVerifications(ctx);
  if (plans.length === 0 && verifications.length === 0) {
    throw new BkError('USAGE', `no target in ${ctx.config.path} has a schedule`, {
      hint: 'add schedule: "0 2 * * *" (cron expression) to a target or to defaults:, or verify: { schedule: "0 4 * * 0" }',
    });
  }

  const logger = ctx.logger;
  let current: Context = { ...ctx, interactive: false };
  const textfile = () => current.config.metrics?.textfile;
  const metrics = await loadMetrics(textfile(), ctx);

  const scheduler = new Scheduler({
    logger,
    clock: ctx.clock,
    runTarget: (name, signal) => backupTarget(current, name, {}, signal),
    onResult: async (r) => {
      metrics.recordRun(r, ctx.clock(), current.config.targets[r.target]?.storages);
      await Promise.all([writeTextfile(textfile(), metrics, current), notifyRun(current.config.notifications ?? [], r, logger, ctx.clock())]);
    },
    runVerify: (name, signal) => verifyTarget(current, name, signal),
    onVerifyResult: async (r) => {
      metrics.verify.record(r);
      await Promise.all([writeTextfile(textfile(), metrics, current), notifyVerify(current.config.notifications ?? [], r, logger, ctx.clock())]);
    },
  });
  scheduler.apply(plans, verifications);
  seedVerified(current, verifications, scheduler, metrics);
  void seedFromStorages(current, plans, scheduler, metrics);

  let http: HttpListener | undefined;
  if (listen) {
    try {
      http = await startHttpListener(
        listen,
        {
          health: () => {
            const h = scheduler.health();
            return { ok: h.status === 'ok', body: h };
          },
          metrics: () => metrics.render(),
        },
        logger,
      );
    } catch (e) {
      await scheduler.stop(0);
      throw e;
    }
  }

  releaseSignals();
  const cleanup: (() => void)[] = [];
  let signals = 0;
  let reloading = Promise.resolve();
  const stopped = new Promise<void>((resolve) => {
    const onStop = (sig: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        logger.info(`${sig}: stopping; running backups get ${formatDurationMs(graceMs)} to finish (send ${sig} again to abort them now)`, { step: 'shutdown' });
        void scheduler.stop(graceMs).then(resolve);
      } else if (signals === 2) {
        logger.warn(`${sig} again: aborting running backups now`, { step: 'shutdown' });
        scheduler.abortNow();
      } else {
        // A backup that does not stop when aborted must not keep the process hostage.
        process.exit(ExitCode.interrupted);
      }
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    cleanup.push(() => {
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
    });
  });
  const onHup = () => {
    reloading = reloading.then(async () => {
      if (scheduler.isStopping) return;
      const path = current.config.path!;
      logger.info(`SIGHUP: reloading ${path}`, { step: 'reload' });
      try {
        const config = await loadConfigFile(path, ctx.env, logger);
        const next: Context = { ...current, config };
        const nextPlans = scheduledTargets(next);
        const nextVerifications = scheduledVerifications(next);
        current = next;
        scheduler.apply(nextPlans, nextVerifications);
        seedVerified(current, nextVerifications, scheduler, metrics);
        void seedFromStorages(current, nextPlans, scheduler, metrics);
        if (nextPlans.length === 0 && nextVerifications.length === 0) logger.warn('the new config schedules no target; idle until the next reload', { step: 'reload' });
        logger.info(`config reloaded: ${jobNames(nextPlans, nextVerifications) || 'no scheduled targets'}`, { step: 'reload' });
      } catch (e) {
        logger.error(`config reload failed, keeping the running config: ${e instanceof BkError ? e.describe() : (e as Error).message}`, { step: 'reload' });
      }
    });
  };
  process.on('SIGHUP', onHup);
  cleanup.push(() => process.off('SIGHUP', onHup));
  logger.info(`bk schedule running: ${jobNames(plans, verifications)}; SIGTERM/SIGINT to stop, SIGHUP to reload`, { step: 'schedule' });

  await stopped;
  await reloading;
  await http?.close();
  for (const c of cleanup) c();
  logger.info(signals > 1 ? 'stopped (running backups aborted)' : 'stopped', { step: 'shutdown' });
  return signals > 1 ? ExitCode.interrupted : ExitCode.ok;
}

/** "a, b, a (verify)": what the daemon runs, for its log lines. */
const jobNames = (plans: readonly ScheduledTarget[], verifications: readonly ScheduledVerify[]): string =>
  [...plans.map((p) => p.name), ...verifications.map((v) => `${v.name} (verify)`)].join(', ');

/** The last passed verifications the metrics textfile remembers, for /healthz. */
function seedVerified(ctx: Context, verifications: readonly ScheduledVerify[], scheduler: Scheduler, metrics: BackupMetrics): void {
  for (const v of verifications) {
    const target = ctx.config.targets[v.name];
    if (!target) continue;
    for (const cfg of storageConfigsFor(ctx, target)) {
      const at = metrics.verify.lastVerified(v.name, cfg.name);
      if (at !== undefined) scheduler.noteVerified(v.name, new Date(at * 1000));
    }
  }
}

async function loadMetrics(path: string | undefined, ctx: Context): Promise<BackupMetrics> {
  if (!path) return new BackupMetrics();
  try {
    return await readMetricsTextfile(path);
  } catch (e) {
    ctx.logger.warn(`cannot read metrics textfile ${path}: ${(e as Error).message}; starting from zero`, { step: 'metrics' });
    return new BackupMetrics();
  }
}

async function writeTextfile(path: string | undefined, metrics: BackupMetrics, ctx: Context): Promise<void> {
  if (!path) return;
  try {
    await writeMetricsTextfile(path, metrics.render());
  } catch (e) {
    ctx.logger.warn(`cannot write metrics textfile ${path}: ${(e as Error).message}`, { step: 'metrics' });
  }
}

/**
 * The last backups already in the storages: they seed the metrics, and a scheduled run that should
 * have happened while the daemon was not running is logged as missed.
 */
async function seedFromStorages(ctx: Context, plans: readonly ScheduledTarget[], scheduler: Scheduler, metrics: BackupMetrics): Promise<void> {
  const now = ctx.clock();
  for (const p of plans) {
    const target = ctx.config.targets[p.name];
    if (!target) continue;
    let newest: BackupResult['manifest'];
    for (const cfg of storageConfigsFor(ctx, target)) {
      try {
        const { backups } = await listBackups(createStorage(cfg, ctx), p.name);
        const last = backups.at(-1)?.manifest;
        if (!last) continue;
        const startedAt = new Date(last.startedAt);
        const finishedAt = new Date(last.finishedAt);
        scheduler.noteSuccess(p.name, cfg.name, { startedAt, finishedAt });
        metrics.seedSuccess(p.name, cfg.name, { finishedAt, seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000, bytes: last.stored.bytes });
        if (!newest || newest.finishedAt < last.finishedAt) newest = last;
      } catch (e) {
        ctx.logger.warn(`cannot list ${cfg.name}: ${(e as Error).message}`, { target: p.name, storage: cfg.name, step: 'schedule' });
      }
    }
    if (newest) {
      const due = nextCronRun(p.schedule, p.timezone, new Date(newest.startedAt));
      if (due.getTime() < scheduler.startedAt.getTime() && due.getTime() < now.getTime()) {
        ctx.logger.warn(`missed scheduled run at ${due.toISOString()} (bk schedule was not running); the last backup is ${newest.id}`, { target: p.name, step: 'schedule' });
      }
    }
  }
}
