import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary } from './bin.js';
import { cleanEnv } from './env.js';
import { freePort, retryOnPortClash } from './free-port.js';
import { spawnServer, serverLifecycle } from './proc.js';
import { makeTmpDir, rmrf } from './tmp.js';

export interface RedisOptions {
  /** Set `requirepass` (written to the config file, never argv). */
  password?: string;
  /**
   * Data dir (where dump.rdb is read from and written to). Default: a fresh dir inside the temp
   * dir. A caller-supplied dir is NOT removed by stop(): start a server on a restored dump.rdb.
   */
  dir?: string;
}

export interface RedisServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Data dir (`CONFIG GET dir`). */
  readonly dir: string;
  readonly password: string | undefined;
  readonly pid: number;
  /** Run `redis-cli -h host -p port ...args` (password via REDISCLI_AUTH); returns stdout. */
  cli(args: readonly string[]): Promise<string>;
  log(): string;
  /** SIGKILL the server (simulated crash). stop() must still be called to clean up. */
  kill(): Promise<void>;
  /** Shut down (SIGTERM, then SIGKILL) and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Quote a redis.conf argument (double quotes with backslash escapes, as sdssplitargs parses). */
function confValue(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

/** Start a private redis-server on a free port, with persistence off unless the test triggers a SAVE. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  return retryOnPortClash(() => start(opts));
}

async function start(opts: RedisOptions): Promise<RedisServer> {
  const redisServer = findBinary(['redis-server']);
  const redisCli = findBinary(['redis-cli']);

  const tmp = await makeTmpDir('bk-redis-');
  let cleanup = async (): Promise<void> => rmrf(tmp);
  try {
    const dir = opts.dir ?? join(tmp, 'data');
    await mkdir(dir, { recursive: true });
    const port = await freePort();
    const conf = [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${confValue(dir)}`,
      // No automatic snapshots and no AOF: the data dir only changes when a test (or bk) asks.
      'save ""',
      'appendonly no',
      'daemonize no',
      'logfile ""',
      ...(opts.password !== undefined ? [`requirepass ${confValue(opts.password)}`] : []),
      '',
    ].join('\n');
    const confPath = join(tmp, 'redis.conf');
    await writeFile(confPath, conf, { mode: 0o600 });

    const server = spawnServer(redisServer, [confPath], { name: 'redis-server', cwd: tmp });
    cleanup = async () => {
      await server.stop();
      await rmrf(tmp);
    };

    const cli = async (args: readonly string[]): Promise<string> => {
      const r = await execa(redisCli, ['-h', '127.0.0.1', '-p', String(port), ...args], {
        env: cleanEnv(opts.password !== undefined ? { REDISCLI_AUTH: opts.password } : {}),
        extendEnv: false,
      });
      return r.stdout;
    };

    // PONG only once the dataset (e.g. a restored dump.rdb) is loaded; LOADING errors until then.
    // The pid check makes sure the answer did not come from another server that won the port.
    await server.waitFor(
      'PING',
      async () =>
        (await cli(['PING'])).trim() === 'PONG' &&
        /^process_id:(\d+)\r?$/m.exec(await cli(['INFO', 'server']))?.[1] === String(server.pid),
    );

    return {
      host: '127.0.0.1',
      port,
      dir,
      password: opts.password,
      cli,
      ...serverLifecycle(server, cleanup),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
