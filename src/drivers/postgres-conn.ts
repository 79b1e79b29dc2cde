/**
 * How bk reaches a PostgreSQL server: libpq connection keywords (host, port, user, dbname, sslmode,
 * …) taken from a postgres:// URL and/or single options, handed to every client tool as one
 * `--dbname=<conninfo>` argument — which never holds the password — and the password handed over
 * in a 0600 passfile named by PGPASSFILE in the child's environment only (libpq's recommended way;
 * research/semantics.md §5.3). Whatever is not given falls back to libpq's own defaults and
 * environment (PGHOST, PGUSER, PGDATABASE, PGPASSWORD, ~/.pgpass), so ad-hoc use works unchanged.
 */
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BkError } from '../errors.js';
import { makeOwnedDir } from '../util/owned-dir.js';
import { registerSecret } from '../secrets.js';

/** libpq connection keywords, without `password` (which travels in a passfile). */
export type ConnParams = Record<string, string>;

export interface PgConnection {
  params: ConnParams;
  password?: string;
}

export const isPostgresUrl = (s: string): boolean => /^postgres(?:ql)?:\/\//i.test(s);

const decode = (s: string, what: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new BkError('CONFIG', `postgres URL: ${what} is not valid percent-encoding`, { step: 'config', hint: 'percent-encode special characters (e.g. @ as %40)' });
  }
};

/**
 * Parses `postgres[ql]://[user[:password]@][host[:port][,host[:port]…]][/dbname][?keyword=value…]`
 * the way libpq does (multiple hosts, [v6] addresses, a socket directory as %2F-encoded host or
 * ?host=/dir). The password, from the userinfo or ?password=, is returned apart and registered for
 * redaction.
 */
export function parsePostgresUrl(url: string): PgConnection {
  const m = /^postgres(?:ql)?:\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/i.exec(url.trim());
  if (!m) {
    throw new BkError('CONFIG', 'not a postgres URL', { step: 'config', hint: 'use postgres://user@host:5432/database (the password via password: or PGPASSWORD)' });
  }
  const [, userinfo, hostspec, dbname, query] = m;
  const params: ConnParams = {};
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), 'user');
    if (user) params.user = user;
    if (colon >= 0) password = decode(userinfo.slice(colon + 1), 'password');
  }
  if (hostspec) {
    const hosts: string[] = [];
    const ports: string[] = [];
    for (const part of hostspec.split(',')) {
      const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(part);
      if (!hp) throw new BkError('CONFIG', `postgres URL: cannot read host "${part}"`, { step: 'config' });
      hosts.push(decode(hp[1]!.replace(/^\[(.*)\]$/, '$1'), 'host'));
      ports.push(hp[2] ?? '');
    }
    if (hosts.some(Boolean)) params.host = hosts.join(',');
    if (ports.some(Boolean)) params.port = ports.join(',');
  }
  if (dbname) params.dbname = decode(dbname, 'database');
  for (const pair of (query ?? '').split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    const key = decode(eq < 0 ? pair : pair.slice(0, eq), 'parameter');
    const value = decode(eq < 0 ? '' : pair.slice(eq + 1).replace(/\+/g, ' '), key);
    if (key === 'password') password = value;
    // libpq accepts the JDBC spelling ssl=true as sslmode=require.
    else if (key === 'ssl' && value === 'true') params.sslmode = 'require';
    else params[key] = value;
  }
  if (password !== undefined) registerSecret(password);
  return { params, ...(password !== undefined ? { password } : {}) };
}

/** A libpq keyword/value connection string; values with spaces, quotes or backslashes are quoted. */
export function conninfo(params: ConnParams): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${/^[^\s'\\]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`}`)
    .join(' ');
}

/** The connection string for one database of the server (`dbname` replaced). */
export function conninfoFor(conn: PgConnection, dbname?: string): string {
  const params = { ...conn.params };
  if (dbname !== undefined) params.dbname = dbname;
  return conninfo(params);
}

/** host:port for messages, with libpq's defaults spelled out. */
export function describeServer(params: ConnParams, env: NodeJS.ProcessEnv = process.env): string {
  const host = params.host ?? env.PGHOST ?? 'local socket';
  const port = params.port ?? env.PGPORT ?? '5432';
  return `${host}:${port}`;
}

/**
 * A child environment that carries the password, and its cleanup. With a password: a 0600 passfile
 * in a private 0700 directory, PGPASSFILE pointing at it, and every variable holding the password
 * removed (PGPASSWORD, which libpq would prefer over the file, or the one the config read).
 * Without one: the inherited environment, so ~/.pgpass and the like still work.
 * bk's own process.env is never changed.
 */
export interface ChildCredentials {
  env: NodeJS.ProcessEnv;
  dispose(): Promise<void>;
}

export async function childCredentials(password: string | undefined, base: NodeJS.ProcessEnv = process.env): Promise<ChildCredentials> {
  const env: NodeJS.ProcessEnv = { ...base };
  if (password === undefined) return { env, dispose: async () => undefined };
  // Neither PGPASSWORD (libpq prefers it over the file) nor the variable the config took the
  // password from (password: ${DB_PASSWORD}) reaches the tool.
  delete env.PGPASSWORD;
  for (const [k, v] of Object.entries(env)) if (v === password) delete env[k];
  // A passfile line cannot hold a newline; such a password can only travel in PGPASSWORD.
  if (/[\r\n]/.test(password)) return { env: { ...env, PGPASSWORD: password }, dispose: async () => undefined };
  // Owned: a passfile a killed bk left behind is removed by the next run that makes one.
  const dir = await makeOwnedDir(tmpdir(), 'bk-pgpass');
  const file = join(dir, 'pgpass');
  // host:port:database:user:password, "\" and ":" escaped; wildcards so every connection of the
  // operation (maintenance database, --to database) finds it.
  await writeFile(file, `*:*:*:*:${password.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`, { mode: 0o600, flag: 'wx' });
  env.PGPASSFILE = file;
  let disposed = false;
  return {
    env,
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
