/**
 * What the reliability tests read from /proc: a process's descendants (to kill the dump tool bk
 * started, not bk itself), its resident memory and its open file descriptors (soak test).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** The executable's short name (/proc/<pid>/comm), e.g. "zstd", "pg_dump". */
  comm: string;
  /** The state letter of /proc/<pid>/stat: R, S, D, … and Z for a process that exited unreaped. */
  state: string;
}

/**
 * Every process on the system, as /proc shows it now (processes that vanish while read are skipped).
 * Read synchronously: a scan then takes ~10 ms instead of ~90 ms through the thread pool, short
 * enough to catch a tool that lives a fraction of a second.
 */
export async function processes(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // comm is in parentheses and may itself hold spaces and ")": split at the last ")".
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    out.push({ pid: Number(name), ppid: Number(fields[1]), comm, state: fields[0] ?? '' });
  }
  return out;
}

/** Descendants of `pid` (children, grandchildren, …). */
export async function descendants(pid: number): Promise<ProcInfo[]> {
  const all = await processes();
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of byParent.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

/**
 * Polls until a descendant of `pid` runs one of `names`; undefined when `until()` says stop first.
 * A zombie (exited, not yet reaped) does not count: killing it does nothing, and a fault that
 * "struck" it would be judged as if it had.
 */
export async function waitForDescendant(pid: number, names: readonly string[], until: () => boolean, timeoutMs = 60_000): Promise<ProcInfo | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !until()) {
    const hit = (await descendants(pid)).find((p) => names.includes(p.comm) && p.state !== 'Z');
    if (hit) return hit;
    await sleep(2);
  }
  return undefined;
}

/** Resident set size in bytes (VmRSS). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Open file descriptors, with what each points at (for a readable failure message). */
export async function openFds(pid: number): Promise<string[]> {
  const fds = await readdir(`/proc/${pid}/fd`);
  return Promise.all(fds.map(async (fd) => `${fd} → ${await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '?')}`));
}

/** Running, not exited: a zombie (exited, not yet reaped by its parent) still takes signals without effect. */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Working directories bk names after its pid (`<prefix>-<host>-<pid>-XXXXXX`, src/util/owned-dir.ts)
 * that belong to one of `pids`: what a killed bk left, in the given parent directories.
 */
export function ownedDirsOf(parents: readonly string[], pids: readonly number[]): string[] {
  const out: string[] = [];
  for (const parent of parents) {
    let entries: string[];
    try {
      entries = readdirSync(parent);
    } catch {
      continue;
    }
    for (const e of entries) {
      const m = /-(\d+)-[A-Za-z0-9]{6}$/.exec(e);
      if (m && pids.includes(Number(m[1])) && /^\.?bk-/.test(e)) out.push(`${parent}/${e}`);
    }
  }
  return out;
}
