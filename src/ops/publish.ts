/**
 * After `bk backup` and `bk verify`: each run's notifications, and the metrics textfile updated
 * (read, counted, renamed into place). Failures here are logged and never change the exit code.
 */
import type { ResolvedConfig } from '../config/resolve.js';
import type { BackupResult } from '../engine/backup.js';
import type { Logger } from '../log.js';
import { readMetricsTextfile, writeMetricsTextfile } from '../metrics/textfile.js';
import type { BackupMetrics } from '../metrics/backup-metrics.js';
import { notifyRun, notifyVerify } from '../notify/notify.js';
import type { VerifyRun } from './verify-run.js';

export interface PublishContext {
  config: ResolvedConfig;
  logger: Logger;
  clock: () => Date;
}

export async function publishRuns(ctx: PublishContext, results: readonly BackupResult[]): Promise<void> {
  await Promise.all(results.map((r) => notifyRun(ctx.config.notifications ?? [], r, ctx.logger, ctx.clock())));
  if (results.length > 0) await updateTextfile(ctx, (m) => {
      for (const r of results) m.recordRun(r, ctx.clock(), ctx.config.targets[r.target]?.storages);
    });
}

export async function publishVerifies(ctx: PublishContext, runs: readonly VerifyRun[]): Promise<void> {
  await Promise.all(runs.map((r) => notifyVerify(ctx.config.notifications ?? [], r, ctx.logger, ctx.clock())));
  if (runs.length > 0) await updateTextfile(ctx, (m) => {
      for (const r of runs) m.verify.record(r);
    });
}

async function updateTextfile(ctx: PublishContext, update: (m: BackupMetrics) => void): Promise<void> {
  const textfile = ctx.config.metrics?.textfile;
  if (!textfile) return;
  try {
    const metrics = await readMetricsTextfile(textfile);
    update(metrics);
    await writeMetricsTextfile(textfile, metrics.render());
  } catch (e) {
    ctx.logger.warn(`cannot write metrics textfile ${textfile}: ${(e as Error).message}`, { step: 'metrics' });
  }
}
