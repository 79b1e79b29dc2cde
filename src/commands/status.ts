/**
 * `bk status [target…]`: per target and storage, the last backup (from the storage listing), its age
 * and whether it is overdue by its schedule or max_age. Exit 1 when anything is overdue or a storage
 * cannot be listed — a one-line monitoring check (`bk status --quiet || alert`).
 */
import { configuredTargets, storagesFor, type Context } from '../app/context.js';
import { listBackups } from '../catalog/catalog.js';
import { BkError, ExitCode } from '../errors.js';
import { formatDuration, table } from '../output/format.js';
import { render } from '../output/render.js';
import { assessBackup, type Expectation } from '../ops/overdue.js';
import { DURATION_HINT, formatDurationMs, parseDuration } from '../time/duration.js';
import { mapLimit } from '../util/concurrency.js';

export interface StatusFlags {
  maxAge?: string;
}

interface StorageStatus {
  storage: string;
  lastId: string | null;
  finishedAt: string | null;
  ageSeconds: number | null;
  nextExpected: string | null;
  deadline: string | null;
  overdue: boolean;
  reason: string | null;
  error: string | null;
}

interface TargetStatus {
  target: string;
  schedule: string | null;
  maxAge: string | null;
  overdue: boolean;
  storages: StorageStatus[];
}

export async function statusCommand(ctx: Context, names: string[], flags: StatusFlags): Promise<number> {
  let maxAgeMs: number | undefined;
  if (flags.maxAge !== undefined) {
    maxAgeMs = parseDuration(flags.maxAge);
    if (maxAgeMs === undefined) throw new BkError('USAGE', `--max-age ${flags.maxAge}: not ${DURATION_HINT}`);
  }
  const targets = names.length > 0 ? names : configuredTargets(ctx).length > 0 ? configuredTargets(ctx) : await targetsInStorages(ctx);
  const now = ctx.clock();
  const statuses = await mapLimit(targets, 4, async (name): Promise<TargetStatus> => {
    const cfg = ctx.config.targets[name];
    const exp: Expectation = {
      timezone: cfg?.timezone ?? ctx.config.timezone,
      ...(cfg?.schedule !== undefined ? { schedule: cfg.schedule } : {}),
      ...(cfg?.jitterMs !== undefined ? { jitterMs: cfg.jitterMs } : {}),
      ...(cfg?.timeoutMs !== undefined ? { timeoutMs: cfg.timeoutMs } : {}),
      ...((maxAgeMs ?? cfg?.maxAgeMs) !== undefined ? { maxAgeMs: maxAgeMs ?? cfg?.maxAgeMs } : {}),
    };
    const storages = await mapLimit(storagesFor(ctx, cfg), 4, async (storage): Promise<StorageStatus> => {
      try {
        const { backups, problems } = await listBackups(storage, name);
        for (const p of problems) ctx.logger.warn(`ignoring ${p.key}: ${p.error}`, { storage: p.storage });
        const last = backups.reduce<(typeof backups)[number] | undefined>((a, b) => (!a || a.manifest.finishedAt < b.manifest.finishedAt ? b : a), undefined)?.manifest;
        const a = assessBackup(exp, last ? { startedAt: new Date(last.startedAt), finishedAt: new Date(last.finishedAt) } : undefined, now);
        return {
          storage: storage.name,
          lastId: last?.id ?? null,
          finishedAt: last?.finishedAt ?? null,
          ageSeconds: a.ageSeconds !== undefined ? Math.round(a.ageSeconds) : null,
          nextExpected: a.nextExpected?.toISOString() ?? null,
          deadline: a.deadline?.toISOString() ?? null,
          overdue: a.overdue,
          reason: a.reason ?? null,
          error: null,
        };
      } catch (e) {
        return { storage: storage.name, lastId: null, finishedAt: null, ageSeconds: null, nextExpected: null, deadline: null, overdue: false, reason: null, error: (e as Error).message };
      }
    });
    return {
      target: name,
      schedule: exp.schedule ?? null,
      maxAge: exp.maxAgeMs !== undefined ? formatDurationMs(exp.maxAgeMs) : null,
      overdue: storages.some((s) => s.overdue),
      storages,
    };
  });
  const ok = statuses.every((t) => !t.overdue && t.storages.every((s) => !s.error));
  render(ctx, 'status', { ok, targets: statuses }, () => (ctx.quiet && ok ? '' : statusText(statuses, ctx.quiet)));
  return ok ? ExitCode.ok : ExitCode.failed;
}

function statusText(statuses: TargetStatus[], onlyProblems: boolean): string {
  if (statuses.length === 0) return 'no targets';
  const rows = statuses.flatMap((t) =>
    t.storages
      .filter((s) => !onlyProblems || s.overdue || s.error)
      .map((s) => [
        t.target,
        s.storage,
        s.lastId ?? '-',
        s.ageSeconds !== null ? formatDuration(s.ageSeconds) : '-',
        s.deadline ? s.deadline.replace(/\.\d{3}Z$/, 'Z') : '-',
        s.error ? `ERROR: ${s.error}` : s.overdue ? `OVERDUE: ${s.reason}` : s.lastId ? 'ok' : 'no backup',
      ]),
  );
  return table([['TARGET', 'STORAGE', 'LAST BACKUP', 'AGE', 'DUE BY', 'STATE'], ...rows]);
}

async function targetsInStorages(ctx: Context): Promise<string[]> {
  const catalogs = await mapLimit(storagesFor(ctx), 4, (s) => listBackups(s));
  return [...new Set(catalogs.flatMap((c) => c.backups.map((b) => b.manifest.target)))].sort();
}
