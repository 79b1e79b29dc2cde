/**
 * Backup metrics per target and storage, in the Prometheus text format: the same document is
 * served on `bk schedule --listen …/metrics` and written to `metrics.textfile` for node_exporter.
 * The text can be read back, so counters keep counting across `bk backup` runs from cron.
 *
 *   bk_last_success_timestamp_seconds  finish time of the last successful backup
 *   bk_last_duration_seconds           how long that backup took
 *   bk_last_size_bytes                 its stored (compressed, encrypted) size
 *   bk_runs_total{status}              runs by outcome: success, failure, interrupted
 *
 * The document also carries the verification metrics (`verify`, metrics/verify-metrics.ts), so a
 * `bk backup` that rewrites the textfile keeps what the daemon's drills recorded, and back.
 */
import type { BackupResult } from '../engine/backup.js';
import { RUN_STATUSES, parseSample, renderFamily, type RunStatus } from './prometheus-text.js';
import { VerifyMetrics } from './verify-metrics.js';

export { RUN_STATUSES, renderFamily, type RunStatus, type Sample } from './prometheus-text.js';

interface Series {
  target: string;
  storage: string;
  lastSuccess?: number;
  lastDuration?: number;
  lastSize?: number;
  runs: Record<RunStatus, number>;
}

const GAUGES = [
  ['bk_last_success_timestamp_seconds', 'Finish time of the last successful backup (Unix seconds).', 'lastSuccess'],
  ['bk_last_duration_seconds', 'Duration of the last successful backup.', 'lastDuration'],
  ['bk_last_size_bytes', 'Stored size of the last successful backup.', 'lastSize'],
] as const;

export class BackupMetrics {
  private readonly series = new Map<string, Series>();
  /** Restore drills and integrity reads. */
  readonly verify = new VerifyMetrics();

  private get(target: string, storage: string): Series {
    const key = `${target}\0${storage}`;
    let s = this.series.get(key);
    if (!s) {
      s = { target, storage, runs: { success: 0, failure: 0, interrupted: 0 } };
      this.series.set(key, s);
    }
    return s;
  }

  /** Counts a run for each of its storages and, where it succeeded, records it as the last success. */
  recordRun(r: BackupResult, finishedAt: Date, storagesIfNone: readonly string[] = []): void {
    const outcomes = r.storages.length > 0 ? r.storages : storagesIfNone.map((storage) => ({ storage, ok: false }));
    const interrupted = r.error?.code === 'INTERRUPTED';
    for (const o of outcomes) {
      const s = this.get(r.target, o.storage);
      const status: RunStatus = o.ok ? 'success' : interrupted ? 'interrupted' : 'failure';
      s.runs[status]++;
      if (o.ok) {
        s.lastSuccess = finishedAt.getTime() / 1000;
        s.lastDuration = r.seconds;
        s.lastSize = r.storedBytes;
      }
    }
  }

  /** Takes a backup found in a storage as the last success, unless a newer one is known. */
  seedSuccess(target: string, storage: string, b: { finishedAt: Date; seconds: number; bytes: number }): void {
    const s = this.get(target, storage);
    const t = b.finishedAt.getTime() / 1000;
    if (s.lastSuccess !== undefined && s.lastSuccess >= t) return;
    s.lastSuccess = t;
    s.lastDuration = b.seconds;
    s.lastSize = b.bytes;
  }

  lastSuccess(target: string, storage: string): number | undefined {
    return this.series.get(`${target}\0${storage}`)?.lastSuccess;
  }

  render(): string {
    const all = [...this.series.values()].sort((a, b) => a.target.localeCompare(b.target) || a.storage.localeCompare(b.storage));
    const out: string[] = [];
    for (const [name, help, field] of GAUGES) {
      const samples = all.filter((s) => s[field] !== undefined).map((s) => ({ labels: { target: s.target, storage: s.storage }, value: s[field]! }));
      out.push(renderFamily(name, 'gauge', help, samples));
    }
    out.push(
      renderFamily(
        'bk_runs_total',
        'counter',
        'Backup runs by outcome (success, failure, interrupted).',
        all.flatMap((s) => RUN_STATUSES.map((status) => ({ labels: { target: s.target, storage: s.storage, status }, value: s.runs[status] }))),
      ),
    );
    out.push(this.verify.render());
    return out.join('');
  }

  /** Reads a document this class rendered (other lines are ignored). */
  static parse(text: string): BackupMetrics {
    const m = new BackupMetrics();
    for (const line of text.split('\n')) {
      const sample = parseSample(line);
      if (!sample) continue;
      const { name, labels, value } = sample;
      if (!Number.isFinite(value) || m.verify.readSample(name, labels, value)) continue;
      if (labels.target === undefined || labels.storage === undefined || !Number.isFinite(value)) continue;
      const s = m.get(labels.target, labels.storage);
      const gauge = GAUGES.find(([n]) => n === name);
      if (gauge) s[gauge[2]] = value;
      else if (name === 'bk_runs_total' && (RUN_STATUSES as readonly string[]).includes(labels.status ?? '')) s.runs[labels.status as RunStatus] = value;
    }
    return m;
  }
}
