import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary, isExecutable, postgresBinDirs, realBinDir } from './bin.js';
import { cleanEnv } from './env.js';
import { freePort, retryOnPortClash } from './free-port.js';
import { postgresOsUser } from './pg-user.js';
import { spawnServer, serverLifecycle } from './proc.js';
import { makeTmpDir, rmrf } from './tmp.js';

export interface PostgresOptions {
  /** Password for the `bk` role (default: random). Any characters are allowed. */
  bkPassword?: string;
  /** Extra server settings, passed as `-c key=value`. */
  settings?: Readonly<Record<string, string>>;
}

export interface PsqlOptions {
  /** 'postgres' (default) connects over the unix socket (trust); 'bk' over TCP with bkPassword. */
  as?: 'postgres' | 'bk';
}

export interface PostgresServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Directory of the unix socket (libpq `host=`/`-h` value). */
  readonly socketDir: string;
  /** Superuser; trust auth over the unix socket only (TCP requires a password it does not have). */
  readonly superuser: 'postgres';
  /** LOGIN SUPERUSER role; TCP connections need its password (scram-sha-256). */
  readonly bkUser: 'bk';
  readonly bkPassword: string;
  readonly dataDir: string;
  /** Directory with the matching client binaries (pg_dump, psql, ...). */
  readonly binDir: string;
  readonly pid: number;
  /** Run SQL (via stdin) with `psql -XAtq -v ON_ERROR_STOP=1`; returns stdout. Throws on error. */
  psql(sql: string, db?: string, opts?: PsqlOptions): Promise<string>;
  /** CREATE DATABASE "name" (owned by the superuser). */
  createDb(name: string): Promise<void>;
  log(): string;
  /** SIGKILL the postmaster (simulated crash). stop() must still be called to clean up. */
  kill(): Promise<void>;
  /** Fast shutdown (SIGINT, then SIGKILL) and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export const pgString = (v: string): string => `'${v.replace(/'/g, "''")}'`;
export const pgIdent = (v: string): string => `"${v.replace(/"/g, '""')}"`;

const HBA = [
  '# written by test/harness/postgres.ts',
  'local all all trust',
  'host all all 127.0.0.1/32 scram-sha-256',
  'host all all ::1/128 scram-sha-256',
  '',
].join('\n');

/**
 * A clean shutdown deletes postmaster.pid and the cluster's small SysV shared memory segment.
 * After a SIGKILL (kill()) both remain, and the segment would outlive the test run; its id is
 * on line 7 of postmaster.pid ("<key> <shmid>").
 */
async function removeLeftoverShm(dataDir: string): Promise<void> {
  const pidFile = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const shmid = pidFile?.split('\n')[6]?.trim().split(/\s+/)[1];
  if (shmid && /^\d+$/.test(shmid)) await execa('ipcrm', ['-m', shmid], { reject: false });
}

/**
 * Start a private PostgreSQL cluster in a fresh temp dir on a free port.
 * As root, initdb and postgres run as the unprivileged `bkpgtest` user (spawned with its
 * uid/gid directly rather than through runuser, so the pid we hold, and kill, is the postmaster).
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  return retryOnPortClash(() => start(opts));
}

async function start(opts: PostgresOptions): Promise<PostgresServer> {
  const initdb = findBinary(['initdb'], postgresBinDirs());
  const binDir = realBinDir(initdb);
  // Use the client tools that ship with this server (not e.g. Debian's /usr/bin wrappers).
  const bin = (name: string): string => (isExecutable(join(binDir, name)) ? join(binDir, name) : findBinary([name]));
  const osUser = await postgresOsUser();

  const dir = await makeTmpDir('bk-pg-');
  const dataDir = join(dir, 'data');
  const socketDir = dir;
  const bkPassword = opts.bkPassword ?? `bk-${randomBytes(12).toString('hex')}`;
  let cleanup = async (): Promise<void> => rmrf(dir);

  try {
    if (osUser) await chown(dir, osUser.uid, osUser.gid);
    const asPgUser = { uid: osUser?.uid, gid: osUser?.gid, cwd: dir, env: cleanEnv({ HOME: dir }), extendEnv: false };

    await execa(
      bin('initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      asPgUser,
    );
    // initdb created pg_hba.conf owned by the postgres OS user with mode 0600; overwriting the
    // existing file keeps both.
    await writeFile(join(dataDir, 'pg_hba.conf'), HBA);

    const port = await freePort();
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      // Durability is irrelevant for a throwaway cluster; this makes DDL-heavy tests much faster.
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      shared_buffers: '32MB',
      ...opts.settings,
    };
    const server = spawnServer(
      bin('postgres'),
      ['-D', dataDir, '-p', String(port), '-k', socketDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
      { name: 'postgres', cwd: dir, uid: osUser?.uid, gid: osUser?.gid, env: { HOME: dir }, stopSignal: 'SIGINT' },
    );
    cleanup = async () => {
      await server.stop();
      await removeLeftoverShm(dataDir);
      await rmrf(dir);
    };

    await server.waitFor('pg_isready', async () => {
      const r = await execa(bin('pg_isready'), ['-q', '-h', socketDir, '-p', String(port), '-U', 'postgres', '-d', 'postgres'], {
        env: cleanEnv(),
        extendEnv: false,
        reject: false,
      });
      return r.exitCode === 0;
    });

    const psql = async (sql: string, db = 'postgres', popts: PsqlOptions = {}): Promise<string> => {
      const asBk = popts.as === 'bk';
      const r = await execa(
        bin('psql'),
        ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', asBk ? '127.0.0.1' : socketDir, '-p', String(port), '-U', asBk ? 'bk' : 'postgres', '-d', db],
        {
          input: sql,
          // Password via the environment, never argv; PGPASSFILE pinned so ~/.pgpass cannot interfere.
          env: cleanEnv({ PGPASSFILE: join(dir, 'no-pgpass'), ...(asBk ? { PGPASSWORD: bkPassword } : {}) }),
          extendEnv: false,
        },
      );
      return r.stdout;
    };

    await psql(`CREATE ROLE bk LOGIN SUPERUSER PASSWORD ${pgString(bkPassword)};`);

    return {
      host: '127.0.0.1',
      port,
      socketDir,
      superuser: 'postgres',
      bkUser: 'bk',
      bkPassword,
      dataDir,
      binDir,
      psql,
      createDb: async (name) => {
        await psql(`CREATE DATABASE ${pgIdent(name)};`);
      },
      ...serverLifecycle(server, cleanup),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
