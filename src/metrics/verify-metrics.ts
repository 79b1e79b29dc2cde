/**
 * Verification metrics (restore drills and integrity reads of stored backups), rendered into the
 * same Prometheus document as the backup metrics and read back from it:
 *
 *   bk_last_verified_timestamp_seconds{target,storage}  when a check of a backup there last passed
 *   bk_last_verify_duration_seconds{target,storage}     how long that check took
 *   bk_verify_runs_total{target,status}                 checks by outcome: success, failure, interrupted
 *
 * Runs carry no storage label: a run that found no backup to check has none.
 */
import type { VerifyRun } from '../ops/verify-run.js';
import { RUN_STATUSES, renderFamily, type RunStatus } from './prometheus-text.js';

interface Verified {
  target: string;
  storage: string;
  at: number;
  seconds: number;
}

const LAST_VERIFIED = 'bk_last_verified_timestamp_seconds';
const LAST_DURATION = 'bk_last_verify_duration_seconds';
const RUNS = 'bk_verify_runs_total';

export class VerifyMetrics {
  private readonly verified = new Map<string, Verified>();
  private readonly runs = new Map<string, Record<RunStatus, number>>();

  private runsOf(target: string): Record<RunStatus, number> {
    let r = this.runs.get(target);
    if (!r) this.runs.set(target, (r = { success: 0, failure: 0, interrupted: 0 }));
    return r;
  }

  private verifiedOf(target: string, storage: string): Verified {
    const key = `${target}\0${storage}`;
    let v = this.verified.get(key);
    if (!v) this.verified.set(key, (v = { target, storage, at: NaN, seconds: NaN }));
    return v;
  }

  record(r: VerifyRun): void {
    const status: RunStatus = r.status === 'ok' ? 'success' : r.error?.code === 'INTERRUPTED' ? 'interrupted' : 'failure';
    this.runsOf(r.target)[status]++;
    if (r.status === 'ok' && r.storage !== null) {
      const v = this.verifiedOf(r.target, r.storage);
      v.at = Date.parse(r.finishedAt) / 1000;
      v.seconds = r.seconds;
    }
  }

  lastVerified(target: string, storage: string): number | undefined {
    const at = this.verified.get(`${target}\0${storage}`)?.at;
    return at === undefined || Number.isNaN(at) ? undefined : at;
  }

  render(): string {
    const verified = [...this.verified.values()].sort((a, b) => a.target.localeCompare(b.target) || a.storage.localeCompare(b.storage));
    const runs = [...this.runs.entries()].sort(([a], [b]) => a.localeCompare(b));
    const gauge = (field: 'at' | 'seconds') =>
      verified.filter((v) => !Number.isNaN(v[field])).map((v) => ({ labels: { target: v.target, storage: v.storage }, value: v[field] }));
    return [
      renderFamily(LAST_VERIFIED, 'gauge', 'When a verification (restore drill or integrity read) of a backup in this storage last passed (Unix seconds).', gauge('at')),
      renderFamily(LAST_DURATION, 'gauge', 'Duration of that verification.', gauge('seconds')),
      renderFamily(
        RUNS,
        'counter',
        'Verifications by outcome (success, failure, interrupted).',
        runs.flatMap(([target, r]) => RUN_STATUSES.map((status) => ({ labels: { target, status }, value: r[status] }))),
      ),
    ].join('');
  }

  /** Takes one parsed sample of a document render() wrote; false when it is not one of ours. */
  readSample(name: string, labels: Record<string, string>, value: number): boolean {
    const { target, storage, status } = labels;
    if (target === undefined) return false;
    if ((name === LAST_VERIFIED || name === LAST_DURATION) && storage !== undefined) {
      this.verifiedOf(target, storage)[name === LAST_VERIFIED ? 'at' : 'seconds'] = value;
      return true;
    }
    if (name === RUNS && (RUN_STATUSES as readonly string[]).includes(status ?? '')) {
      this.runsOf(target)[status as RunStatus] = value;
      return true;
    }
    return false;
  }
}
