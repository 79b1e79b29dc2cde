/**
 * Runs bin/bk.js once and strikes it with one fault at a chosen moment: a fixed delay after bk
 * logs that the work began (the marker), so the point falls inside the backup, restore or prune
 * rather than in Node's start-up. Children bk had when it was struck are followed after it died:
 * a tool orphaned by `kill -9 bk` must not keep running.
 */
import { execa } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanEnv } from '../harness/env.js';
import { BK_BIN } from '../helpers/run-bk.js';
import { descendants, isAlive, type ProcInfo } from './proc-tree.js';

export interface FaultRunOptions {
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  /** A log line matching this starts the clock; without one the clock starts at spawn. */
  marker?: RegExp;
  /** Milliseconds after the marker to strike. */
  delayMs: number;
  /** Polled after the delay until true: strike only once the work got this far (e.g. bytes written). */
  ready?: () => Promise<boolean>;
  /**
   * The fault. Gets bk's pid and a function that says whether bk has exited; returns what it did,
   * or undefined when it could not strike (bk finished first).
   */
  strike?: (pid: number, exited: () => boolean) => Promise<string | undefined>;
  timeoutMs?: number;
}

export interface FaultRunResult {
  /** bk's pid. */
  pid: number;
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  /** What the fault did, or undefined when bk had finished before it struck. */
  struck?: string;
  /** Milliseconds from marker to exit (the work window), when the marker was seen. */
  windowMs?: number;
  /** Milliseconds from the strike to bk's exit, when it struck. */
  struckBeforeExitMs?: number;
  /** Children of bk still alive 20 s after bk died. */
  lingering: ProcInfo[];
}

export async function runWithFault(o: FaultRunOptions): Promise<FaultRunResult> {
  const child = execa(process.execPath, [BK_BIN, ...o.args], {
    cwd: o.cwd,
    env: cleanEnv(o.env),
    extendEnv: false,
    reject: false,
    timeout: o.timeoutMs ?? 180_000,
  });
  const pid = child.pid!;
  let done = false;
  let exitAt = 0;
  void child.finally(() => {
    done = true;
    exitAt = Date.now();
  });

  let markerAt: number | undefined = o.marker ? undefined : Date.now();
  let markerSeen: () => void = () => undefined;
  const marked = new Promise<void>((resolve) => (markerSeen = resolve));
  if (!o.marker) markerSeen();
  let buffered = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (markerAt !== undefined) return;
    buffered += d.toString();
    if (o.marker!.test(buffered)) {
      markerAt = Date.now();
      markerSeen();
    }
  });

  let struck: string | undefined;
  let struckAt: number | undefined;
  let family: ProcInfo[] = [];
  const striking = (async () => {
    if (!o.strike) return;
    await Promise.race([marked, child.catch(() => undefined)]);
    if (done || markerAt === undefined) return;
    const wait = markerAt + o.delayMs - Date.now();
    if (wait > 0) await sleep(wait);
    while (o.ready && !done && !(await o.ready())) await sleep(2);
    if (done) return;
    family = await descendants(pid);
    struck = await o.strike(pid, () => done);
    struckAt = Date.now();
  })();
  // Awaited only once bk has exited: a strike that fails meanwhile must not count as unhandled.
  striking.catch(() => undefined);

  const res = await child;
  await striking;
  // Tools orphaned by a killed bk get EOF or EPIPE and should stop on their own.
  let lingering: ProcInfo[] = [];
  if (res.signal === 'SIGKILL' && family.length > 0) {
    const deadline = Date.now() + 20_000;
    do {
      lingering = family.filter((p) => isAlive(p.pid));
      if (lingering.length === 0) break;
      await sleep(50);
    } while (Date.now() < deadline);
  }
  return {
    pid,
    exitCode: res.exitCode,
    signal: res.signal,
    stdout: String(res.stdout),
    stderr: String(res.stderr),
    struck,
    windowMs: markerAt !== undefined ? exitAt - markerAt : undefined,
    ...(struck !== undefined && struckAt !== undefined ? { struckBeforeExitMs: exitAt - struckAt } : {}),
    lingering,
  };
}
