/**
 * The daemon's HTTP endpoints: `/healthz` (200 while the scheduler runs and nothing is overdue,
 * 503 otherwise, with a JSON body saying why) and `/metrics` (Prometheus text format).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';
import { redact } from '../secrets.js';

export interface Endpoints {
  health(): { ok: boolean; body: unknown };
  metrics(): string;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** `127.0.0.1:9464`, `[::1]:9464`, `:9464` (all interfaces) or `9464` (loopback). */
export function parseListen(text: string): ListenAddress {
  const t = text.trim();
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(t) ?? /^([^:]*):(\d+)$/.exec(t) ?? /^()(\d+)$/.exec(t);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new BkError('USAGE', `--listen ${text}: expected host:port, e.g. 127.0.0.1:9464`);
  const host = m[1] !== '' ? m[1]! : t.includes(':') ? '0.0.0.0' : '127.0.0.1';
  return { host, port };
}

export interface HttpListener {
  url: string;
  close(): Promise<void>;
}

export async function startHttpListener(address: ListenAddress, endpoints: Endpoints, logger: Logger): Promise<HttpListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    try {
      if (path === '/healthz') {
        const h = endpoints.health();
        res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : `${redact(JSON.stringify(h.body, null, 2))}\n`);
      } else if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : endpoints.metrics());
      } else {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /healthz or /metrics\n');
      }
    } catch (e) {
      logger.error(`http ${path}: ${(e as Error).message}`, { step: 'http' });
      if (!res.headersSent) res.writeHead(500).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new BkError('USAGE', `cannot listen on ${address.host}:${address.port}: ${e.code ?? e.message}`, { hint: e.code === 'EADDRINUSE' ? 'pick another port with --listen' : undefined })),
    );
    server.listen(address.port, address.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  logger.info(`listening on ${url} (/healthz, /metrics)`, { step: 'http' });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
