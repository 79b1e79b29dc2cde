/**
 * A restore drill: restore a backup into a throwaway destination the driver provides, compare what
 * is there with what the manifest recorded at backup time, and drop the destination whatever
 * happened. A backup whose hashes match but whose content is not what was backed up (an archive
 * replaced by another valid dump, a dump tool that wrote the wrong thing) passes an integrity read
 * and fails here.
 *
 * The restore is the ordinary one (runRestore), so the drill also proves the key opens the
 * archive and the stored and raw sha256 match; no separate integrity read is needed.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Manifest } from '../catalog/manifest.js';
import type { DrillCapable, Driver, RestoreCheckData, RestoreDrill } from '../drivers/driver.js';
import { BkError, toBkError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Storage } from '../storage/storage.js';
import { runRestore, type DecryptionStage } from './restore.js';

export interface DrillCheck {
  /** Key in the manifest's checks; nested keys joined with ".", e.g. "tables.app.users". */
  name: string;
  /** null when absent. */
  expected: unknown;
  actual: unknown;
  ok: boolean;
}

/** passed · mismatch (restored, checks differ) · failed (did not restore, or an error) · unsupported. */
export type DrillStatus = 'passed' | 'mismatch' | 'failed' | 'unsupported';

export interface DrillResult {
  target: string;
  id: string;
  storage: string;
  status: DrillStatus;
  checks: DrillCheck[];
  seconds: number;
  /** When the drill ended; a passed drill is what `last_verified_timestamp` records. */
  finishedAt: string;
  error?: BkError;
}

export interface DrillJob {
  manifest: Manifest;
  storage: Storage;
  driver: Driver;
  decryption?: DecryptionStage;
  /** Driver-specific drill settings (e.g. `url` from the target's `verify:`). */
  drillOptions?: Record<string, unknown>;
  restoreOptions?: Record<string, unknown>;
  logger: Logger;
  signal: AbortSignal;
  clock?: () => Date;
}

export const canDrill = (d: Driver): d is Driver & DrillCapable => typeof (d as Partial<DrillCapable>).prepareDrill === 'function';

export async function runRestoreDrill(job: DrillJob): Promise<DrillResult> {
  const m = job.manifest;
  const clock = job.clock ?? (() => new Date());
  const started = clock();
  const log = job.logger.child({ target: m.target, storage: job.storage.name, id: m.id });
  const result = (status: DrillStatus, checks: DrillCheck[], error?: BkError): DrillResult => {
    const finished = clock();
    return {
      target: m.target,
      id: m.id,
      storage: job.storage.name,
      status,
      checks,
      seconds: (finished.getTime() - started.getTime()) / 1000,
      finishedAt: finished.toISOString(),
      ...(error ? { error } : {}),
    };
  };

  if (!canDrill(job.driver)) {
    return result(
      'unsupported',
      [],
      new BkError('USAGE', `the ${job.driver.kind} driver cannot run restore tests`, {
        target: m.target,
        step: 'drill',
        hint: 'bk verify without --restore-test still checks the archive (size and sha256)',
      }),
    );
  }

  let drill: RestoreDrill;
  try {
    drill = await job.driver.prepareDrill({ signal: job.signal, logger: log, options: job.drillOptions ?? {} });
  } catch (e) {
    return result('failed', [], toBkError(e, m.target, 'drill'));
  }
  log.info('restore drill started', { step: 'drill', to: drill.to });
  let outcome: DrillResult;
  try {
    await runRestore({
      manifest: m,
      storage: job.storage,
      driver: job.driver,
      to: drill.to,
      options: job.restoreOptions ?? {},
      ...(job.decryption ? { decryption: job.decryption } : {}),
      logger: job.logger,
      signal: job.signal,
    });
    const checks = compareChecks(m.checks ?? {}, await drill.inspect());
    if (checks.length === 0) log.warn('the manifest records no checks; the drill only proved that the backup restores', { step: 'drill' });
    const wrong = checks.filter((c) => !c.ok);
    outcome =
      wrong.length === 0
        ? result('passed', checks)
        : result(
            'mismatch',
            checks,
            new BkError('INTEGRITY', `restored data does not match the manifest: ${wrong.map((c) => c.name).join(', ')}`, {
              target: m.target,
              step: 'drill',
              hint: 'the archive restores but does not hold what was backed up; restore an older backup (bk list) and check the source and dump tool',
            }),
          );
  } catch (e) {
    outcome = result('failed', [], toBkError(e, m.target, 'drill'));
  }
  // Dropped whatever happened above (every path gets here); a throwaway left behind is a failure.
  try {
    await drill.dispose();
  } catch (e) {
    const error = new BkError('FAILED', `could not remove the drill's throwaway ${drill.to}: ${(e as Error).message}`, {
      target: m.target,
      step: 'drill',
      hint: 'remove it by hand',
    });
    log.error(error.describe(), { step: 'drill' });
    outcome = result('failed', outcome.checks, outcome.error ?? error);
  }
  log.info(`restore drill ${outcome.status}`, { step: 'drill', seconds: outcome.seconds });
  return outcome;
}

/**
 * Every key the manifest recorded, against what the drill found. Nested objects are compared key
 * by key (both sides' keys: an extra table is a difference too), so a report names the table or
 * database that differs; anything else is compared whole. Keys only the drill reports are ignored
 * at the top level, so a manifest from an older bk that recorded fewer facts still compares.
 */
export function compareChecks(expected: RestoreCheckData, actual: RestoreCheckData): DrillCheck[] {
  const out: DrillCheck[] = [];
  const visit = (name: string, exp: unknown, act: unknown): void => {
    if (isPlainObject(exp) && isPlainObject(act)) {
      const keys = [...new Set([...Object.keys(exp), ...Object.keys(act)])].sort();
      for (const k of keys) visit(`${name}.${k}`, exp[k], act[k]);
      return;
    }
    out.push({ name, expected: exp ?? null, actual: act ?? null, ok: isDeepStrictEqual(exp, act) });
  };
  for (const key of Object.keys(expected)) visit(key, expected[key], actual[key]);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
