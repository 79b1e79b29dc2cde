/**
 * One scheduled verification of one target, as `bk schedule` runs it on `verify.schedule`: under
 * the target's host lock (like a backup, prune or restore of it: a prune elsewhere must not delete
 * the archive being read, and a backup must not run alongside), bounded by the target's `timeout`,
 * reported as a VerifyRun with one summary log line. Expected failures come back as failed runs.
 */
import { BkError, ExitCode, toBkError } from '../errors.js';
import { acquireHostLock, hostLockDir, type HostLock } from '../locks/host-lock.js';
import { failedVerifyRun, verifyRunFromDrill, verifyRunFromIntegrity, type VerifyRun } from '../ops/verify-run.js';
import { formatDurationMs } from '../time/duration.js';
import { storagesFor, type Context } from './context.js';
import { runScheduledVerify } from './drill.js';

export async function verifyTarget(ctx: Context, name: string, signal: AbortSignal): Promise<VerifyRun> {
  const started = ctx.clock();
  const cfg = ctx.config.targets[name];
  const kind = cfg?.verify?.restoreTest ? 'drill' : 'integrity';
  const timeoutMs = cfg?.timeoutMs;
  const timeout = timeoutMs !== undefined ? AbortSignal.timeout(timeoutMs) : undefined;
  const runSignal = timeout ? AbortSignal.any([signal, timeout]) : signal;
  const seconds = () => (ctx.clock().getTime() - started.getTime()) / 1000;
  let lock: HostLock | undefined;
  let run: VerifyRun;
  try {
    if (!cfg) throw new BkError('CONFIG', `target ${name} is not configured`, { target: name, step: 'verify' });
    const locations = storagesFor(ctx, cfg).map((s) => s.location);
    lock = await acquireHostLock({ dir: hostLockDir(ctx.env), target: name, locations, command: `bk verify${kind === 'drill' ? ' --restore-test' : ''} (scheduled)`, logger: ctx.logger });
    const r = await runScheduledVerify({ ...ctx, signal: runSignal }, name);
    run =
      r.kind === 'drill'
        ? verifyRunFromDrill(r.drill)
        : verifyRunFromIntegrity({ target: name, id: r.backup.manifest.id, storage: r.backup.storage }, r.report, seconds(), r.finishedAt);
  } catch (e) {
    run = failedVerifyRun(name, kind, toBkError(e, name, kind === 'drill' ? 'drill' : 'verify'), seconds(), ctx.clock());
  } finally {
    await lock?.release();
  }
  if (run.status === 'failed' && timeout?.aborted && !signal.aborted) {
    run = {
      ...run,
      error: new BkError('FAILED', `timed out after ${formatDurationMs(timeoutMs!)}`, {
        target: name,
        step: run.error?.step ?? 'verify',
        hint: 'raise timeout: for this target (it bounds scheduled verifications too), or find out why the restore is slow',
      }),
    };
  }

  const log = ctx.logger.child({ target: name, step: 'verify' });
  const fields = { kind, id: run.id ?? undefined, storage: run.storage ?? undefined, duration: Number(run.seconds.toFixed(3)) };
  if (run.status === 'ok') log.info(`scheduled ${kind === 'drill' ? 'restore drill' : 'integrity check'} passed`, fields);
  else if (run.error?.exitCode === ExitCode.interrupted) log.warn(`scheduled ${kind === 'drill' ? 'restore drill' : 'integrity check'} interrupted`, fields);
  else log.error(run.error?.describe() ?? 'verification failed', { ...fields, status: 'failed', ...(run.error?.step ? { step: run.error.step } : {}) });
  return run;
}
