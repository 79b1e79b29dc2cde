/**
 * Where a Redis server is and how to log in: the target options (url or host/port/socket, ACL user,
 * password, TLS) normalized once into an endpoint, and turned into what each client needs —
 * redis-cli arguments plus a child environment holding REDISCLI_AUTH (never `-a`), or node:tls
 * options for the RESP client.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { z } from 'zod';
import { BkError } from '../errors.js';
import { registerSecret } from '../secrets.js';
import type { RespConnectOptions } from './redis-resp.js';

export const redisTlsSchema = z
  .object({
    /** CA certificate file to verify the server with (redis-cli --cacert). */
    cacert: z.string().min(1).optional(),
    /** Client certificate and key for mutual TLS (--cert, --key). */
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** Server name for SNI and certificate checks (--sni). */
    sni: z.string().min(1).optional(),
    /** Skip certificate verification (--insecure). Testing only. */
    insecure: z.boolean().optional(),
  })
  .strict();
export type RedisTls = z.infer<typeof redisTlsSchema>;

export const DEFAULT_PORT = 6379;

export interface RedisEndpoint {
  host: string;
  port: number;
  /** Unix socket path; replaces host and port. */
  socket?: string;
  /** ACL user (AUTH user password); undefined for the default user. */
  user?: string;
  password?: string;
  /** TLS settings, or undefined for plain TCP. */
  tls?: RedisTls;
}

export interface EndpointParts {
  url?: string;
  host?: string;
  port?: number;
  socket?: string;
  user?: string;
  password?: string;
  tls?: boolean | RedisTls;
}

/**
 * Builds an endpoint from a url and/or separate keys. The url gives what it has; separate keys
 * fill in the rest, and setting the same thing twice is a config error (which one would win?).
 */
export function resolveEndpoint(parts: EndpointParts, where: string): RedisEndpoint {
  const fromUrl = parts.url !== undefined ? parseRedisUrl(parts.url, `${where}.url`) : {};
  const pick = <K extends keyof EndpointParts>(key: K): EndpointParts[K] => {
    const a = (fromUrl as EndpointParts)[key];
    const b = parts[key];
    if (a !== undefined && b !== undefined) {
      throw new BkError('CONFIG', `${where}: ${key} is set both in url and as ${key}`, { step: 'config', hint: `keep one of them` });
    }
    return a ?? b;
  };
  const socket = pick('socket');
  const host = pick('host');
  if (socket !== undefined && (host !== undefined || parts.port !== undefined)) {
    throw new BkError('CONFIG', `${where}: socket and host/port are both set`, { step: 'config', hint: 'use either a unix socket or host and port' });
  }
  // rediss:// turns TLS on; a tls: object adds its settings; tls: false contradicts rediss://.
  if (fromUrl.tls && parts.tls === false) {
    throw new BkError('CONFIG', `${where}: rediss:// in url but tls: false`, { step: 'config', hint: 'use redis:// for a plain connection' });
  }
  const tlsFlag = parts.tls !== undefined && parts.tls !== false ? parts.tls : fromUrl.tls;
  const password = pick('password');
  registerSecret(password);
  return {
    host: host ?? '127.0.0.1',
    port: pick('port') ?? DEFAULT_PORT,
    ...(socket !== undefined ? { socket } : {}),
    ...(pick('user') !== undefined ? { user: pick('user') } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tlsFlag === true ? { tls: {} } : tlsFlag ? { tls: tlsFlag } : {}),
  };
}

/** redis://[user[:password]@]host[:port][/db] and rediss:// (TLS); also unix:///path/to/socket. */
export function parseRedisUrl(url: string, where: string): EndpointParts {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BkError('CONFIG', `${where}: not a URL`, { step: 'config', hint: 'write redis://[user:password@]host:port or rediss://… for TLS' });
  }
  const scheme = u.protocol.replace(/:$/, '');
  const user = u.username ? decodeURIComponent(u.username) : undefined;
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  registerSecret(password);
  if (u.search) throw new BkError('CONFIG', `${where}: query parameters are not supported`, { step: 'config', hint: 'use the tls: options of the target' });
  if (scheme === 'unix') {
    if (!u.pathname || u.pathname === '/') throw new BkError('CONFIG', `${where}: unix:// needs a socket path`, { step: 'config' });
    return { socket: decodeURIComponent(u.pathname), ...(user ? { user } : {}), ...(password ? { password } : {}) };
  }
  if (scheme !== 'redis' && scheme !== 'rediss') {
    throw new BkError('CONFIG', `${where}: unsupported scheme ${scheme}://`, { step: 'config', hint: 'use redis://, rediss:// (TLS) or unix://' });
  }
  if (u.pathname && u.pathname !== '/' && !/^\/\d+$/.test(u.pathname)) {
    throw new BkError('CONFIG', `${where}: unexpected path ${u.pathname}`, { step: 'config', hint: 'a backup covers every database; leave the /db part out' });
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    ...(host ? { host } : {}),
    ...(u.port ? { port: Number(u.port) } : {}),
    ...(user ? { user } : {}),
    ...(password ? { password } : {}),
    ...(scheme === 'rediss' ? { tls: true } : {}),
  };
}

/**
 * The endpoint for plans, logs and messages: `user@host:port (TLS)`, never the password. Not in
 * URL form on purpose: a configured `url` is registered as a secret as a whole, and a message
 * naming the server by that same string would be redacted to `***`.
 */
export function describeEndpoint(ep: RedisEndpoint): string {
  const user = ep.user ? `${ep.user}@` : '';
  if (ep.socket) return `${user}${ep.socket}`;
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  return `${user}${host}:${ep.port}${ep.tls ? ' (TLS)' : ''}`;
}

/** The endpoint as a URL without the password, for the manifest (ad-hoc restores read it back). */
export function endpointUrl(ep: RedisEndpoint): string {
  if (ep.socket) return `unix://${ep.socket}`;
  const user = ep.user ? `${encodeURIComponent(ep.user)}@` : '';
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  return `${ep.tls ? 'rediss' : 'redis'}://${user}${host}:${ep.port}`;
}

/** Whether files in the server's data dir are files on this machine. */
export function isLocal(ep: RedisEndpoint): boolean {
  return ep.socket !== undefined || ['127.0.0.1', 'localhost', '::1'].includes(ep.host) || /^127\./.test(ep.host);
}

/** Connection arguments for redis-cli. The password is not among them: see cliEnv(). */
export function cliArgs(ep: RedisEndpoint): string[] {
  const args = ep.socket ? ['-s', ep.socket] : ['-h', ep.host, '-p', String(ep.port)];
  if (ep.user) args.push('--user', ep.user);
  if (ep.tls) {
    args.push('--tls');
    if (ep.tls.cacert) args.push('--cacert', ep.tls.cacert);
    if (ep.tls.cert) args.push('--cert', ep.tls.cert);
    if (ep.tls.key) args.push('--key', ep.tls.key);
    if (ep.tls.sni) args.push('--sni', ep.tls.sni);
    if (ep.tls.insecure) args.push('--insecure');
  }
  return args;
}

/**
 * Environment for a redis-cli child: REDISCLI_AUTH holds the password (read by redis-cli ≥ 5.0.3
 * when no -a is given). Without a password the variable is removed, so one inherited from bk's
 * own environment cannot log in as someone else. Same-uid processes and root can read a child's
 * environment; that is the documented trade-off (research/semantics.md §5.3).
 */
export function cliEnv(ep: RedisEndpoint): NodeJS.ProcessEnv {
  return { REDISCLI_AUTH: ep.password };
}

/** Connection options for the RESP client (TLS files read here). */
export function respOptions(ep: RedisEndpoint, signal?: AbortSignal): RespConnectOptions {
  const base = ep.socket ? { path: ep.socket } : { host: ep.host, port: ep.port };
  return { ...base, ...(ep.tls ? { tls: tlsOptions(ep) } : {}), ...(signal ? { signal } : {}) };
}

function tlsOptions(ep: RedisEndpoint): ConnectionOptions {
  const t = ep.tls ?? {};
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new BkError('CONFIG', `tls.${what}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { step: 'config' });
    }
  };
  const servername = t.sni ?? (/^[\d.]+$|:/.test(ep.host) ? undefined : ep.host);
  return {
    ...(t.cacert ? { ca: read(t.cacert, 'cacert') } : {}),
    ...(t.cert ? { cert: read(t.cert, 'cert') } : {}),
    ...(t.key ? { key: read(t.key, 'key') } : {}),
    ...(servername ? { servername } : {}),
    ...(t.insecure ? { rejectUnauthorized: false } : {}),
  };
}
