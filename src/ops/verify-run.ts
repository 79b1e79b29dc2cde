/**
 * The outcome of one verification of a target's latest backup, as the daemon's verify schedule
 * and `bk verify` report it to metrics and notifications: a restore drill or an integrity read,
 * which backup and storage it checked, and why it failed. Plain data, so metrics and
 * notifications depend on nothing above them.
 */
import type { DrillCheck, DrillResult } from '../engine/drill.js';
import type { IntegrityReport } from '../engine/restore.js';
import type { BkError } from '../errors.js';

/** drill: restored into a throwaway destination and compared; integrity: read and hashed. */
export type VerifyKind = 'drill' | 'integrity';

export interface VerifyRun {
  target: string;
  kind: VerifyKind;
  status: 'ok' | 'failed';
  /** The backup checked; null when none was found or the run failed before choosing one. */
  id: string | null;
  storage: string | null;
  seconds: number;
  /** When the check ended; for a passed one, the `last_verified_timestamp`. */
  finishedAt: string;
  /** Drill checks whose restored value differs from the one recorded at backup time. */
  mismatches: DrillCheck[];
  error?: BkError;
}

export function verifyRunFromDrill(d: DrillResult): VerifyRun {
  return {
    target: d.target,
    kind: 'drill',
    status: d.status === 'passed' ? 'ok' : 'failed',
    id: d.id,
    storage: d.storage,
    seconds: d.seconds,
    finishedAt: d.finishedAt,
    mismatches: d.checks.filter((c) => !c.ok),
    ...(d.error && d.status !== 'passed' ? { error: d.error } : {}),
  };
}

export function verifyRunFromIntegrity(b: { target: string; id: string; storage: string }, r: IntegrityReport, seconds: number, finishedAt: string): VerifyRun {
  return {
    target: b.target,
    kind: 'integrity',
    status: r.ok ? 'ok' : 'failed',
    id: b.id,
    storage: b.storage,
    seconds,
    finishedAt,
    mismatches: [],
    ...(r.error && !r.ok ? { error: r.error } : {}),
  };
}

/** A verification that failed before it checked anything (no backup, lock held, config). */
export function failedVerifyRun(target: string, kind: VerifyKind, error: BkError, seconds: number, finishedAt: Date): VerifyRun {
  return { target, kind, status: 'failed', id: null, storage: null, seconds, finishedAt: finishedAt.toISOString(), mismatches: [], error };
}
