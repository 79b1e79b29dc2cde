/**
 * Runs the real CLI (bin/bk.js, built from src by `npm test`) as a child process, the way users and
 * cron do: no TTY, a clean environment, separate stdout and stderr.
 */
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { cleanEnv } from '../harness/env.js';

export const BK_BIN = fileURLToPath(new URL('../../bin/bk.js', import.meta.url));

export interface BkRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for --json runs). */
  json<T = Record<string, unknown>>(): T;
}

export interface RunBkOptions {
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
}

export async function runBk(args: string[], options: RunBkOptions = {}): Promise<BkRun> {
  const res = await execa(process.execPath, [BK_BIN, ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    extendEnv: false,
    input: options.input,
    reject: false,
    timeout: options.timeoutMs ?? 120_000,
  });
  return {
    exitCode: res.exitCode ?? -1,
    stdout: String(res.stdout),
    stderr: String(res.stderr),
    json: <T>() => JSON.parse(String(res.stdout)) as T,
  };
}

/** Starts bk without waiting, for tests that signal or kill it mid-run. */
export function spawnBk(args: string[], options: RunBkOptions = {}): ResultPromise {
  return execa(process.execPath, [BK_BIN, ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    extendEnv: false,
    reject: false,
    buffer: true,
  });
}
