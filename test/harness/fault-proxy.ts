import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/** Which body a drop/stall applies to. */
export type FaultPhase = 'request' | 'response';

/**
 * A fault injected into one proxied request.
 * - fail:  answer `status` with an S3-style XML error without forwarding (the request body is read first).
 * - drop:  destroy the client connection after `afterBytes` of the request (or response) body.
 * - stall: pause forwarding for `ms` after `afterBytes` of the request (or response) body.
 * `afterBytes` (default 16 KiB) is capped at body length − 1, so even a small body is cut or
 * stalled before it is complete; with no body the fault hits before anything is forwarded
 * (request phase) or before the response head (response phase).
 */
export type Fault =
  | { type: 'fail'; status: number; code?: string; message?: string; body?: string }
  | { type: 'drop'; phase?: FaultPhase; afterBytes?: number }
  | { type: 'stall'; ms: number; phase?: FaultPhase; afterBytes?: number };

/** What a rule sees of an incoming request. */
export interface ProxiedRequest {
  method: string;
  /** Path without the query string, e.g. /backups/db/2026.sql.zst */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

export type FaultRule = (req: ProxiedRequest) => Fault | undefined;

export interface ProxyLogEntry {
  method: string;
  url: string;
  fault?: Fault['type'];
  /** Status sent to the client; undefined if the connection was dropped or the client aborted. */
  status?: number;
}

export interface ProxyStats {
  total: number;
  byMethod: Record<string, number>;
  faults: number;
}

export interface FaultProxy {
  readonly endpoint: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Requests seen so far (a snapshot). */
  readonly stats: ProxyStats;
  /** Every request in arrival order (live array). */
  readonly log: readonly ProxyLogEntry[];
  /** Fail the next n requests. Default status 503 (code SlowDown, as S3 sends it). */
  failNext(n: number, opts?: { status?: number; code?: string; message?: string; body?: string }): void;
  /** Drop the connection of the next n requests mid-body. */
  dropNext(n: number, opts?: { phase?: FaultPhase; afterBytes?: number }): void;
  /** Stall the next n requests mid-body for ms. */
  stallNext(n: number, ms: number, opts?: { phase?: FaultPhase; afterBytes?: number }): void;
  /**
   * Consulted for every request before the queue; a returned fault is applied and the queue is
   * left alone. Keep your own counter in the closure to fault only the first k matches.
   */
  setRule(rule: FaultRule | undefined): void;
  /** Clear queue, rule, stats and log. */
  reset(): void;
  stop(): Promise<void>;
}

const DEFAULT_AFTER_BYTES = 16 * 1024;

// Hop-by-hop headers (RFC 9110 §7.6.1) plus `expect`: node answers 100-continue itself, and the
// AWS SDK does not sign it.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

function forwardHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

const DEFAULT_CODES: Record<number, string> = {
  400: 'BadRequest',
  403: 'AccessDenied',
  404: 'NoSuchKey',
  500: 'InternalError',
  502: 'BadGateway',
  503: 'SlowDown',
};

function s3ErrorXml(code: string, message: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId></Error>`
  );
}

/** Write one chunk and wait until it has been handed to the OS (or the stream failed). */
function write(dst: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    dst.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Copy src to dst (without ending dst). When `hook` is set, call it once `at` bytes have been
 * copied (or at the end of src if it is shorter). Returns false if the hook said to stop.
 */
async function pump(src: Readable, dst: Writable, hook?: { at: number; fire: () => Promise<boolean> }): Promise<boolean> {
  let copied = 0;
  let fired = false;
  const fire = async (): Promise<boolean> => {
    fired = true;
    return hook ? hook.fire() : true;
  };
  if (hook && hook.at <= 0 && !(await fire())) return false;
  for await (const data of src) {
    let chunk = data as Buffer;
    if (hook && !fired && copied + chunk.length > hook.at) {
      const head = chunk.subarray(0, hook.at - copied);
      if (head.length > 0) await write(dst, head);
      copied += head.length;
      chunk = chunk.subarray(head.length);
      if (!(await fire())) return false;
    }
    if (chunk.length > 0) await write(dst, chunk);
    copied += chunk.length;
  }
  if (hook && !fired && !(await fire())) return false;
  return true;
}

/** Byte offset at which a drop/stall fires for a body with the given content-length header. */
function triggerOffset(fault: { afterBytes?: number }, contentLength: string | undefined): number {
  const want = fault.afterBytes ?? DEFAULT_AFTER_BYTES;
  const len = contentLength === undefined ? NaN : Number(contentLength);
  // A body delivered in full is a complete message to the peer, so always stop before the last byte.
  return Number.isFinite(len) ? Math.max(0, Math.min(want, len - 1)) : want;
}

/**
 * Start an HTTP proxy on a free port that forwards every request to `target` (streaming bodies,
 * Host header untouched so SigV4 signatures stay valid) unless a queued fault or the rule says
 * otherwise. Point the S3 client's endpoint at `proxy.endpoint`.
 */
export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const agent = new Agent({ keepAlive: true });
  let queue: Fault[] = [];
  let rule: FaultRule | undefined;
  let stats: ProxyStats = { total: 0, byMethod: {}, faults: 0 };
  let log: ProxyLogEntry[] = [];
  let seq = 0;

  const nextFault = (req: ProxiedRequest): Fault | undefined => rule?.(req) ?? queue.shift();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const fault = nextFault({ method, path: url.pathname, query: url.searchParams, headers: req.headers });
    const entry: ProxyLogEntry = { method, url: req.url ?? '/', ...(fault ? { fault: fault.type } : {}) };
    log.push(entry);
    stats.total += 1;
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;
    if (fault) stats.faults += 1;
    res.on('finish', () => (entry.status = res.statusCode));

    const dropClient = (): false => {
      req.socket.destroy();
      return false;
    };

    if (fault?.type === 'fail') {
      // Consume the body first so the client is not left writing into a closed connection.
      req.resume();
      await new Promise<void>((resolve, reject) => req.once('end', resolve).once('error', reject));
      const code = fault.code ?? DEFAULT_CODES[fault.status] ?? 'InjectedFault';
      const requestId = `fault-proxy-${++seq}`;
      const body = fault.body ?? s3ErrorXml(code, fault.message ?? 'Injected by the test fault proxy', requestId);
      res.writeHead(fault.status, {
        'content-type': 'application/xml',
        'content-length': Buffer.byteLength(body),
        'x-amz-request-id': requestId,
      });
      res.end(body);
      return;
    }

    const reqFault = fault && (fault.phase ?? 'request') === 'request' ? fault : undefined;
    const resFault = fault && fault.phase === 'response' ? fault : undefined;
    const faultHook = (f: Exclude<Fault, { type: 'fail' }>, contentLength: string | undefined) => ({
      at: triggerOffset(f, contentLength),
      fire: async (): Promise<boolean> => {
        if (f.type === 'drop') return dropClient();
        await sleep(f.ms);
        return true;
      },
    });

    const upstream = httpRequest({
      host: target.host,
      port: target.port,
      method,
      path: req.url,
      headers: forwardHeaders(req.headers),
      agent,
    });

    const responded = new Promise<void>((resolve, reject) => {
      upstream.once('error', reject);
      upstream.once('response', (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.statusMessage, forwardHeaders(ures.headers));
        const hook = resFault ? faultHook(resFault, ures.headers['content-length']) : undefined;
        pump(ures, res, hook).then((complete) => {
          if (complete) res.end();
          else ures.destroy();
          resolve();
        }, reject);
      });
    });
    // Awaited only on the normal path; a drop or early failure must not become an unhandled rejection.
    responded.catch(() => undefined);

    try {
      const hook = reqFault ? faultHook(reqFault, req.headers['content-length']) : undefined;
      if (!(await pump(req, upstream, hook))) {
        upstream.destroy();
        return;
      }
      upstream.end();
      await responded;
    } catch (err) {
      if (!res.headersSent && !res.destroyed) {
        const body = s3ErrorXml('BadGateway', `fault proxy: ${(err as Error).message}`, `fault-proxy-${++seq}`);
        res.writeHead(502, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.destroy();
      }
      upstream.destroy();
    }
  }

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  const enqueue = (n: number, f: Fault): void => {
    for (let i = 0; i < n; i++) queue.push({ ...f });
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    get stats() {
      return { ...stats, byMethod: { ...stats.byMethod } };
    },
    get log() {
      return log;
    },
    failNext: (n, o = {}) => enqueue(n, { type: 'fail', ...o, status: o.status ?? 503 }),
    dropNext: (n, o = {}) => enqueue(n, { type: 'drop', ...o }),
    stallNext: (n, ms, o = {}) => enqueue(n, { type: 'stall', ms, ...o }),
    setRule: (r) => {
      rule = r;
    },
    reset: () => {
      queue = [];
      rule = undefined;
      stats = { total: 0, byMethod: {}, faults: 0 };
      log = [];
    },
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
