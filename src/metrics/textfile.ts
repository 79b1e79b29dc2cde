/**
 * The node_exporter textfile: written to a temp file beside it and renamed into place, so the
 * collector never reads half a file. node_exporter only reads files ending in `.prom`.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BackupMetrics } from './backup-metrics.js';

export async function readMetricsTextfile(path: string): Promise<BackupMetrics> {
  try {
    return BackupMetrics.parse(await readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new BackupMetrics();
    throw e;
  }
}

export async function writeMetricsTextfile(path: string, text: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(temp, text, { mode: 0o644 });
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}
