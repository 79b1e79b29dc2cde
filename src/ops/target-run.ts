/**
 * One run of one target, as `bk backup` and `bk schedule` both do it: before hooks (a failure
 * stops the run before anything is written), the backup bounded by the target's `timeout`, after
 * hooks by outcome, and one summary log line with bytes and duration.
 */
import type { BackupResult } from '../engine/backup.js';
import type { TargetConfig } from '../config/resolve.js';
import { BkError, toBkError } from '../errors.js';
import { runAfterHooks, runBeforeHooks, type HookRun } from '../hooks/run-hooks.js';
import type { Logger } from '../log.js';
import { formatDurationMs } from '../time/duration.js';

export interface TargetRun {
  target: TargetConfig;
  /** Names of the storages the backup writes to (for results of runs that never reached them). */
  storages: string[];
  logger: Logger;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  clock: () => Date;
}

export async function runTarget(run: TargetRun, backup: (signal: AbortSignal) => Promise<BackupResult>): Promise<BackupResult> {
  const name = run.target.name;
  const started = run.clock();
  const hooks = run.target.hooks ?? { before: [], after: [] };
  const hookRun: HookRun = { target: name, logger: run.logger, env: run.env, signal: run.signal };

  let result: BackupResult | undefined;
  try {
    await runBeforeHooks(hooks.before, hookRun);
  } catch (e) {
    result = notStarted(run, toBkError(e, name, 'before hook'), started);
  }
  if (!result) {
    const timeout = run.target.timeoutMs !== undefined ? AbortSignal.timeout(run.target.timeoutMs) : undefined;
    result = await backup(timeout ? AbortSignal.any([run.signal, timeout]) : run.signal);
    if (timeout?.aborted && !run.signal.aborted && result.status === 'failed') result = timedOut(result, run.target.timeoutMs!);
  }
  await runAfterHooks(hooks.after, result.status === 'ok' ? 'success' : 'failure', hookRun, result.id ? { BK_BACKUP_ID: result.id } : {});

  const log = run.logger.child({ target: name });
  if (result.status === 'ok') {
    log.info('backup finished', { step: 'done', status: result.status, id: result.id, bytes: result.storedBytes, rawBytes: result.rawBytes, duration: round(result.seconds) });
  } else {
    log.error(result.error?.describe() ?? 'backup failed', { step: result.error?.step ?? 'backup', status: result.status, id: result.id || undefined, bytes: result.storedBytes, duration: round(result.seconds) });
  }
  return result;
}

const round = (s: number): number => Number(s.toFixed(3));

function notStarted(run: TargetRun, error: BkError, started: Date): BackupResult {
  return {
    target: run.target.name,
    id: '',
    status: 'failed',
    storages: run.storages.map((storage) => ({ storage, ok: false, error })),
    rawBytes: 0,
    storedBytes: 0,
    seconds: (run.clock().getTime() - started.getTime()) / 1000,
    error,
  };
}

/** The engine reports a timeout as an interruption; it is a failure of the run, with a fix. */
function timedOut(r: BackupResult, ms: number): BackupResult {
  const error = new BkError('FAILED', `timed out after ${formatDurationMs(ms)}; nothing was stored`, {
    target: r.target,
    step: r.error?.step ?? 'backup',
    hint: 'raise timeout: for this target, or find out why the backup is slow',
  });
  return {
    ...r,
    status: 'failed',
    storages: r.storages.map((s) => (s.ok ? s : { ...s, error })),
    error,
  };
}
