/**
 * A throwaway redis-server: loads an RDB from a private directory and listens only on a unix
 * socket in that directory (no TCP port to race for, nothing reachable from the network, no
 * password needed: the directory is 0700). Used to read a backup's keys for a live restore, and
 * as the destination of a restore drill.
 */
import { execa } from 'execa';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BkError } from '../errors.js';
import { redact } from '../secrets.js';
import { onPath } from '../util/on-path.js';
import { RespClient, RespConnectionError, RespError } from './redis-resp.js';

export const REDIS_SERVER = { bin: 'redis-server', install: 'install redis-server (apt-get install redis-server): a live restore loads the backup into a temporary server' };

export interface TempRedisOptions {
  /** Private directory; holds the socket, and `dbfilename` when there is an RDB to load. */
  dir: string;
  dbfilename?: string;
  /** How many databases the server has; must cover every db number in the RDB. */
  databases?: number;
  signal?: AbortSignal;
  target?: string;
  /** How long loading may take before giving up. */
  loadTimeoutMs?: number;
}

export interface TempRedis {
  /** The unix socket the server listens on. */
  readonly socket: string;
  readonly pid: number;
  /** A new connection to the server. */
  connect(): Promise<RespClient>;
  /** The last lines the server logged. */
  log(): string;
  /** Stops the server (SIGTERM; it has no save points, so it writes nothing) and waits for it. */
  stop(): Promise<void>;
}

const LOG_TAIL = 16 * 1024;

export async function startTempRedis(opts: TempRedisOptions): Promise<TempRedis> {
  const socket = join(opts.dir, 'redis.sock');
  const args = [
    '--port', '0',
    '--unixsocket', socket,
    '--unixsocketperm', '700',
    '--dir', opts.dir,
    '--dbfilename', opts.dbfilename ?? 'dump.rdb',
    '--databases', String(Math.max(16, opts.databases ?? 16)),
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    '--logfile', '',
    '--loglevel', 'notice',
    '--maxmemory', '0',
  ];
  // A missing binary shows up as an early exit below (execa reports ENOENT through the result;
  // setpriv exits 127). Under setpriv the server gets SIGKILL when bk dies, even by kill -9:
  // otherwise it would outlive bk holding a whole copy of the dataset in memory.
  const setpriv = setprivPath();
  const [bin, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', REDIS_SERVER.bin, ...args]] : [REDIS_SERVER.bin, args];
  const child = execa(bin, argv, { buffer: false, reject: false, stdin: 'ignore', cleanup: true, forceKillAfterDelay: 10_000 });
  let tail = '';
  const onData = (b: Buffer) => {
    tail = (tail + b.toString()).slice(-LOG_TAIL);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let exited = false;
  const exit = child.then((r) => {
    exited = true;
    return r;
  });

  const server: TempRedis = {
    socket,
    pid: child.pid ?? -1,
    connect: () => RespClient.connect({ path: socket, signal: opts.signal }),
    log: () => tail,
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      await exit;
    },
  };

  const deadline = Date.now() + (opts.loadTimeoutMs ?? 6 * 3600_000);
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    if (exited || opts.signal?.aborted) {
      const r = await (exited ? exit : server.stop().then(() => exit));
      if (opts.signal?.aborted) throw new BkError('INTERRUPTED', 'interrupted while loading the backup', { target: opts.target, step: 'load' });
      if ((r.failed && r.exitCode === undefined && /ENOENT/.test(String(r.message))) || (setpriv && r.exitCode === 127 && /failed to execute/.test(tail))) {
        throw new BkError('TOOL_MISSING', `${REDIS_SERVER.bin} not found`, { target: opts.target, step: 'load', hint: REDIS_SERVER.install });
      }
      throw loadError(tail, opts.target);
    }
    const state = await ping(socket);
    if (state === 'ready') return server;
    if (Date.now() > deadline) {
      await server.stop();
      throw new BkError('FAILED', 'the temporary redis-server did not finish loading the backup in time', { target: opts.target, step: 'load', toolOutput: redact(tail) });
    }
    await sleep(delay);
  }
}

let setprivFound: string | null | undefined;

/** util-linux's setpriv, which can ask the kernel to kill a child when its parent dies (Linux). */
function setprivPath(): string | undefined {
  if (setprivFound === undefined) {
    setprivFound = process.platform === 'linux' ? (onPath(['setpriv'], [process.env.PATH ?? '', '/usr/bin', '/bin'].join(delimiter)) ?? null) : null;
  }
  return setprivFound ?? undefined;
}

/** ready, or still starting/loading. */
async function ping(socket: string): Promise<'ready' | 'waiting'> {
  let client: RespClient | undefined;
  try {
    client = await RespClient.connect({ path: socket, connectTimeoutMs: 2000 });
    const reply = await client.call('PING');
    return reply === 'PONG' ? 'ready' : 'waiting';
  } catch (e) {
    if (e instanceof RespError || e instanceof RespConnectionError) return 'waiting'; // LOADING, not listening yet
    throw e;
  } finally {
    await client?.close();
  }
}

/** Why a temporary server would not load an RDB, with what to do about it. */
function loadError(log: string, target?: string): BkError {
  const version = /Can't handle RDB format version (\d+)/.exec(log);
  const hint = version
    ? `the backup was written by a newer Redis (RDB format ${version[1]}) than this redis-server; install a redis-server at least as new as the source (the manifest's serverVersion)`
    : /more than \d+ databases/.test(log)
      ? 'the source had more databases than the temporary server; please report this'
      : /Module|module/.test(log)
        ? 'the backup holds data of a Redis module; load that module into a redis-server (restore with --mode file)'
        : 'see the redis-server output above';
  return new BkError('FAILED', 'the temporary redis-server could not load the backup', {
    target,
    step: 'load',
    toolOutput: redact(log.trim().split('\n').slice(-12).join('\n')),
    hint,
  });
}
