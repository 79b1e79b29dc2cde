/**
 * What a notification says about one backup run, or one verification of a stored backup (restore
 * drill or integrity read): target, storages, step, error, duration, host. Built from the run's
 * result and nothing else, so no config value (and so no secret) can slip in; every text is
 * redacted again when it is sent.
 */
import { hostname } from 'node:os';
import type { BackupResult } from '../engine/backup.js';
import type { VerifyKind, VerifyRun } from '../ops/verify-run.js';
import { formatBytes, formatDuration } from '../output/format.js';
import type { NotifyOn } from './schema.js';

export interface RunEvent {
  event: NotifyOn;
  /** A backup, or a verification of the backup `id`. */
  kind: 'backup' | 'verify';
  /** Verifications: restore drill or integrity read. */
  check?: VerifyKind;
  status: BackupResult['status'];
  target: string;
  id: string | null;
  /** Storages that failed (all of them when nothing was stored). */
  failedStorages: string[];
  storages: { storage: string; ok: boolean; error: string | null }[];
  step: string | null;
  error: string | null;
  code: string | null;
  durationSeconds: number;
  bytes: number;
  /** Verifications: checks whose restored value differs from the recorded one (counts, hashes). */
  mismatches?: { name: string; expected: unknown; actual: unknown }[];
  host: string;
  time: string;
}

export function runEvent(r: BackupResult, at: Date, host = hostname()): RunEvent {
  const failed = r.status !== 'ok';
  return {
    event: failed ? 'failure' : 'success',
    kind: 'backup',
    status: r.status,
    target: r.target,
    id: r.id || null,
    failedStorages: r.storages.filter((s) => !s.ok).map((s) => s.storage),
    storages: r.storages.map((s) => ({ storage: s.storage, ok: s.ok, error: s.error ? s.error.describe() : null })),
    step: r.error?.step ?? null,
    error: r.error ? r.error.describe() : null,
    code: r.error?.code ?? null,
    durationSeconds: Number(r.seconds.toFixed(3)),
    bytes: r.storedBytes,
    host,
    time: at.toISOString(),
  };
}

export function verifyEvent(r: VerifyRun, at: Date, host = hostname()): RunEvent {
  return {
    event: r.status === 'ok' ? 'success' : 'failure',
    kind: 'verify',
    check: r.kind,
    status: r.status,
    target: r.target,
    id: r.id,
    failedStorages: r.status === 'ok' || r.storage === null ? [] : [r.storage],
    storages: r.storage === null ? [] : [{ storage: r.storage, ok: r.status === 'ok', error: r.status === 'ok' ? null : (r.error?.describe() ?? null) }],
    step: r.error?.step ?? null,
    error: r.error ? r.error.describe() : null,
    code: r.error?.code ?? null,
    durationSeconds: Number(r.seconds.toFixed(3)),
    bytes: 0,
    mismatches: r.mismatches.map((c) => ({ name: c.name, expected: c.expected, actual: c.actual })),
    host,
    time: at.toISOString(),
  };
}

const CHECK_NAMES: Record<VerifyKind, string> = { drill: 'restore drill', integrity: 'integrity check' };

/** "bk: backup of app-db FAILED on host1", "bk: restore drill of app-db FAILED on host1" */
export function eventTitle(e: RunEvent): string {
  if (e.kind === 'verify') return `bk: ${CHECK_NAMES[e.check ?? 'integrity']} of ${e.target} ${e.status === 'ok' ? 'passed' : 'FAILED'} on ${e.host}`;
  if (e.status === 'ok') return `bk: backup of ${e.target} succeeded on ${e.host}`;
  if (e.status === 'partial') return `bk: backup of ${e.target} PARTLY FAILED (${e.failedStorages.join(', ')}) on ${e.host}`;
  return `bk: backup of ${e.target} FAILED on ${e.host}`;
}

/** Plain-text lines: the body of an email, the text of a chat message. */
export function eventLines(e: RunEvent): string[] {
  const lines = [
    `target:   ${e.target}`,
    ...(e.kind === 'verify' ? [`check:    ${CHECK_NAMES[e.check ?? 'integrity']}`] : []),
    `status:   ${e.status}`,
    ...(e.id ? [`backup:   ${e.id}`] : []),
    `storages: ${e.storages.map((s) => `${s.storage} ${s.ok ? 'ok' : 'FAILED'}`).join(', ') || '(none)'}`,
    ...(e.step ? [`step:     ${e.step}`] : []),
    `duration: ${formatDuration(e.durationSeconds)}`,
    ...(e.status !== 'failed' && e.kind === 'backup' ? [`size:     ${formatBytes(e.bytes)}`] : []),
    `host:     ${e.host}`,
    `time:     ${e.time}`,
  ];
  const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  if (e.mismatches?.length) lines.push('', 'mismatches:', ...e.mismatches.map((c) => `  ${c.name}: recorded ${show(c.expected)}, restored ${show(c.actual)}`));
  if (e.error) lines.push('', 'error:', ...e.error.split('\n').map((l) => `  ${l}`));
  return lines;
}
