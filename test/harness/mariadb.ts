import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary } from './bin.js';
import { cleanEnv } from './env.js';
import { freePort, retryOnPortClash } from './free-port.js';
import { spawnServer, serverLifecycle } from './proc.js';
import { makeTmpDir, rmrf } from './tmp.js';

export interface MariadbOptions {
  /** Password for the `bk` user (default: random). Any characters are allowed. */
  bkPassword?: string;
  /** Extra mariadbd arguments, e.g. ['--log-bin'] for tests that need a binary log. */
  args?: readonly string[];
}

export interface MariadbQueryOptions {
  /** 'root' (default) connects over the unix socket; 'bk' over TCP with bkPassword. */
  as?: 'root' | 'bk';
}

export interface MariadbServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly socket: string;
  /** Superuser, reachable through `socket` (and 127.0.0.1) with an empty password. */
  readonly user: 'root';
  readonly password: '';
  /** `bk`@`%` with ALL PRIVILEGES ... WITH GRANT OPTION and a non-empty password. */
  readonly bkUser: 'bk';
  readonly bkPassword: string;
  readonly dataDir: string;
  readonly pid: number;
  /** Run SQL (via stdin) with `mariadb --batch --skip-column-names`; returns stdout. Throws on error. */
  query(sql: string, db?: string, opts?: MariadbQueryOptions): Promise<string>;
  /** Server log tail (stderr). */
  log(): string;
  /** SIGKILL the server (simulated crash). stop() must still be called to clean up. */
  kill(): Promise<void>;
  /** Shut down (SIGTERM, then SIGKILL) and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Quote a value for a MySQL option file (`key="value"`): the file supports C-like escapes. */
function optionFileValue(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

/** Quote a string literal for SQL (default sql_mode, where backslash is an escape). */
export function mariadbString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * Start a private MariaDB server in a fresh temp datadir on a free port.
 * Clients are always run with `--defaults-file` (a 0600 temp file holding the password), which
 * keeps the password out of argv and also stops /etc/mysql/my.cnf from redirecting them.
 */
export async function startMariadb(opts: MariadbOptions = {}): Promise<MariadbServer> {
  return retryOnPortClash(() => start(opts));
}

async function start(opts: MariadbOptions): Promise<MariadbServer> {
  const mariadbd = findBinary(['mariadbd', 'mysqld']);
  const installDb = findBinary(['mariadb-install-db', 'mysql_install_db']);
  const client = findBinary(['mariadb', 'mysql']);
  const admin = findBinary(['mariadb-admin', 'mysqladmin']);
  const isRoot = process.getuid?.() === 0;
  // mariadbd refuses to run as root unless told to explicitly.
  const userArg = isRoot ? ['--user=root'] : [];

  const dir = await makeTmpDir('bk-mariadb-');
  const dataDir = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const bkPassword = opts.bkPassword ?? `bk-${randomBytes(12).toString('hex')}`;
  let cleanup = async (): Promise<void> => rmrf(dir);

  try {
    await execa(
      installDb,
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        ...userArg,
        // root@localhost gets an ordinary (empty) password instead of unix_socket auth, so the
        // harness also works when tests do not run as OS root.
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ],
      { env: cleanEnv(), extendEnv: false, cwd: dir },
    );

    const port = await freePort();
    const server = spawnServer(
      mariadbd,
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${join(dir, 'mariadbd.pid')}`,
        ...userArg,
        '--skip-name-resolve',
        // Small footprint: several test servers may run at once on a 2-core CI box.
        '--innodb-buffer-pool-size=32M',
        '--performance-schema=OFF',
        ...(opts.args ?? []),
      ],
      { name: 'mariadbd', cwd: dir },
    );
    cleanup = async () => {
      await server.stop();
      await rmrf(dir);
    };

    const rootCnf = join(dir, 'client-root.cnf');
    const bkCnf = join(dir, 'client-bk.cnf');
    await writeFile(rootCnf, `[client]\nuser=root\npassword=""\nsocket=${optionFileValue(socket)}\nprotocol=SOCKET\n`, {
      mode: 0o600,
    });
    await writeFile(
      bkCnf,
      `[client]\nuser=bk\npassword=${optionFileValue(bkPassword)}\nhost=127.0.0.1\nport=${port}\nprotocol=TCP\n`,
      { mode: 0o600 },
    );

    // `ping` exits 0 as soon as the server answers at all.
    await server.waitFor('mariadb-admin ping', async () => {
      const r = await execa(admin, [`--defaults-file=${rootCnf}`, '--connect-timeout=2', 'ping'], {
        env: cleanEnv(),
        extendEnv: false,
        reject: false,
      });
      return r.exitCode === 0;
    });

    const query = async (sql: string, db?: string, qopts: MariadbQueryOptions = {}): Promise<string> => {
      const cnf = qopts.as === 'bk' ? bkCnf : rootCnf;
      const r = await execa(client, [`--defaults-file=${cnf}`, '--batch', '--skip-column-names', ...(db ? [db] : [])], {
        input: sql,
        env: cleanEnv(),
        extendEnv: false,
      });
      return r.stdout;
    };

    await query(
      `CREATE USER 'bk'@'%' IDENTIFIED BY ${mariadbString(bkPassword)};\n` +
        `GRANT ALL PRIVILEGES ON *.* TO 'bk'@'%' WITH GRANT OPTION;\n`,
    );

    return {
      host: '127.0.0.1',
      port,
      socket,
      user: 'root',
      password: '',
      bkUser: 'bk',
      bkPassword,
      dataDir,
      query,
      ...serverLifecycle(server, cleanup),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
