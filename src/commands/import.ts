/**
 * `bk import <target> <file…> [--time T]`: adopt dump files made before bk (the old cron scripts'
 * output) into the catalog, each as a backup with its original time — from --time, else the file's
 * modification time — so the history is kept, listed, restorable, and under retention like any
 * backup. Import never prunes: old history would otherwise be cut as soon as it arrived.
 */
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { driverFor, storagesFor, targetFor, type Context } from '../app/context.js';
import { listBackups } from '../catalog/catalog.js';
import { resolveAt } from '../catalog/select.js';
import { runBackup, type BackupResult } from '../engine/backup.js';
import { importedFileDriver } from '../engine/import-file.js';
import { BkError, ExitCode, toBkError } from '../errors.js';
import { acquireHostLock, hostLockDir } from '../locks/host-lock.js';
import { formatBytes } from '../output/format.js';
import { render } from '../output/render.js';
import type { AdHocFlags } from '../drivers/registry.js';
import { exitCodeFor } from './backup.js';

export interface ImportFlags extends AdHocFlags {
  time?: string;
}

interface Imported {
  file: string;
  time: string;
  result?: BackupResult;
  skipped?: string;
}

export async function importCommand(ctx: Context, name: string, files: string[], flags: ImportFlags): Promise<number> {
  if (flags.time !== undefined && files.length > 1) {
    throw new BkError('USAGE', '--time applies to one file', { hint: 'import files one by one with --time, or let each keep its modification time' });
  }
  const target = targetFor(ctx, name, flags);
  const storages = storagesFor(ctx, target);
  const like = driverFor(target);
  const times = await Promise.all(
    files.map(async (f) => {
      if (flags.time !== undefined) return resolveAt(flags.time, target.timezone, ctx.clock()).instant;
      try {
        return (await stat(f)).mtime;
      } catch (e) {
        throw new BkError('USAGE', `cannot read ${f}: ${(e as Error).message}`, { target: name, step: 'import' });
      }
    }),
  );
  const lock = await acquireHostLock({ dir: hostLockDir(ctx.env), target: name, locations: storages.map((s) => s.location), command: 'bk import', logger: ctx.logger });
  const done: Imported[] = [];
  try {
    // Importing the same file twice (same name and time) would only duplicate it.
    const existing = (await Promise.all(storages.map((s) => listBackups(s, name)))).flatMap((c) => c.backups);
    const already = new Set(
      existing.map((b) => `${(b.manifest.extra?.imported as { file?: string } | undefined)?.file}@${b.manifest.startedAt}`),
    );
    for (const [i, file] of files.entries()) {
      if (ctx.signal.aborted) break;
      const time = times[i]!;
      if (already.has(`${basename(file)}@${time.toISOString()}`)) {
        done.push({ file, time: time.toISOString(), skipped: 'already imported' });
        continue;
      }
      try {
        const result = await runBackup({
          target: name,
          driver: await importedFileDriver(resolve(ctx.cwd, file), like),
          storages,
          compression: target.compression,
          compressionLevel: target.compressionLevel,
          tags: [...target.tags, 'imported'],
          logger: ctx.logger,
          signal: ctx.signal,
          // The backup's time is the dump's: start and finish both, so --at and retention see it there.
          clock: () => time,
          bkVersion: ctx.bkVersion,
        });
        done.push({ file, time: time.toISOString(), result });
      } catch (e) {
        const error = toBkError(e, name, 'import');
        done.push({ file, time: time.toISOString(), result: { target: name, id: '', status: 'failed', storages: [], rawBytes: 0, storedBytes: 0, seconds: 0, error } });
      }
    }
  } finally {
    await lock.release();
  }
  render(
    ctx,
    'import',
    {
      target: name,
      imported: done.map((d) => ({
        file: d.file,
        time: d.time,
        id: d.result?.id || null,
        status: d.skipped ? 'skipped' : d.result!.status,
        skipped: d.skipped ?? null,
        rawBytes: d.result?.rawBytes ?? 0,
        error: d.result?.error ? { code: d.result.error.code, message: d.result.error.describe() } : null,
      })),
    },
    () =>
      ctx.quiet
        ? ''
        : done
            .map((d) =>
              d.skipped
                ? `${d.file}: skipped (${d.skipped})`
                : d.result!.status === 'failed'
                  ? `${d.file}: import FAILED: ${d.result!.error?.describe()}`
                  : `${d.file}: imported as ${name} ${d.result!.id} (${d.time}, ${formatBytes(d.result!.rawBytes)})`,
            )
            .join('\n'),
  );
  const results = done.filter((d) => d.result).map((d) => d.result!);
  return results.length === 0 ? ExitCode.ok : exitCodeFor(results, ctx.signal.aborted);
}
