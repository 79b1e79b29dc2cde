/**
 * `bk verify [target] [--id ID | --at T | --latest | --all | --sample N] [--restore-test]`
 *
 * Integrity: reads archives and checks their sizes and sha256 (stored, and raw after decryption and
 * decompression when it can) against the manifests. Encrypted backups are checked without a key
 * too: the stored sha256 is of the encrypted object. Default: the latest backup of each target;
 * `--sample N`: N random archives per target, for catalogs too large to read every night.
 *
 * `--restore-test`: each chosen backup is restored into a throwaway destination and compared with
 * the checks its manifest recorded (engine/drill.ts); further copies in other storages get the
 * integrity read.
 *
 * Every check is published like a backup run: notifications (failures, and successes when a
 * channel asks) and the metrics textfile (`bk_last_verified_timestamp_seconds`,
 * `bk_verify_runs_total`), so a verify line from `bk cron` reports like the daemon does.
 *
 * Exit: 4 when anything does not match · 1 when a drill could not run · 3 when a target had no
 * backup to check or its driver cannot drill · 2 when no chosen driver can drill at all.
 * `--quiet` prints nothing when every check passed.
 */
import { storagesFor, type Context } from '../app/context.js';
import { decryptionFor } from '../app/decryption.js';
import { drillBackup } from '../app/drill.js';
import { findBackups, selectorFrom, type SelectorFlags } from '../app/find.js';
import type { CatalogProblem } from '../catalog/catalog.js';
import type { StoredBackup } from '../catalog/manifest.js';
import { select } from '../catalog/select.js';
import type { DrillResult } from '../engine/drill.js';
import { checkIntegrity } from '../engine/restore.js';
import { BkError, ExitCode, toBkError } from '../errors.js';
import { publishVerifies } from '../ops/publish.js';
import { verifyRunFromDrill, verifyRunFromIntegrity, type VerifyRun } from '../ops/verify-run.js';
import { render } from '../output/render.js';
import { mapLimit } from '../util/concurrency.js';
import { filterStorages } from './restore.js';

export interface VerifyFlags extends SelectorFlags {
  all?: boolean;
  storage?: string;
  /** N random archives per target. */
  sample?: string;
  restoreTest?: boolean;
  /** age identity file for encrypted backups (else BK_AGE_IDENTITY or encryption.identity_file). */
  identity?: string;
}

export async function verifyCommand(ctx: Context, target: string | undefined, flags: VerifyFlags): Promise<number> {
  const sample = flags.sample === undefined ? undefined : parseSample(flags.sample);
  if ((flags.all || sample !== undefined) && (flags.id || flags.at || flags.latest)) {
    throw new BkError('USAGE', `${flags.all ? '--all' : '--sample'} picks from every backup; drop --id/--at/--latest`);
  }
  const storages = filterStorages(storagesFor(ctx, target ? ctx.config.targets[target] : undefined), flags.storage);
  const problems: CatalogProblem[] = [];
  const found = await findBackups(ctx, storages, target ? [target] : [], problems);
  const { selector } = selectorFrom(ctx, flags, ctx.config.timezone);
  const chosen: StoredBackup[] = [];
  const missing: string[] = [];
  for (const { target: t, backups } of found) {
    if (sample !== undefined) {
      chosen.push(...randomSample(backups, sample));
      continue;
    }
    if (flags.all) {
      chosen.push(...backups);
      continue;
    }
    // Every copy of the chosen backup: one per storage that holds it.
    const sel = select(backups, selector);
    if (sel.ok) chosen.push(...backups.filter((b) => b.manifest.id === sel.backup.manifest.id));
    else missing.push(`${t}: ${sel.reason}`);
  }
  // A manifest that cannot be read or trusted is a backup that cannot be restored: an integrity
  // failure of the repository (unless one backup was asked for by --id or --at).
  const untrusted = flags.id === undefined && flags.at === undefined ? problems.map(problemReport) : [];
  if (chosen.length === 0 && untrusted.length > 0) {
    render(ctx, 'verify', { results: untrusted, missing }, () => untrusted.map((r) => `FAILED ${r.target} ${r.id} (${r.storage}): ${r.error}`).join('\n'));
    return ExitCode.integrity;
  }
  if (chosen.length === 0) {
    throw new BkError('NOT_FOUND', missing.length ? missing.join('; ') : `no backups${target ? ` of ${target}` : ''} in ${storages.map((s) => s.location).join(', ')}`);
  }
  const byName = new Map(storages.map((s) => [s.name, s]));

  const drilled = flags.restoreTest ? firstCopyOfEach(chosen) : [];
  const readOnly = chosen.filter((b) => !drilled.includes(b));
  const runs: VerifyRun[] = [];
  const reports = await mapLimit(readOnly, 2, async (b) => {
    const t = b.manifest.target;
    const started = ctx.clock();
    const decryption = b.manifest.encryption ? decryptionFor(ctx, ctx.config.targets[t], flags.identity) : undefined;
    const r = await checkIntegrity(byName.get(b.storage)!, b.manifest, { signal: ctx.signal, ...(decryption ? { decryption } : {}) });
    const finished = ctx.clock();
    runs.push(verifyRunFromIntegrity({ target: t, id: b.manifest.id, storage: b.storage }, r, (finished.getTime() - started.getTime()) / 1000, finished.toISOString()));
    if (!r.ok) ctx.logger.error(r.error!.describe(), { target: t, storage: b.storage, id: b.manifest.id });
    return {
      target: t,
      id: b.manifest.id,
      storage: b.storage,
      ok: r.ok,
      stored: r.stored,
      raw: r.raw ?? null,
      rawSkipped: r.rawSkipped ?? null,
      code: r.error?.code ?? null,
      error: r.error?.describe() ?? null,
    };
  });
  reports.push(...untrusted);
  const storedOnly = reports.filter((r) => r.ok && r.raw === null);
  if (storedOnly.length > 0) {
    const reasons = [...new Set(storedOnly.map((r) => r.rawSkipped))].join('; ');
    ctx.logger.warn(`${storedOnly.length} encrypted backup${storedOnly.length === 1 ? '' : 's'}: checked the stored bytes only (${reasons})`, { step: 'verify' });
  }
  // One at a time: each drill stands up a throwaway database, server or directory.
  const drills: DrillResult[] = [];
  for (const b of drilled) {
    if (ctx.signal.aborted) break;
    try {
      drills.push(await drillBackup(ctx, b, byName.get(b.storage)!, { identity: flags.identity }));
    } catch (e) {
      const error = toBkError(e, b.manifest.target, 'drill');
      const now = ctx.clock().toISOString();
      drills.push({ target: b.manifest.target, id: b.manifest.id, storage: b.storage, status: 'failed', checks: [], seconds: 0, finishedAt: now, error });
    }
  }
  for (const d of drills) if (d.error && d.status !== 'passed') ctx.logger.error(d.error.describe(), { target: d.target, storage: d.storage, id: d.id });
  await publishVerifies(ctx, [...runs, ...drills.map(verifyRunFromDrill)]);

  const code = ctx.signal.aborted ? ExitCode.interrupted : exitCodeFor(reports, drills, missing.length > 0);
  render(
    ctx,
    'verify',
    {
      results: reports,
      ...(flags.restoreTest ? { drills: drills.map(drillJson) } : {}),
      missing,
    },
    () => (ctx.quiet && code === ExitCode.ok ? '' : verifyText(reports, drills, missing)),
  );
  return code;
}

interface IntegrityLine {
  ok: boolean;
  target: string;
  id: string;
  storage: string;
  error: string | null;
  raw: boolean | null;
  rawSkipped: string | null;
}

function verifyText(reports: IntegrityLine[], drills: DrillResult[], missing: string[]): string {
  return [
    ...reports.map(
      (r) =>
        `${r.ok ? 'ok    ' : 'FAILED'} ${r.target} ${r.id} (${r.storage})${r.error ? `: ${r.error}` : r.rawSkipped && r.raw === null ? ` [stored bytes only: ${r.rawSkipped}]` : ''}`,
    ),
    ...drills.map(drillText),
    ...missing.map((m) => `none   ${m}`),
  ].join('\n');
}

function parseSample(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new BkError('USAGE', `--sample needs a whole number of backups per target, not "${v}"`);
  return n;
}

/** n distinct archives at random (all when there are no more than n). */
function randomSample<T>(items: readonly T[], n: number): T[] {
  const pool = [...items];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, n);
}

/** One copy per backup (target and id): a drill restores it once, whichever storage holds it. */
function firstCopyOfEach(backups: readonly StoredBackup[]): StoredBackup[] {
  const seen = new Set<string>();
  return backups.filter((b) => {
    const key = `${b.manifest.target}/${b.manifest.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function drillJson(d: DrillResult): Record<string, unknown> {
  return {
    target: d.target,
    id: d.id,
    storage: d.storage,
    status: d.status,
    ok: d.status === 'passed',
    seconds: Number(d.seconds.toFixed(3)),
    finishedAt: d.finishedAt,
    checks: d.checks,
    error: d.error ? { code: d.error.code, step: d.error.step ?? null, message: d.error.describe() } : null,
  };
}

function drillText(d: DrillResult): string {
  const head = `drill  ${d.target} ${d.id} (${d.storage}):`;
  const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  switch (d.status) {
    case 'passed':
      return `${head} passed, ${d.checks.length} check${d.checks.length === 1 ? '' : 's'} match (${d.seconds.toFixed(1)}s)`;
    case 'mismatch': {
      const wrong = d.checks.filter((c) => !c.ok);
      return [
        `${head} MISMATCH in ${wrong.length} of ${d.checks.length} checks`,
        ...wrong.map((c) => `         ${c.name}: recorded ${show(c.expected)}, restored ${show(c.actual)}`),
      ].join('\n');
    }
    case 'unsupported':
      return `${head} not supported: ${d.error?.message ?? ''}`;
    case 'failed':
      return `${head} FAILED: ${d.error?.describe() ?? 'unknown error'}`;
  }
}

/** A manifest that cannot be trusted, as a failed verify result. */
function problemReport(p: CatalogProblem): { target: string; id: string; storage: string; ok: false; stored: false; raw: null; rawSkipped: null; code: 'INTEGRITY'; error: string } {
  const slash = p.key.indexOf('/');
  const id = p.key.slice(slash + 1).replace(/\.manifest\.json$/, '');
  return { target: p.key.slice(0, slash), id, storage: p.storage, ok: false, stored: false, raw: null, rawSkipped: null, code: 'INTEGRITY', error: `manifest ${p.key}: ${p.error}` };
}

function exitCodeFor(reports: { ok: boolean; code: string | null }[], drills: DrillResult[], missing: boolean): number {
  const failedDrills = drills.filter((d) => d.status === 'failed');
  // Only bytes that do not match (or a manifest that cannot be trusted) are exit 4; a storage
  // that could not be read, or a decoder killed from outside, is exit 1: it says nothing about
  // the backups.
  const damaged = reports.some((r) => !r.ok && (r.code === 'INTEGRITY' || r.code === 'UNSAFE_ARCHIVE'));
  if (damaged || drills.some((d) => d.status === 'mismatch') || failedDrills.some((d) => d.error?.exitCode === ExitCode.integrity)) {
    return ExitCode.integrity;
  }
  if (reports.some((r) => !r.ok)) return ExitCode.failed;
  if (failedDrills.length > 0) {
    return failedDrills.length === 1 && drills.length === 1 && reports.length === 0 ? failedDrills[0]!.error!.exitCode : ExitCode.failed;
  }
  const unsupported = drills.filter((d) => d.status === 'unsupported').length;
  if (unsupported > 0) return unsupported === drills.length && reports.length === 0 ? ExitCode.usage : ExitCode.partial;
  return missing ? ExitCode.partial : ExitCode.ok;
}
