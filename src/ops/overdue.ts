/**
 * Is a target's backup overdue? Pure: a function of the target's schedule settings, its last
 * backup and the time, so `bk status`, `/healthz` and the tests agree.
 *
 * With a schedule, the next backup is expected at the first scheduled time after the last one
 * started; it may start up to `jitter` late and take up to `timeout` (an hour when unset), and only
 * after that is it overdue. With `max_age`, the last backup may be at most that old. A target with
 * neither is never overdue.
 */
import { formatDurationMs } from '../time/duration.js';
import { nextCronRun } from '../time/cron.js';

/** How long a scheduled run may take before it counts as missing, when the target sets no timeout. */
export const DEFAULT_RUN_ALLOWANCE_MS = 60 * 60_000;

export interface Expectation {
  schedule?: string;
  timezone: string;
  jitterMs?: number;
  timeoutMs?: number;
  maxAgeMs?: number;
}

export interface LastBackup {
  startedAt: Date;
  finishedAt: Date;
}

export interface Assessment {
  overdue: boolean;
  /** Why it is overdue. */
  reason?: string;
  /** When the schedule expects the next backup to start. */
  nextExpected?: Date;
  /** After this instant without a newer backup, the target is overdue. */
  deadline?: Date;
  ageSeconds?: number;
}

/**
 * `since`: count from here when it is later than the last backup (the daemon's start: a scheduler
 * that just started is not blamed for runs it was not there to make).
 */
export function assessBackup(exp: Expectation, last: LastBackup | undefined, now: Date, since?: Date): Assessment {
  const ageSeconds = last ? Math.max(0, (now.getTime() - last.finishedAt.getTime()) / 1000) : undefined;
  if (exp.schedule === undefined && exp.maxAgeMs === undefined) return { overdue: false, ...(ageSeconds !== undefined ? { ageSeconds } : {}) };
  const startRef = latest(last?.startedAt, since);
  const finishRef = latest(last?.finishedAt, since);
  if (!startRef || !finishRef) return { overdue: true, reason: 'no backup yet' };

  const deadlines: { at: Date; reason: string }[] = [];
  let nextExpected: Date | undefined;
  if (exp.schedule !== undefined) {
    nextExpected = nextCronRun(exp.schedule, exp.timezone, startRef);
    const allowance = (exp.jitterMs ?? 0) + (exp.timeoutMs ?? DEFAULT_RUN_ALLOWANCE_MS);
    deadlines.push({ at: new Date(nextExpected.getTime() + allowance), reason: `the run due at ${nextExpected.toISOString()} has not produced a backup` });
  }
  if (exp.maxAgeMs !== undefined) {
    deadlines.push({
      at: new Date(finishRef.getTime() + exp.maxAgeMs),
      reason: last ? `the last backup is older than max_age ${formatDurationMs(exp.maxAgeMs)}` : `no backup within max_age ${formatDurationMs(exp.maxAgeMs)}`,
    });
  }
  deadlines.sort((a, b) => a.at.getTime() - b.at.getTime());
  const first = deadlines[0]!;
  const overdue = now.getTime() > first.at.getTime();
  return {
    overdue,
    ...(overdue ? { reason: first.reason } : {}),
    ...(nextExpected ? { nextExpected } : {}),
    deadline: first.at,
    ...(ageSeconds !== undefined ? { ageSeconds } : {}),
  };
}

function latest(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.getTime() >= b.getTime() ? a : b;
}
