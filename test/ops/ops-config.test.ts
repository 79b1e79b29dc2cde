// The operations keys of the config: validated with messages that name the key, defaults inherited,
// durations in milliseconds, and metrics that survive a round trip through their own text format.
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { BackupMetrics } from '../../src/metrics/backup-metrics.js';
import type { BackupResult } from '../../src/engine/backup.js';
import { BkError } from '../../src/errors.js';

const target = (extra: Record<string, unknown> = {}) => ({ driver: 'files', source: '/srv', ...extra });
const problem = (raw: unknown): string => {
  try {
    resolveConfig(raw);
  } catch (e) {
    return (e as BkError).message;
  }
  throw new Error('config was accepted');
};

describe('operations config', () => {
  it('resolves schedule, jitter, timeout, max_age and hooks, inheriting from defaults', () => {
    const c = resolveConfig({
      defaults: { schedule: '0 2 * * *', timeout: '2h', hooks: { after: [{ shell: 'echo done', on: 'always' }] } },
      storages: { local: { type: 'local', path: '/tmp/x' } },
      targets: { a: target(), b: target({ schedule: '*/30 * * * * *', jitter: '5m', max_age: '1d', timeout: 90, hooks: { before: [['true']] } }) },
      notifications: [{ type: 'webhook', url: 'https://hooks.example.org/x' }],
      metrics: { textfile: '/var/lib/node_exporter/bk.prom' },
    });
    expect(c.targets.a).toMatchObject({ schedule: '0 2 * * *', timeoutMs: 7_200_000, hooks: { before: [], after: [{ shell: 'echo done', on: 'always', timeoutMs: 300_000 }] } });
    expect(c.targets.a!.jitterMs).toBeUndefined();
    expect(c.targets.b).toMatchObject({ schedule: '*/30 * * * * *', jitterMs: 300_000, maxAgeMs: 86_400_000, timeoutMs: 90_000, hooks: { before: [{ run: ['true'], on: 'always' }], after: [] } });
    expect(c.notifications).toEqual([{ type: 'webhook', url: 'https://hooks.example.org/x', format: 'json', on: ['failure'], timeout: 10 }]);
    expect(c.metrics).toEqual({ textfile: '/var/lib/node_exporter/bk.prom' });
  });

  it.each([
    [{ targets: { a: target({ schedule: '0 25 * * *' }) } }, /targets\.a\.schedule: 25 is a invalid expression for hour; write a cron expression like "0 2 \* \* \*"/],
    [{ targets: { a: target({ schedule: 'daily' }) } }, /targets\.a\.schedule: expected 5 or 6 fields/],
    [{ defaults: { jitter: 'a bit' }, targets: {} }, /defaults\.jitter: "a bit" is not a duration like 90s/],
    [{ targets: { a: target({ max_age: -3 }) } }, /targets\.a\.max_age: "-3" is not a duration/],
    [{ targets: {}, notifications: [{ type: 'pager' }] }, /notifications\.0\.type: Invalid discriminator value/],
    [{ targets: {}, notifications: [{ type: 'email', smtp: { host: 'mx' }, from: 'bk@x.org' }] }, /notifications\.0\.to:/],
    [{ targets: {}, metrics: { textfile: '/x.prom', port: 1 } }, /metrics: unknown key port/],
  ])('rejects %j', (raw, message) => {
    expect(problem(raw)).toMatch(message);
  });
});

describe('BackupMetrics', () => {
  const result = (over: Partial<BackupResult>): BackupResult => ({
    target: 'db',
    id: '20240101T020000Z-abcd',
    status: 'ok',
    storages: [
      { storage: 'local', ok: true },
      { storage: 'offsite', ok: true },
    ],
    rawBytes: 1000,
    storedBytes: 250,
    seconds: 12.5,
    ...over,
  });

  it('counts runs per storage and keeps the last success', () => {
    const m = new BackupMetrics();
    m.recordRun(result({}), new Date('2024-01-01T02:00:12.500Z'));
    m.recordRun(
      result({ status: 'partial', storages: [{ storage: 'local', ok: true }, { storage: 'offsite', ok: false, error: new BkError('STORAGE', 'down') }], storedBytes: 300, seconds: 20 }),
      new Date('2024-01-02T02:00:20Z'),
    );
    m.recordRun(result({ status: 'failed', storages: [], error: new BkError('INTERRUPTED', 'stop') }), new Date('2024-01-03T02:00:00Z'), ['local']);
    const text = m.render();
    expect(text).toContain('bk_last_success_timestamp_seconds{target="db",storage="local"} 1704160820');
    expect(text).toContain('bk_last_success_timestamp_seconds{target="db",storage="offsite"} 1704074412.5');
    expect(text).toContain('bk_last_size_bytes{target="db",storage="offsite"} 250');
    expect(text).toContain('bk_last_duration_seconds{target="db",storage="local"} 20');
    expect(text).toContain('bk_runs_total{target="db",storage="local",status="success"} 2');
    expect(text).toContain('bk_runs_total{target="db",storage="offsite",status="failure"} 1');
    expect(text).toContain('bk_runs_total{target="db",storage="local",status="interrupted"} 1');
    expect(text).toMatch(/^# TYPE bk_runs_total counter$/m);
    // What it wrote, it reads back (counters continue across `bk backup` runs from cron).
    expect(BackupMetrics.parse(text).render()).toBe(text);
  });
});
