/**
 * The scheduler behind `bk schedule`: one node-cron task per scheduled target, at most one run per
 * target at a time (node-cron's noOverlap, plus our own guard that also holds across config
 * reloads), a random jitter before each run, missed and skipped runs logged, and a graceful stop:
 * no new runs, running ones get a grace period, then their AbortSignal fires.
 *
 * Verifications (`verify.schedule`: restore drill or integrity read) are jobs of their own under
 * the same rules. A target's backup and its verification never run at the same time: they would
 * contend for the target's host lock, and a prune after the backup could delete the archive the
 * drill is reading. The one that comes second waits for the first to finish (logged) rather than
 * being skipped: skipping would drop a weekly drill whenever the nightly backup overran, or a
 * backup whenever a drill ran long (a target's `timeout` bounds both); and a drill scheduled at
 * the backup's time then checks the fresh backup.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackupResult } from '../engine/backup.js';
import { BkError, toBkError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatDurationMs } from '../time/duration.js';
import { nextCronRun } from '../time/cron.js';
import { assessBackup, type Assessment, type LastBackup } from './overdue.js';
import { failedVerifyRun, type VerifyRun } from './verify-run.js';

export interface ScheduledTarget {
  name: string;
  schedule: string;
  timezone: string;
  storages: string[];
  jitterMs?: number;
  timeoutMs?: number;
  maxAgeMs?: number;
}

/** A target's `verify.schedule`. */
export interface ScheduledVerify {
  name: string;
  schedule: string;
  timezone: string;
  /** A restore drill; else an integrity read. */
  restoreTest: boolean;
  jitterMs?: number;
}

export type JobKind = 'backup' | 'verify';

export interface SchedulerDeps {
  logger: Logger;
  clock: () => Date;
  /** One run of a target to completion; expected failures come back as failed results. */
  runTarget(name: string, signal: AbortSignal): Promise<BackupResult>;
  /** After every run: metrics, notifications. Errors are logged. */
  onResult(result: BackupResult): Promise<void>;
  /** One verification of a target's latest backup; needed when verifications are scheduled. */
  runVerify?(name: string, signal: AbortSignal): Promise<VerifyRun>;
  /** After every verification: metrics, notifications. Errors are logged. */
  onVerifyResult?(result: VerifyRun): Promise<void>;
  random?: () => number;
}

interface ActiveRun {
  kind: JobKind;
  promise: Promise<void>;
  controller: AbortController;
  since: Date;
}

/** How a job is named in logs and in `running()`: the target, or "<target> (verify)". */
const jobLabel = (kind: JobKind, name: string): string => (kind === 'backup' ? name : `${name} (verify)`);

export interface TargetHealth {
  target: string;
  schedule: string;
  timezone: string;
  running: boolean;
  runningSince: string | null;
  nextRun: string | null;
  overdue: boolean;
  storages: ({ storage: string; lastSuccess: string | null } & Omit<Assessment, 'nextExpected' | 'deadline'> & { deadline: string | null })[];
}

export interface VerifyHealth {
  target: string;
  schedule: string;
  timezone: string;
  kind: VerifyRun['kind'];
  running: boolean;
  nextRun: string | null;
  /** When a verification last passed (this run of the daemon, or the metrics textfile). */
  lastVerified: string | null;
  lastRun: { status: VerifyRun['status']; finishedAt: string; id: string | null; error: string | null } | null;
}

export interface Health {
  /** Verifications do not change it: a failed drill is notified and counted, not a daemon fault. */
  status: 'ok' | 'overdue' | 'stopping';
  startedAt: string;
  targets: TargetHealth[];
  verifications: VerifyHealth[];
}

export class Scheduler {
  private readonly tasks = new Map<string, ScheduledTask>();
  private plans = new Map<string, ScheduledTarget>();
  private verifyPlans = new Map<string, ScheduledVerify>();
  /** Keyed by jobLabel(). */
  private readonly runs = new Map<string, ActiveRun>();
  /** The job of each target that holds it now; the other kind waits for `released`. */
  private readonly holders = new Map<string, { kind: JobKind; released: Promise<void> }>();
  private readonly lastSuccess = new Map<string, LastBackup>();
  private readonly lastVerify = new Map<string, VerifyRun>();
  private readonly lastVerified = new Map<string, Date>();
  private readonly stopping = new AbortController();
  private readonly stopped: Promise<void>;
  private forceAbort: (() => void) | undefined;
  readonly startedAt: Date;

  constructor(private readonly deps: SchedulerDeps) {
    this.startedAt = deps.clock();
    this.stopped = new Promise((resolve) => this.stopping.signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  get isStopping(): boolean {
    return this.stopping.signal.aborted;
  }

  /** Installs these schedules, replacing the previous ones; running backups and verifications are not touched. */
  apply(targets: readonly ScheduledTarget[], verifications: readonly ScheduledVerify[] = []): void {
    if (this.isStopping) return;
    if (verifications.length > 0 && !this.deps.runVerify) throw new Error('Scheduler: verifications scheduled without runVerify');
    for (const task of this.tasks.values()) void task.destroy();
    this.tasks.clear();
    this.plans = new Map(targets.map((t) => [t.name, t]));
    this.verifyPlans = new Map(verifications.map((v) => [v.name, v]));
    for (const t of targets) this.install('backup', t);
    for (const v of verifications) this.install('verify', v);
  }

  private install(kind: JobKind, t: { name: string; schedule: string; timezone: string }): void {
    const cronLogger = {
      info: (m: string) => this.deps.logger.debug(m, { step: 'cron' }),
      warn: (m: string) => this.deps.logger.debug(m, { step: 'cron' }),
      error: (m: string | Error) => this.deps.logger.error(String(m instanceof Error ? m.message : m), { step: 'cron' }),
      debug: (m: string | Error) => this.deps.logger.debug(String(m instanceof Error ? m.message : m), { step: 'cron' }),
    };
    const what = kind === 'backup' ? 'run' : 'verification';
    const log = this.deps.logger.child({ target: t.name, step: 'schedule' });
    const label = jobLabel(kind, t.name);
    const task = cron.createTask(t.schedule, (c) => this.fire(kind, t.name, c.date), { name: `bk:${label}`, timezone: t.timezone, noOverlap: true, logger: cronLogger });
    task.on('execution:overlap', (c) => log.warn(`scheduled ${what} skipped: the previous ${what} is still going`, { scheduledFor: c.date.toISOString() }));
    task.on('execution:missed', (c) => log.warn(`scheduled ${what} missed (the process was busy or suspended)`, { scheduledFor: c.date.toISOString() }));
    void task.start();
    this.tasks.set(label, task);
    log.info(kind === 'backup' ? 'scheduled' : 'verification scheduled', { schedule: t.schedule, timezone: t.timezone, nextRun: nextCronRun(t.schedule, t.timezone, this.deps.clock()).toISOString() });
  }

  /** A successful backup of `target` in `storage` (from a run, or found in the storage at start). */
  noteSuccess(target: string, storage: string, b: LastBackup): void {
    const key = `${target}\0${storage}`;
    const known = this.lastSuccess.get(key);
    if (!known || known.finishedAt.getTime() < b.finishedAt.getTime()) this.lastSuccess.set(key, b);
  }

  /** When a verification of `target` passed (from a run, or the metrics textfile at start). */
  noteVerified(target: string, at: Date): void {
    const known = this.lastVerified.get(target);
    if (!known || known.getTime() < at.getTime()) this.lastVerified.set(target, at);
  }

  /** Running jobs (also those waiting for their jitter or for the target): "<target>" or "<target> (verify)". */
  running(): string[] {
    return [...this.runs.keys()];
  }

  private async fire(kind: JobKind, name: string, scheduledFor: Date): Promise<void> {
    if (this.isStopping || !(kind === 'backup' ? this.plans : this.verifyPlans).has(name)) return;
    const log = this.deps.logger.child({ target: name, step: 'schedule' });
    const label = jobLabel(kind, name);
    if (this.runs.has(label)) {
      const what = kind === 'backup' ? 'run' : 'verification';
      log.warn(`scheduled ${what} skipped: the previous ${what} is still going`, { scheduledFor: scheduledFor.toISOString() });
      return;
    }
    const controller = new AbortController();
    const promise = this.execute(kind, name, scheduledFor, controller.signal);
    this.runs.set(label, { kind, promise, controller, since: this.deps.clock() });
    try {
      await promise;
    } finally {
      this.runs.delete(label);
    }
  }

  private async execute(kind: JobKind, name: string, scheduledFor: Date, signal: AbortSignal): Promise<void> {
    const plan = kind === 'backup' ? this.plans.get(name)! : this.verifyPlans.get(name)!;
    const log = this.deps.logger.child({ target: name, step: 'schedule' });
    const delay = plan.jitterMs ? Math.floor((this.deps.random ?? Math.random)() * plan.jitterMs) : 0;
    if (delay > 0) {
      log.debug(`waiting ${formatDurationMs(delay)} (jitter)`);
      try {
        await sleep(delay, undefined, { signal: this.stopping.signal });
      } catch {
        return; // stopping: a run that has not started is not started
      }
    }
    if (this.isStopping) return;
    const release = await this.takeTarget(kind, name);
    if (!release) return; // stopping while waiting for the target: not started either
    if (kind === 'verify') {
      let run: VerifyRun;
      try {
        run = await this.verifyOnce(name, scheduledFor, signal, (plan as ScheduledVerify).restoreTest);
      } finally {
        release();
      }
      try {
        await this.deps.onVerifyResult?.(run);
      } catch (e) {
        log.warn(`after the verification: ${(e as Error).message}`);
      }
      return;
    }
    let result: BackupResult;
    try {
      result = await this.backupOnce(name, scheduledFor, signal);
    } finally {
      release();
    }
    try {
      await this.deps.onResult(result);
    } catch (e) {
      log.warn(`after the run: ${(e as Error).message}`);
    }
  }

  /**
   * Waits until neither the backup nor the verification of `name` runs, then holds the target for
   * `kind`; returns the release, or undefined when the scheduler stopped meanwhile.
   */
  private async takeTarget(kind: JobKind, name: string): Promise<(() => void) | undefined> {
    let logged = false;
    for (let h = this.holders.get(name); h; h = this.holders.get(name)) {
      if (!logged) {
        const mine = kind === 'backup' ? 'backup' : 'verification';
        this.deps.logger.info(`scheduled ${mine} waits for the running ${h.kind === 'backup' ? 'backup' : 'verification'} of ${name} to finish (never both at once)`, {
          target: name,
          step: 'schedule',
        });
        logged = true;
      }
      await Promise.race([h.released, this.stopped]);
      if (this.isStopping) return undefined;
    }
    let resolve!: () => void;
    const released = new Promise<void>((r) => (resolve = r));
    this.holders.set(name, { kind, released });
    return () => {
      this.holders.delete(name);
      resolve();
    };
  }

  private async backupOnce(name: string, scheduledFor: Date, signal: AbortSignal): Promise<BackupResult> {
    const log = this.deps.logger.child({ target: name, step: 'schedule' });
    log.info('scheduled run starting', { scheduledFor: scheduledFor.toISOString() });
    const started = this.deps.clock();
    let result: BackupResult;
    try {
      result = await this.deps.runTarget(name, signal);
    } catch (e) {
      const error = toBkError(e, name, 'backup');
      result = { target: name, id: '', status: 'failed', storages: [], rawBytes: 0, storedBytes: 0, seconds: (this.deps.clock().getTime() - started.getTime()) / 1000, error };
      log.error(error.describe());
    }
    for (const s of result.storages) {
      if (!s.ok) continue;
      const startedAt = result.manifest ? new Date(result.manifest.startedAt) : started;
      const finishedAt = result.manifest ? new Date(result.manifest.finishedAt) : this.deps.clock();
      this.noteSuccess(name, s.storage, { startedAt, finishedAt });
    }
    return result;
  }

  private async verifyOnce(name: string, scheduledFor: Date, signal: AbortSignal, restoreTest: boolean): Promise<VerifyRun> {
    const log = this.deps.logger.child({ target: name, step: 'schedule' });
    log.info(`scheduled ${restoreTest ? 'restore drill' : 'integrity check'} starting`, { scheduledFor: scheduledFor.toISOString() });
    const started = this.deps.clock();
    let run: VerifyRun;
    try {
      run = await this.deps.runVerify!(name, signal);
    } catch (e) {
      const error = toBkError(e, name, 'verify');
      run = failedVerifyRun(name, restoreTest ? 'drill' : 'integrity', error, (this.deps.clock().getTime() - started.getTime()) / 1000, this.deps.clock());
      log.error(error.describe());
    }
    this.lastVerify.set(name, run);
    if (run.status === 'ok') this.noteVerified(name, new Date(run.finishedAt));
    return run;
  }

  /**
   * Stops scheduling, lets running backups finish for up to `graceMs`, then aborts them and waits
   * until they have cleaned up. `abortNow()` cuts the grace period short.
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.isStopping) this.stopping.abort();
    for (const task of this.tasks.values()) void task.destroy();
    this.tasks.clear();
    const active = [...this.runs.entries()];
    if (active.length === 0) return;
    const all = Promise.allSettled(active.map(([, r]) => r.promise));
    this.deps.logger.info(`waiting up to ${formatDurationMs(graceMs)} for running backups to finish: ${active.map(([n]) => n).join(', ')}`, { step: 'shutdown' });
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      all.then(() => 'finished' as const),
      new Promise<'grace'>((resolve) => (timer = setTimeout(() => resolve('grace'), graceMs))),
      new Promise<'forced'>((resolve) => (this.forceAbort = () => resolve('forced'))),
    ]);
    clearTimeout(timer);
    if (outcome !== 'finished') {
      const still = [...this.runs.entries()];
      this.deps.logger.warn(`${outcome === 'grace' ? 'grace period over' : 'second signal'}: aborting ${still.map(([n]) => n).join(', ')}`, { step: 'shutdown' });
      for (const [, r] of still) r.controller.abort(new BkError('INTERRUPTED', 'stopped by shutdown'));
      await all;
    }
  }

  /** During stop(): abort running backups now instead of after the grace period. */
  abortNow(): void {
    if (this.forceAbort) this.forceAbort();
    else for (const r of this.runs.values()) r.controller.abort(new BkError('INTERRUPTED', 'stopped by shutdown'));
  }

  health(): Health {
    const now = this.deps.clock();
    const targets: TargetHealth[] = [...this.plans.values()].map((p) => {
      const run = this.runs.get(jobLabel('backup', p.name));
      const storages = p.storages.map((storage) => {
        const last = this.lastSuccess.get(`${p.name}\0${storage}`);
        const a = assessBackup(p, last, now, this.startedAt);
        return {
          storage,
          lastSuccess: last ? last.finishedAt.toISOString() : null,
          overdue: a.overdue,
          ...(a.reason ? { reason: a.reason } : {}),
          ...(a.ageSeconds !== undefined ? { ageSeconds: Math.round(a.ageSeconds) } : {}),
          deadline: a.deadline ? a.deadline.toISOString() : null,
        };
      });
      return {
        target: p.name,
        schedule: p.schedule,
        timezone: p.timezone,
        running: run !== undefined,
        runningSince: run ? run.since.toISOString() : null,
        nextRun: this.isStopping ? null : nextCronRun(p.schedule, p.timezone, now).toISOString(),
        overdue: storages.some((s) => s.overdue),
        storages,
      };
    });
    const verifications: VerifyHealth[] = [...this.verifyPlans.values()].map((v) => {
      const last = this.lastVerify.get(v.name);
      return {
        target: v.name,
        schedule: v.schedule,
        timezone: v.timezone,
        kind: v.restoreTest ? 'drill' : 'integrity',
        running: this.runs.has(jobLabel('verify', v.name)),
        nextRun: this.isStopping ? null : nextCronRun(v.schedule, v.timezone, now).toISOString(),
        lastVerified: this.lastVerified.get(v.name)?.toISOString() ?? null,
        lastRun: last ? { status: last.status, finishedAt: last.finishedAt, id: last.id, error: last.error?.describe() ?? null } : null,
      };
    });
    const status = this.isStopping ? 'stopping' : targets.some((t) => t.overdue) ? 'overdue' : 'ok';
    return { status, startedAt: this.startedAt.toISOString(), targets, verifications };
  }
}
