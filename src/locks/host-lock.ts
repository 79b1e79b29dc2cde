/**
 * One bk run per target at a time on a host — cron, daemon and manual runs alike (backup, restore,
 * prune, import). A lock is a small JSON file per (target, storage location) in the lock directory,
 * holding the holder's pid, the kernel's start time of that pid, the hostname and the command:
 *
 * - Created atomically and complete: the content goes to a temp file, which is then link(2)ed to
 *   the lock name. link fails with EEXIST when the lock exists (like O_EXCL), and a lock file is
 *   never seen half-written.
 * - Keyed by storage location as well as target name, so two configs or `--repo` runs that touch the
 *   same backups exclude each other, while unrelated repositories (tests in parallel) do not.
 * - Held → BkError LOCKED (exit 5) naming the holder's pid, command and start time.
 * - Stale when the holder is gone: the pid does not exist, or it exists but started at another time
 *   (the pid was reused; start time from /proc/<pid>/stat). Only locks of this host are judged.
 * - Taking over a stale lock is serialized by a short-lived guard file (`<lock>.break`, same
 *   link-based create): under the guard the lock is re-read and removed only if it is still the
 *   same stale lock (same nonce), then the normal create is retried. Without the guard, two
 *   takers could both read the stale lock, and the slower one would unlink the lock the faster one
 *   had just created. A guard left by a taker that died inside those few milliseconds is
 *   removed when it is older than GUARD_ABANDONED_MS; only a second crash-and-race inside that
 *   window could still break exclusion, which is race-free enough for a host lock.
 */
import { randomBytes, createHash } from 'node:crypto';
import { link, lstat, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';

export interface HostLockInfo {
  target: string;
  location: string;
  pid: number;
  /** Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22), when known. */
  processStart?: string;
  startedAt: string;
  hostname: string;
  command: string;
  nonce: string;
}

export interface HostLock {
  paths: string[];
  release(): Promise<void>;
}

const GUARD_ABANDONED_MS = 10_000;
const ATTEMPTS = 5;

/**
 * Where host locks live: $BK_LOCK_DIR, else /run/bk for root, else $XDG_RUNTIME_DIR/bk, else
 * /tmp/bk-locks-<uid>. All are local, cleared on reboot (a lock never outlives its process
 * there), and private to the user.
 */
export function hostLockDir(env: NodeJS.ProcessEnv): string {
  if (env.BK_LOCK_DIR) return env.BK_LOCK_DIR;
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '/run/bk';
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'bk');
  return `/tmp/bk-locks-${uid}`;
}

export interface AcquireHostLockOptions {
  dir: string;
  target: string;
  /** Storage locations the run touches; one lock each, taken in sorted order. */
  locations: string[];
  command: string;
  logger?: Logger;
  now?: () => Date;
}

/** Takes every lock or none; throws BkError LOCKED when one is held by a live process. */
export async function acquireHostLock(o: AcquireHostLockOptions): Promise<HostLock> {
  await ensureDir(o.dir);
  const taken: string[] = [];
  const nonce = randomBytes(8).toString('hex');
  try {
    for (const location of [...new Set(o.locations)].sort()) {
      const path = lockPath(o.dir, o.target, location);
      const info: HostLockInfo = {
        target: o.target,
        location,
        pid: process.pid,
        processStart: await processStart(process.pid),
        startedAt: (o.now?.() ?? new Date()).toISOString(),
        hostname: hostname(),
        command: o.command,
        nonce,
      };
      await acquireOne(path, info, o.logger);
      taken.push(path);
    }
  } catch (e) {
    await Promise.all(taken.map((p) => releaseOne(p, nonce)));
    throw e;
  }
  return { paths: taken, release: () => Promise.all(taken.map((p) => releaseOne(p, nonce))).then(() => undefined) };
}

export function lockPath(dir: string, target: string, location: string): string {
  const h = createHash('sha256').update(location).digest('hex').slice(0, 12);
  return join(dir, `${target}@${h}.lock`);
}

async function acquireOne(path: string, info: HostLockInfo, logger?: Logger): Promise<void> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (await createExclusive(path, `${JSON.stringify(info)}\n`)) return;
    const holder = await readLock(path);
    if (holder === 'missing') continue; // released between our create and read: try again
    const state = holder === 'unreadable' ? 'unreadable' : await holderState(holder);
    if (state === 'alive' || state === 'elsewhere' || holder === 'unreadable') throw lockedError(info, holder, path);
    logger?.warn(`taking over a stale lock of pid ${holder.pid} (${holder.command}, started ${holder.startedAt}): that process is gone`, { target: info.target, step: 'lock' });
    await breakStale(path, holder.nonce);
  }
  throw new BkError('LOCKED', `could not take the lock ${path}: other runs keep taking it`, { target: info.target, step: 'lock', hint: 'try again' });
}

async function breakStale(path: string, staleNonce: string): Promise<void> {
  const guard = `${path}.break`;
  if (!(await createExclusive(guard, `${process.pid}\n`))) {
    const s = await stat(guard).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > GUARD_ABANDONED_MS) await unlink(guard).catch(() => undefined);
    return; // someone else is taking it over; the caller retries and sees the result
  }
  try {
    const again = await readLock(path);
    if (typeof again === 'object' && again.nonce === staleNonce) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(guard).catch(() => undefined);
  }
}

async function releaseOne(path: string, nonce: string): Promise<void> {
  const current = await readLock(path);
  // Never remove a lock that is not ours (it was taken over because this process looked dead).
  if (typeof current === 'object' && current.nonce === nonce) await unlink(path).catch(() => undefined);
}

/** Writes `content` to a temp file and links it to `path`; false when `path` exists. */
async function createExclusive(path: string, content: string): Promise<boolean> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, content, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new BkError('FAILED', `cannot create lock ${path}: ${(e as Error).message}`, { step: 'lock', hint: 'set BK_LOCK_DIR to a writable local directory' });
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function readLock(path: string): Promise<HostLockInfo | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new BkError('FAILED', `cannot read lock ${path}: ${(e as Error).message}`, { step: 'lock' });
  }
  try {
    const info = JSON.parse(text) as HostLockInfo;
    if (typeof info.pid !== 'number' || typeof info.nonce !== 'string') return 'unreadable';
    return info;
  } catch {
    return 'unreadable';
  }
}

/** alive · dead (gone, or its pid now belongs to a younger process) · elsewhere (another host). */
export async function holderState(h: Pick<HostLockInfo, 'pid' | 'processStart' | 'hostname'>): Promise<'alive' | 'dead' | 'elsewhere'> {
  if (h.hostname !== hostname()) return 'elsewhere';
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return 'dead';
    // EPERM: the pid exists but belongs to another user; fall through to the start-time check.
  }
  if (h.processStart !== undefined) {
    const now = await processStart(h.pid);
    if (now !== undefined && now !== h.processStart) return 'dead';
  }
  return 'alive';
}

/** The kernel's start time of a process (clock ticks since boot), or undefined without /proc. */
export async function processStart(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19]; // field 22 overall; fields[0] is field 3 (state)
  } catch {
    return undefined;
  }
}

function lockedError(mine: HostLockInfo, holder: HostLockInfo | 'unreadable', path: string): BkError {
  if (holder === 'unreadable') {
    return new BkError('LOCKED', `target ${mine.target} is locked (${path} is unreadable)`, {
      target: mine.target,
      step: 'lock',
      hint: `if no bk is running, remove ${path}`,
    });
  }
  const where = holder.hostname === mine.hostname ? '' : ` on host ${holder.hostname}`;
  return new BkError('LOCKED', `target ${mine.target} is locked by pid ${holder.pid}${where} (${holder.command}, started ${holder.startedAt})`, {
    target: mine.target,
    step: 'lock',
    hint:
      holder.hostname === mine.hostname
        ? `wait for it to finish; a lock of a process that no longer runs is taken over automatically (${path})`
        : `the lock directory is shared with host ${holder.hostname}; use a local BK_LOCK_DIR, or remove ${path} if that run is gone`,
  });
}

/** Creates the lock directory private to this user; refuses a directory someone else controls. */
async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = await lstat(dir);
    const uid = process.getuid?.();
    if (!s.isDirectory()) throw new Error('not a directory');
    if (uid !== undefined && s.uid !== uid && s.uid !== 0) throw new Error(`owned by uid ${s.uid}, not by this user`);
  } catch (e) {
    throw new BkError('FAILED', `lock directory ${dir}: ${(e as Error).message}`, { step: 'lock', hint: 'set BK_LOCK_DIR to a private local directory' });
  }
}
