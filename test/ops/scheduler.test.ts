// The Scheduler in-process, on real node-cron timers with a stand-in for the backup run: jitter,
// overlap, and the two ways a stop ends (runs finish in time, or are aborted after the grace).
import { afterEach, describe, expect, it } from 'vitest';
import type { BackupResult } from '../../src/engine/backup.js';
import { createLogger } from '../../src/log.js';
import { Scheduler, type ScheduledTarget } from '../../src/ops/scheduler.js';

const lines: Record<string, unknown>[] = [];
const logger = createLogger({ level: 'debug', format: 'json', write: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const everySecond: ScheduledTarget = { name: 't', schedule: '* * * * * *', timezone: 'UTC', storages: ['local'] };
const ok = (): BackupResult => ({ target: 't', id: 'x', status: 'ok', storages: [{ storage: 'local', ok: true }], rawBytes: 1, storedBytes: 1, seconds: 0 });

let scheduler: Scheduler | undefined;
afterEach(async () => {
  await scheduler?.stop(0);
  scheduler = undefined;
  lines.length = 0;
});

describe('Scheduler', () => {
  it('waits the jitter before a run', async () => {
    const starts: number[] = [];
    scheduler = new Scheduler({ logger, clock: () => new Date(), random: () => 0.5, runTarget: async () => (starts.push(Date.now()), ok()), onResult: async () => undefined });
    scheduler.apply([{ ...everySecond, schedule: '*/3 * * * * *', jitterMs: 1600 }]);
    while (starts.length === 0) await sleep(50);
    const fired = Date.parse(lines.find((l) => l.msg === 'scheduled run starting')!.scheduledFor as string);
    expect(starts[0]! - fired).toBeGreaterThanOrEqual(800);
    // The lower bound is the check; the upper one only allows for a busy event loop.
    expect(starts[0]! - fired).toBeLessThan(2500);
  });

  it('does not start a run that is still waiting out its jitter when stopped', async () => {
    let runs = 0;
    scheduler = new Scheduler({ logger, clock: () => new Date(), random: () => 0.99, runTarget: async () => (runs++, ok()), onResult: async () => undefined });
    scheduler.apply([{ ...everySecond, jitterMs: 5000 }]);
    while (scheduler.running().length === 0) await sleep(20);
    const t0 = Date.now();
    await scheduler.stop(60_000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(runs).toBe(0);
  });

  it('never runs a target twice at once; skipped triggers are logged', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    scheduler = new Scheduler({
      logger,
      clock: () => new Date(),
      runTarget: async () => {
        active++;
        runs++;
        maxActive = Math.max(maxActive, active);
        await sleep(2200);
        active--;
        return ok();
      },
      onResult: async () => undefined,
    });
    scheduler.apply([everySecond]);
    while (runs < 2) await sleep(50);
    expect(maxActive).toBe(1);
    expect(lines.filter((l) => l.msg === 'scheduled run skipped: the previous run is still going').length).toBeGreaterThanOrEqual(2);
  });

  it('lets a run finish within the grace period, and reports it healthy meanwhile', async () => {
    let finished = false;
    let signal: AbortSignal | undefined;
    scheduler = new Scheduler({
      logger,
      clock: () => new Date(),
      runTarget: async (_n, s) => {
        signal = s;
        await sleep(1200);
        finished = true;
        return ok();
      },
      onResult: async () => undefined,
    });
    scheduler.apply([everySecond]);
    while (!signal) await sleep(20);
    expect(scheduler.health()).toMatchObject({ status: 'ok', targets: [{ target: 't', running: true, overdue: false }] });
    await scheduler.stop(10_000);
    expect(finished).toBe(true);
    expect(signal.aborted).toBe(false);
    expect(scheduler.health().status).toBe('stopping');
  });

  it('aborts a run that outlasts the grace period, and waits for it to clean up', async () => {
    let cleanedUp = false;
    let reason: unknown;
    scheduler = new Scheduler({
      logger,
      clock: () => new Date(),
      runTarget: (_n, s) =>
        new Promise<BackupResult>((resolve) =>
          s.addEventListener('abort', () => {
            reason = s.reason;
            setTimeout(() => {
              cleanedUp = true;
              resolve({ ...ok(), status: 'failed', storages: [{ storage: 'local', ok: false }] });
            }, 300);
          }),
        ),
      onResult: async () => undefined,
    });
    scheduler.apply([everySecond]);
    while (scheduler.running().length === 0) await sleep(20);
    await sleep(100);
    await scheduler.stop(500);
    expect(cleanedUp).toBe(true);
    expect(reason).toMatchObject({ code: 'INTERRUPTED' });
    expect(lines.some((l) => l.msg === 'grace period over: aborting t')).toBe(true);
  });
});
