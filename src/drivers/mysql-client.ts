/**
 * Talking to MySQL and MariaDB through their standard client tools: which tools are installed
 * (mariadb-dump/mariadb or mysqldump/mysql), the private option file that carries the connection
 * and the password, and small queries through the client in batch mode.
 *
 * The password never reaches argv or a child's environment: it is written to a 0600
 * `--defaults-extra-file` in a private 0700 directory (on tmpfs when /dev/shm exists) that is
 * removed when the tool has exited (research/semantics.md §5.3). MYSQL_PWD and BK_MYSQL_PASSWORD
 * are removed from every child's environment for the same reason.
 */
import { accessSync, constants } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { makeOwnedDir } from '../util/owned-dir.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BkError } from '../errors.js';
import { execa } from 'execa';
import { childEnv, runTool, type ToolSpec } from '../util/exec.js';
import { onPath } from '../util/on-path.js';

/** Children get bk's environment without secrets (MYSQL_PWD, BK_MYSQL_PASSWORD, ${VAR} passwords). */
export { childEnv };

export type Flavor = 'mariadb' | 'mysql';

export interface ClientTool {
  /** Name as found on PATH, e.g. "mariadb-dump". */
  name: string;
  path: string;
  /** First line of --version. */
  versionLine: string;
  /** Distribution version, e.g. [10, 11, 19]. */
  version: [number, number, number];
  flavor: Flavor;
  spec: ToolSpec;
}

export interface SslOptions {
  ssl?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  verifyServerCert?: boolean;
}

/** Where and as whom to connect. Unset fields fall back to the client's own defaults (option files, MYSQL_HOST, …). */
export interface Connection {
  host?: string;
  port?: number;
  socket?: string;
  user?: string;
  password?: string;
  ssl?: SslOptions;
}

const INSTALL = 'install the MariaDB or MySQL client tools (apt-get install mariadb-client, or mysql-client)';
const DUMP_NAMES = ['mariadb-dump', 'mysqldump'];
const CLIENT_NAMES = ['mariadb', 'mysql'];

const found = new Map<string, Promise<ClientTool>>();

/** The dump tool (mariadb-dump, else mysqldump) or the client (mariadb, else mysql), with its version. */
export function findTool(kind: 'dump' | 'client'): Promise<ClientTool> {
  let p = found.get(kind);
  if (!p) {
    p = locate(kind);
    found.set(kind, p);
    p.catch(() => found.delete(kind));
  }
  return p;
}

async function locate(kind: 'dump' | 'client'): Promise<ClientTool> {
  const names = kind === 'dump' ? DUMP_NAMES : CLIENT_NAMES;
  const path = onPath(names);
  if (!path) {
    throw new BkError('TOOL_MISSING', `${names.join(' or ')} not found`, { hint: INSTALL });
  }
  const name = path.slice(path.lastIndexOf('/') + 1);
  const versionLine = await versionOf(path);
  return { name, path, versionLine, version: parseVersion(versionLine), flavor: /mariadb/i.test(versionLine) ? 'mariadb' : 'mysql', spec: { bin: path, install: INSTALL } };
}

/** First line of `--version`, run with childEnv() like every other call. */
async function versionOf(path: string): Promise<string> {
  const res = await execa(path, ['--version'], { env: childEnv(), extendEnv: false, reject: false, timeout: 10_000, stdin: 'ignore' });
  return `${res.stdout || res.stderr}`.split('\n')[0]?.trim() ?? '';
}

/**
 * "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, …" → 10.11.19; "mariadb-dump from 11.4.2-MariaDB, client 10.19" → 11.4.2;
 * "mysqldump  Ver 8.0.36 for Linux" → 8.0.36; "mysqldump  Ver 10.13 Distrib 5.7.44, for Linux" → 5.7.44.
 */
export function parseVersion(line: string): [number, number, number] {
  const m = /(?:Distrib|from)\s+(\d+)\.(\d+)\.(\d+)/.exec(line) ?? /Ver\s+(\d+)\.(\d+)\.(\d+)/.exec(line);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
}

export function versionAtLeast(v: readonly number[], ...min: number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  }
  return true;
}

/** A value in an option file: double-quoted, with the escapes the option-file parser understands. */
export function optionValue(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}

/** The [client] group for a connection; read by mysqldump, mysql and their MariaDB names alike. */
export function optionFileText(conn: Connection): string {
  const lines = ['[client]'];
  if (conn.user !== undefined) lines.push(`user=${optionValue(conn.user)}`);
  if (conn.password !== undefined) lines.push(`password=${optionValue(conn.password)}`);
  if (conn.socket !== undefined) {
    lines.push(`socket=${optionValue(conn.socket)}`, 'protocol=SOCKET');
  } else if (conn.host !== undefined) {
    lines.push(`host=${optionValue(conn.host)}`);
    // "localhost" means the socket to these clients, even with a port; a port means TCP.
    if (conn.host !== 'localhost' || conn.port !== undefined) lines.push('protocol=TCP');
  }
  if (conn.port !== undefined) lines.push(`port=${conn.port}`);
  return `${lines.join('\n')}\n`;
}

export interface OptionFile {
  path: string;
  /** Removes the file and its directory; safe to call more than once. */
  dispose(): Promise<void>;
}

function privateTmpBase(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/** Writes the connection into a 0600 file in a fresh 0700 directory. */
export async function writeOptionFile(conn: Connection): Promise<OptionFile> {
  // Owned: an option file (with the password) a killed bk left is removed by the next run.
  const dir = await makeOwnedDir(privateTmpBase(), 'bk-mysql');
  const path = join(dir, 'client.cnf');
  let disposed = false;
  const dispose = async () => {
    if (disposed) return;
    disposed = true;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await writeFile(path, optionFileText(conn), { mode: 0o600, flag: 'wx' });
  } catch (e) {
    await dispose();
    throw e;
  }
  return { path, dispose };
}

export async function withOptionFile<T>(conn: Connection, fn: (file: string) => Promise<T>): Promise<T> {
  const file = await writeOptionFile(conn);
  try {
    return await fn(file.path);
  } finally {
    await file.dispose();
  }
}

/**
 * Arguments every tool gets first: the option file (it must be the very first argument), then TLS
 * flags, which differ between the MariaDB and MySQL clients.
 */
export function connectionArgs(file: string, tool: ClientTool, ssl: SslOptions | undefined): string[] {
  const args = [`--defaults-extra-file=${file}`];
  if (!ssl) return args;
  if (ssl.ca) args.push(`--ssl-ca=${ssl.ca}`);
  if (ssl.cert) args.push(`--ssl-cert=${ssl.cert}`);
  if (ssl.key) args.push(`--ssl-key=${ssl.key}`);
  const wanted = ssl.ssl === true || ssl.ca !== undefined || ssl.cert !== undefined || ssl.verifyServerCert === true;
  if (tool.flavor === 'mariadb') {
    if (wanted) args.push('--ssl');
    if (ssl.verifyServerCert === true) args.push('--ssl-verify-server-cert');
    if (ssl.ssl === false) args.push('--skip-ssl');
  } else if (ssl.verifyServerCert === true) {
    args.push('--ssl-mode=VERIFY_IDENTITY');
  } else if (wanted) {
    args.push('--ssl-mode=REQUIRED');
  } else if (ssl.ssl === false) {
    args.push('--ssl-mode=DISABLED');
  }
  return args;
}

/** A backtick-quoted identifier. */
export function ident(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** A string literal safe under any sql_mode (no backslash escapes needed: they are doubled too). */
export function literal(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Splits --batch output into rows of fields, undoing the client's escapes (\t \n \\ \0). */
export function parseBatch(out: string): string[][] {
  if (out === '') return [];
  return out.split('\n').map((line) =>
    line.split('\t').map((f) => f.replace(/\\([\\tn0])/g, (_m, c: string) => ({ '\\': '\\', t: '\t', n: '\n', '0': '\0' })[c]!)),
  );
}

const SESSION_SQL_MODE = "SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','));";

export interface QueryContext {
  target?: string;
  step: string;
  signal?: AbortSignal;
  database?: string;
  /** Keep going after an error (the client's --force); the caller checks what came back. */
  force?: boolean;
}

/** Runs SQL (via stdin) with the client in batch mode; a failure becomes a BkError with a fix. */
export async function runQuery(tool: ClientTool, file: string, ssl: SslOptions | undefined, sql: string, ctx: QueryContext): Promise<string[][]> {
  const args = [
    ...connectionArgs(file, tool, ssl),
    '--batch',
    '--skip-column-names',
    '--default-character-set=utf8mb4',
    ...(ctx.force ? ['--force'] : []),
    ...(ctx.database !== undefined ? [`--database=${ctx.database}`] : []),
  ];
  try {
    // literal() escapes backslashes, which is only right without NO_BACKSLASH_ESCAPES.
    const input = `${SESSION_SQL_MODE}\n${sql}`;
    const out = await runTool(tool.spec, args, { target: ctx.target, step: ctx.step, signal: ctx.signal, input, env: childEnv() }, { extendEnv: false, reject: !ctx.force });
    return parseBatch(out);
  } catch (e) {
    throw withMysqlHint(e, ctx.target);
  }
}

/** Adds the fix for well-known client errors (wrong password, server down, unknown database). */
export function withMysqlHint(e: unknown, target: string | undefined): unknown {
  if (!(e instanceof BkError) || e.hint || !e.toolOutput) return e;
  const hint = mysqlHint(e.toolOutput);
  if (!hint) return e;
  const first = /ERROR \d+ \([^)]*\)(?: at line \d+)?: (.*)|Got error: (\d+: .*)/.exec(e.toolOutput);
  const what = first ? (first[1] ?? first[2])!.trim() : undefined;
  return new BkError(e.code, what ? `${e.message}: ${what}` : e.message, { target: e.target ?? target, step: e.step, hint, toolOutput: e.toolOutput, cause: e.cause });
}

export function mysqlHint(stderr: string): string | undefined {
  if (/\b1045\b|Access denied for user/.test(stderr)) return 'check user and password (password, password_file, or BK_MYSQL_PASSWORD for ad-hoc use)';
  if (/\b(2002|2003|2013|2006)\b|Can't connect|Lost connection|server has gone away/.test(stderr)) return 'check that the server is running and host, port or socket are right';
  if (/\b2005\b|Unknown (?:server|MySQL server) host/.test(stderr)) return 'check the host name';
  if (/\b1049\b|Unknown database/.test(stderr)) return 'check the database name (or create it)';
  if (/\b(1044|1142|1227|1370)\b|command denied|Access denied/.test(stderr)) return 'grant the user the privileges listed in docs/drivers/mysql.md';
  if (/\b2026\b|SSL/.test(stderr)) return 'check the ssl options (ssl_ca, ssl_cert, ssl_key) and that the server has TLS enabled';
  return undefined;
}
