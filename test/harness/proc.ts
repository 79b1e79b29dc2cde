import { execa, type ResultPromise } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanEnv } from './env.js';

const LOG_TAIL_BYTES = 64 * 1024;

export interface SpawnServerOptions {
  /** Short name used in error messages, e.g. 'mariadbd'. */
  name: string;
  cwd?: string;
  /** Extra environment on top of cleanEnv(). */
  env?: Record<string, string>;
  /** Run as this uid/gid (used to drop root for postgres). */
  uid?: number;
  gid?: number;
  /**
   * 'pipe' keeps the child's stdin open for as long as we live; a child that exits on stdin EOF
   * (our s3rver script) then dies with us even if we are SIGKILLed.
   */
  stdin?: 'ignore' | 'pipe';
  /** Signal for a graceful stop() (postgres wants SIGINT = fast shutdown). Default SIGTERM. */
  stopSignal?: NodeJS.Signals;
}

export interface ExitInfo {
  exitCode: number | undefined;
  signal: string | undefined;
}

/** A long-running server child process. */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  /** The underlying execa subprocess (for reading stdout etc.). */
  readonly child: ResultPromise;
  /** Resolves once the process has exited; never rejects. */
  readonly exited: Promise<ExitInfo>;
  hasExited(): boolean;
  /** The last 64 KiB of combined stdout+stderr. */
  log(): string;
  /**
   * Poll `check` until it returns true. Fails early, with the log tail, if the process exits,
   * or after timeoutMs.
   */
  waitFor(what: string, check: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  /** Graceful stop with the configured signal; SIGKILL if still alive after graceMs. */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** SIGKILL now (simulated crash) and wait for the exit. */
  kill(): Promise<ExitInfo>;
}

export function spawnServer(file: string, args: readonly string[], opts: SpawnServerOptions): ServerProcess {
  const child = execa(file, args, {
    cwd: opts.cwd,
    env: cleanEnv(opts.env),
    extendEnv: false,
    uid: opts.uid,
    gid: opts.gid,
    stdin: opts.stdin ?? 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    // Servers run for the whole test: never buffer their output in memory, keep only a tail.
    buffer: false,
    reject: false,
    // execa's default: kill the child if this (vitest worker) process exits.
    cleanup: true,
    forceKillAfterDelay: false,
  });

  let tail = '';
  const onData = (chunk: Buffer | string): void => {
    tail += chunk.toString();
    if (tail.length > LOG_TAIL_BYTES) tail = tail.slice(-LOG_TAIL_BYTES);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);

  let done = false;
  const exited: Promise<ExitInfo> = child.then(
    (r) => {
      done = true;
      return { exitCode: r.exitCode, signal: r.signal };
    },
    // reject:false makes this unreachable in practice; keep the promise total anyway.
    () => {
      done = true;
      return { exitCode: undefined, signal: undefined };
    },
  );

  const describeExit = (e: ExitInfo): string =>
    e.signal ? `killed by ${e.signal}` : `exited with code ${String(e.exitCode)}`;

  const proc: ServerProcess = {
    name: opts.name,
    pid: child.pid ?? -1,
    child,
    exited,
    hasExited: () => done,
    log: () => tail,

    async waitFor(what, check, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (done) {
          const info = await exited;
          const result = await child;
          const spawnErr = result.failed && result.exitCode === undefined && !result.signal ? `\n${result.message}` : '';
          throw new Error(
            `${opts.name} ${describeExit(info)} before ${what}${spawnErr}\n--- ${opts.name} output ---\n${tail}`,
          );
        }
        if (await check().catch(() => false)) return;
        if (Date.now() > deadline) {
          throw new Error(`${opts.name}: timed out after ${timeoutMs} ms waiting for ${what}\n--- output ---\n${tail}`);
        }
        await sleep(50);
      }
    },

    async stop(graceMs = 10_000) {
      if (done) return exited;
      child.kill(opts.stopSignal ?? 'SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },

    async kill() {
      if (!done) child.kill('SIGKILL');
      return exited;
    },
  };
  return proc;
}

/** The pid/log/kill/stop part every harness handle shares; `stop` runs `cleanup` once. */
export function serverLifecycle(server: ServerProcess, cleanup: () => Promise<void>): {
  pid: number;
  log(): string;
  kill(): Promise<void>;
  stop(): Promise<void>;
} {
  let stopped = false;
  return {
    pid: server.pid,
    log: () => server.log(),
    kill: async () => {
      await server.kill();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await cleanup();
    },
  };
}
