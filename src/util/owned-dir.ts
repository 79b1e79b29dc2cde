/**
 * Private working directories whose names say which bk made them — `<prefix>-<host>-<pid>-XXXXXX`
 * — so that a bk killed with kill -9 (or by the OOM killer, or a power cut) does not leave them
 * behind for good: the next run that makes a directory of the same kind first removes those of
 * this host whose process is gone. They hold what must not linger: a restore's staging copy of a
 * whole backup, a 0600 passfile with a database password, an RDB being loaded.
 *
 * Only this host's directories are judged (a pid means nothing on another machine sharing the
 * directory), and only by a dead pid: a run still going keeps its own.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** The hostname as it may appear in a file name. */
const hostTag = (): string => hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'host';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `<parent>/<prefix>-<host>-<pid>-XXXXXX` directories of dead bk processes; returns them. */
export async function removeAbandonedDirs(parent: string, prefix: string): Promise<string[]> {
  const mine = `${prefix}-${hostTag()}-`;
  const removed: string[] = [];
  for (const entry of await readdir(parent).catch(() => [] as string[])) {
    if (!entry.startsWith(mine)) continue;
    const m = /^(\d+)-[A-Za-z0-9]{6}$/.exec(entry.slice(mine.length));
    if (!m || Number(m[1]) === process.pid || isAlive(Number(m[1]))) continue;
    await rm(join(parent, entry), { recursive: true, force: true });
    removed.push(join(parent, entry));
  }
  return removed;
}

/**
 * A new private (0700) directory `<parent>/<prefix>-<host>-<pid>-XXXXXX`, after removing those a
 * killed bk left. `onRemoved` hears about each one removed (for a log line).
 */
export async function makeOwnedDir(parent: string, prefix: string, onRemoved?: (dir: string) => void): Promise<string> {
  for (const dir of await removeAbandonedDirs(parent, prefix)) onRemoved?.(dir);
  return mkdtemp(join(parent, `${prefix}-${hostTag()}-${process.pid}-`));
}
