// The storage contract against s3rver, plus what only S3 has: prefixes, check() diagnostics,
// part sizing, `s3://` repos and option validation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../src/storage/s3.js';
import { startS3, type S3Server } from '../harness/index.js';
import { describeStorage } from './conformance.js';

let s3: S3Server;
const make = (prefix = 'conf', extra: Record<string, unknown> = {}) =>
  new S3Storage('offsite', {
    type: 's3',
    bucket: 'backups',
    prefix,
    endpoint: s3.endpoint,
    access_key_id: s3.accessKeyId,
    secret_access_key: s3.secretAccessKey,
    part_size: 5 * 1024 * 1024,
    ...extra,
  } as never);

describeStorage(
  's3',
  async () => {
    s3 = await startS3({ buckets: ['backups'] });
    return make();
  },
  { largeBytes: 12 * 1024 * 1024, teardown: async () => s3?.stop() },
);

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { resolveConfig } from '../../src/config/resolve.js';
import { StorageError } from '../../src/storage/storage.js';
import { S3Client } from '@aws-sdk/client-s3';
import { choosePartSize, chooseQueueSize, parseSize, s3ClientConfig, s3OptionsFromRepo, s3OptionsSchema } from '../../src/storage/s3-config.js';
import { uploadStream } from '../../src/storage/s3-multipart.js';
import { startFaultProxy, type FaultProxy, type ProxyLogEntry } from '../harness/index.js';
import { generatedBody } from './conformance.js';

const MiB = 1024 * 1024;

async function sha256Of(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return h.digest('hex');
}

describe('S3Storage against s3rver behind a fault proxy', () => {
  let proxy: FaultProxy;
  let server: S3Server;
  const viaProxy = (extra: Record<string, unknown> = {}) =>
    new S3Storage(
      'offsite',
      s3OptionsSchema.parse({
        type: 's3',
        bucket: 'backups',
        prefix: 'proxied',
        endpoint: proxy.endpoint,
        access_key_id: 'S3RVER',
        secret_access_key: 'S3RVER',
        part_size: '5MiB',
        ...extra,
      }),
    );
  const kinds = (log: readonly ProxyLogEntry[]) =>
    log.map((e) => {
      const q = e.url.split('?')[1] ?? '';
      if (e.method === 'POST' && q.startsWith('uploads')) return 'create';
      if (e.method === 'PUT' && q.includes('partNumber')) return 'part';
      if (e.method === 'POST' && q.includes('uploadId')) return 'complete';
      if (e.method === 'DELETE' && q.includes('uploadId')) return 'abort';
      return `${e.method}`;
    });

  beforeAll(async () => {
    server = await startS3({ buckets: ['backups'] });
    proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port });
  });
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  it('uploads in parts, completes, and confirms the size', async () => {
    proxy.reset();
    const st = viaProxy();
    const body = generatedBody(12 * MiB);
    expect((await st.write('t/multi.bin', body.stream)).size).toBe(12 * MiB);
    expect(kinds(proxy.log)).toEqual(['create', 'part', 'part', 'part', 'complete', 'HEAD']);
    expect(await sha256Of(await st.read('t/multi.bin'))).toBe(body.sha256());
  });

  it('a body of exactly one part is one PutObject; one byte more is a multipart upload of two', async () => {
    const st = viaProxy();
    for (const [size, expected] of [
      [5 * MiB, ['PUT', 'HEAD']],
      [5 * MiB + 1, ['create', 'part', 'part', 'complete', 'HEAD']],
      [0, ['PUT', 'HEAD']],
    ] as const) {
      proxy.reset();
      const body = generatedBody(size);
      expect((await st.write(`t/edge-${size}.bin`, body.stream)).size).toBe(size);
      expect(kinds(proxy.log), `${size} bytes`).toEqual(expected);
      expect(await sha256Of(await st.read(`t/edge-${size}.bin`))).toBe(body.sha256());
    }
  });

  it('part buffers are reused: 6 parts through 2 in flight arrive whole and in order', async () => {
    proxy.reset();
    const st = viaProxy({ queue_size: 2 });
    // Chunks that straddle part boundaries, so every copy into a reused buffer is exercised.
    const body = generatedBody(28 * MiB, { chunk: 100_003 });
    expect((await st.write('t/reused.bin', body.stream)).size).toBe(28 * MiB);
    expect(kinds(proxy.log).filter((k) => k === 'part')).toHaveLength(6);
    expect(await sha256Of(await st.read('t/reused.bin'))).toBe(body.sha256());
  });

  it('an object that outgrows the part limit fails before its last part, and its upload is aborted', async () => {
    proxy.reset();
    const options = s3OptionsSchema.parse({ type: 's3', bucket: 'backups', endpoint: proxy.endpoint, access_key_id: 'S3RVER', secret_access_key: 'S3RVER' });
    const sent = { sizes: new Map<number, number>(), completing: false };
    const err = await uploadStream(generatedBody(12 * MiB).stream, {
      client: new S3Client(s3ClientConfig(options, {})),
      params: { Bucket: 'backups', Key: 'proxied/t/too-many.bin' },
      partSize: 5 * MiB,
      queueSize: 2,
      signal: new AbortController().signal,
      sent,
      maxParts: 2,
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/outgrew 2 parts of 5 MiB; set a larger part_size/);
    expect(kinds(proxy.log)).toEqual(['create', 'part', 'abort']);
    expect(await viaProxy().stat('t/too-many.bin')).toBeUndefined();
  });

  it('a failing body: no CompleteMultipartUpload, the abort is awaited, and the original error is reported', async () => {
    proxy.reset();
    // The abort itself fails (as on stores without AbortMultipartUpload); that must not replace the cause.
    proxy.setRule((r) => (r.method === 'DELETE' && r.query.has('uploadId') ? { type: 'fail', status: 405, code: 'MethodNotAllowed' } : undefined));
    const st = viaProxy();
    const err = await st.write('t/fail.bin', generatedBody(12 * MiB, { failAt: 7 * MiB }).stream).catch((e: unknown) => e);
    proxy.setRule(undefined);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toContain('source failed mid-stream');
    expect((err as Error).message).not.toMatch(/MethodNotAllowed/);
    const k = kinds(proxy.log);
    expect(k).toContain('abort');
    expect(k).not.toContain('complete');
    // The abort request had been answered before write() rejected.
    expect(proxy.log.find((e) => kinds([e])[0] === 'abort')?.status).toBe(405);
    expect(await st.stat('t/fail.bin')).toBeUndefined();
  });

  it('an abort signal cancels parts in flight and waits for AbortMultipartUpload', async () => {
    proxy.reset();
    const st = viaProxy();
    const ac = new AbortController();
    // Slow parts down so the interrupt lands while they are in flight.
    proxy.setRule((r) => (r.method === 'PUT' && r.query.has('partNumber') ? { type: 'stall', ms: 30_000, afterBytes: 1024 } : undefined));
    const started = Date.now();
    setTimeout(() => ac.abort(new Error('SIGINT')), 500);
    const err = await st.write('t/interrupted.bin', generatedBody(12 * MiB).stream, { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as StorageError).kind).toBe('aborted');
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(proxy.log.find((e) => kinds([e])[0] === 'abort')?.status).toBe(204);
    expect(kinds(proxy.log)).not.toContain('complete');
    proxy.setRule(undefined);
    expect(await st.stat('t/interrupted.bin')).toBeUndefined();
  });

  it('a CompleteMultipartUpload whose answer is lost: the retry finds the upload gone, the object is whole', async () => {
    proxy.reset();
    let lost = 0;
    proxy.setRule((r) => (r.method === 'POST' && r.query.has('uploadId') && lost++ === 0 ? { type: 'drop', phase: 'response', afterBytes: 0 } : undefined));
    const st = viaProxy();
    const body = generatedBody(11 * MiB);
    expect((await st.write('t/lost-answer.bin', body.stream)).size).toBe(11 * MiB);
    proxy.setRule(undefined);
    // S3 answers the retry with NoSuchUpload; s3rver with 500s, which the SDK retries as well.
    expect(kinds(proxy.log).filter((k) => k === 'complete').length).toBeGreaterThanOrEqual(2);
    expect(await sha256Of(await st.read('t/lost-answer.bin'))).toBe(body.sha256());
  });

  it('reads small objects with one plain signed GET, and asks the SDK when that does not answer 200', async () => {
    const st = viaProxy();
    await st.writeBytes('t/small.json', Buffer.from('{"a":1}'));
    // Each GET as [sent by the SDK, status]; the SDK names itself in the user agent.
    const read = async (key: string, fault?: number) => {
      proxy.reset();
      const agents: string[] = [];
      proxy.setRule((r) => (r.method === 'GET' ? void agents.push(String(r.headers['user-agent'] ?? '')) : undefined));
      if (fault) proxy.failNext(1, { status: fault });
      const out = await st.readBytes(key).catch((e: unknown) => e);
      const gets = proxy.log.filter((e) => e.method === 'GET').map((e, i) => [/aws-sdk-js/.test(agents[i] ?? ''), e.status]);
      return { out, gets };
    };

    let r = await read('t/small.json');
    expect(String(r.out)).toBe('{"a":1}');
    expect(r.gets).toEqual([[false, 200]]);

    // A missing key: the SDK's answer explains it; the plain way stays in use.
    r = await read('t/missing.json');
    expect((r.out as StorageError).kind).toBe('not-found');
    expect(r.gets).toEqual([[false, 404], [true, 404]]);
    expect((await read('t/small.json')).gets).toEqual([[false, 200]]);

    // Any other failure: the SDK reads it (and would retry), and is used alone from then on.
    r = await read('t/small.json', 503);
    expect(String(r.out)).toBe('{"a":1}');
    expect(r.gets).toEqual([[false, 503], [true, 200]]);
    r = await read('t/small.json');
    expect(String(r.out)).toBe('{"a":1}');
    expect(r.gets).toEqual([[true, 200]]);
  });

  it('retries throttling and 5xx answers', async () => {
    proxy.reset();
    const st = viaProxy();
    proxy.failNext(2, { status: 503 });
    await st.writeBytes('t/retried.json', Buffer.from('{}'));
    proxy.failNext(1, { status: 500 });
    expect((await st.readBytes('t/retried.json')).toString()).toBe('{}');
    expect(proxy.stats.faults).toBe(3);
  });

  it('does not retry access denied, and says what to fix', async () => {
    proxy.reset();
    const st = viaProxy();
    proxy.failNext(1, { status: 403, code: 'AccessDenied' });
    const err = (await st.writeBytes('t/denied.json', Buffer.from('{}')).catch((e: unknown) => e)) as StorageError;
    expect(err.kind).toBe('permission');
    expect(err.hint).toMatch(/s3:PutObject/);
    expect(proxy.stats.total).toBe(1);
  });

  it('a download whose connection drops mid-body resumes with a ranged GET', async () => {
    const st = viaProxy();
    const body = generatedBody(6 * MiB);
    await st.write('t/resume.bin', body.stream);
    proxy.reset();
    let drops = 0;
    proxy.setRule((r) => (r.method === 'GET' && r.path.endsWith('/resume.bin') && drops++ < 2 ? { type: 'drop', phase: 'response', afterBytes: (drops + 1) * MiB } : undefined));
    expect(await sha256Of(await st.read('t/resume.bin'))).toBe(body.sha256());
    const gets = proxy.log.filter((e) => e.method === 'GET');
    expect(gets.length).toBe(3);
    expect(gets.filter((g) => g.status === 206).length).toBe(1);
    proxy.setRule(undefined);
  });

  it('a download that stalls past idle_timeout resumes', async () => {
    const st = viaProxy({ idle_timeout: 1 });
    const body = generatedBody(3 * MiB);
    await st.write('t/stall.bin', body.stream);
    proxy.reset();
    let stalls = 0;
    proxy.setRule((r) => (r.method === 'GET' && stalls++ === 0 ? { type: 'stall', phase: 'response', ms: 30_000, afterBytes: MiB } : undefined));
    const t0 = Date.now();
    expect(await sha256Of(await st.read('t/stall.bin'))).toBe(body.sha256());
    // Resumed after about a second of silence, long before the stall would have ended.
    expect(Date.now() - t0).toBeLessThan(15_000);
    proxy.setRule(undefined);
  });

  it('a download from an offset resumes from the right byte', async () => {
    const st = viaProxy();
    const data = Buffer.alloc(3 * MiB, 7);
    data.write('marker', 2 * MiB + 5);
    await st.writeBytes('t/offset.bin', data);
    proxy.reset();
    let drops = 0;
    proxy.setRule((r) => (r.method === 'GET' && drops++ === 0 ? { type: 'drop', phase: 'response', afterBytes: 100_000 } : undefined));
    const back = Buffer.concat(await (await st.read('t/offset.bin', { start: MiB })).toArray());
    expect(back.equals(data.subarray(MiB))).toBe(true);
    proxy.setRule(undefined);
  });

  it('sends SSE on every object and the storage class only on archives', async () => {
    proxy.reset();
    const seen: Record<string, string | undefined>[] = [];
    proxy.setRule((r) => {
      if (r.method === 'PUT' || r.method === 'POST') {
        seen.push({ path: r.path, sse: r.headers['x-amz-server-side-encryption'] as string | undefined, cls: r.headers['x-amz-storage-class'] as string | undefined });
      }
      return undefined;
    });
    const st = viaProxy({ sse: 'AES256', storage_class: 'STANDARD_IA' });
    await st.write('t/enc.bin', Readable.from([Buffer.from('archive')]));
    await st.writeBytes('t/enc.manifest.json', Buffer.from('{}'));
    proxy.setRule(undefined);
    expect(seen).toEqual([
      { path: '/backups/proxied/t/enc.bin', sse: 'AES256', cls: 'STANDARD_IA' },
      { path: '/backups/proxied/t/enc.manifest.json', sse: 'AES256', cls: undefined },
    ]);
  });
});

describe('check() diagnostics', () => {
  let server: S3Server;
  beforeAll(async () => {
    server = await startS3({ buckets: ['backups'] });
  });
  afterAll(async () => server?.stop());
  const storage = (extra: Record<string, unknown>) =>
    new S3Storage('offsite', s3OptionsSchema.parse({ type: 's3', bucket: 'backups', endpoint: server.endpoint, access_key_id: 'S3RVER', secret_access_key: 'S3RVER', ...extra }));

  it('passes on a writable bucket', async () => {
    await storage({}).check();
  });
  it('names a missing bucket and how to create it', async () => {
    const err = (await storage({ bucket: 'nope' }).check().catch((e: unknown) => e)) as StorageError;
    expect(err.message).toMatch(/bucket "nope" does not exist/);
    expect(err.hint).toMatch(/aws s3 mb s3:\/\/nope/);
  });
  it('reports rejected credentials without showing them', async () => {
    const secret = 'wrong-secret-Zq81x';
    const err = (await storage({ access_key_id: 'AKIAWRONGKEY12345', secret_access_key: secret }).check().catch((e: unknown) => e)) as StorageError;
    expect(err.kind).toBe('permission');
    expect(err.hint).toMatch(/access_key_id/);
    expect(`${err.message} ${err.hint}`).not.toContain(secret);
    expect(`${err.message} ${err.hint}`).not.toContain('AKIAWRONGKEY12345');
  });
  it('reports an endpoint nobody listens on', async () => {
    const err = (await new S3Storage('offsite', s3OptionsSchema.parse({ type: 's3', bucket: 'bkt', endpoint: 'http://127.0.0.1:1', access_key_id: 'k123', secret_access_key: 's123', max_attempts: 2 }))
      .check()
      .catch((e: unknown) => e)) as StorageError;
    expect(err.kind).toBe('unavailable');
    expect(err.message).toMatch(/cannot reach/);
    expect(err.hint).toMatch(/http:\/\/127\.0\.0\.1:1/);
  });
});

describe('s3 options', () => {
  it('parses sizes', () => {
    expect(parseSize('8MiB')).toBe(8 * MiB);
    expect(parseSize('64 MB')).toBe(64 * MiB);
    expect(parseSize('1g')).toBe(1024 * MiB);
    expect(parseSize(5 * MiB)).toBe(5 * MiB);
    expect(parseSize('lots')).toBeUndefined();
  });
  it('grows the part size so twice the expected size fits in 10,000 parts', () => {
    expect(choosePartSize(undefined, undefined)).toBe(8 * MiB);
    expect(choosePartSize(undefined, 10 * 1024 * MiB)).toBe(8 * MiB);
    const big = 100 * 1024 * MiB; // 100 GiB: beyond 8 MiB × 10,000 = 78 GiB
    const p = choosePartSize(undefined, big);
    expect(p * 10_000).toBeGreaterThanOrEqual(2 * big);
    expect(p % MiB).toBe(0);
    expect(choosePartSize(64 * MiB, big)).toBe(64 * MiB);
    expect(choosePartSize(undefined, 200 * 1024 * 1024 * MiB)).toBe(5 * 1024 * MiB);
    expect(chooseQueueSize(undefined, 8 * MiB)).toBe(4);
    expect(chooseQueueSize(undefined, 64 * MiB)).toBe(2);
    expect(chooseQueueSize(undefined, 1024 * MiB)).toBe(1);
    expect(chooseQueueSize(6, 8 * MiB)).toBe(6);
  });
  it('reads s3://bucket/prefix with the endpoint, region and keys from the environment', () => {
    expect(s3OptionsFromRepo('/var/backups', {})).toBeUndefined();
    expect(s3OptionsFromRepo('s3://b', {})).toEqual({ type: 's3', bucket: 'b' });
    expect(
      s3OptionsFromRepo('s3://b/some/prefix/', {
        BK_S3_ENDPOINT: 'http://minio:9000',
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'AK',
        AWS_SECRET_ACCESS_KEY: 'SK',
        BK_S3_FORCE_PATH_STYLE: 'false',
      }),
    ).toEqual({
      type: 's3',
      bucket: 'b',
      prefix: 'some/prefix',
      endpoint: 'http://minio:9000',
      region: 'eu-west-1',
      force_path_style: false,
      access_key_id: 'AK',
      secret_access_key: 'SK',
    });
  });
  it('validates options with messages that name the key', () => {
    const cfg = (s3: Record<string, unknown>) => () => resolveConfig({ storages: { offsite: { type: 's3', bucket: 'bkt', ...s3 } }, targets: {} });
    expect(cfg({ kms_key_id: 'k' })).toThrow(/storages\.offsite\.kms_key_id: needs sse: aws:kms/);
    expect(cfg({ access_key_id: 'k' })).toThrow(/storages\.offsite\.secret_access_key/);
    expect(cfg({ part_size: '1MiB' })).toThrow(/storages\.offsite\.part_size: must be between 5MiB and 5GiB/);
    expect(cfg({ sse: 'rot13' })).toThrow(/storages\.offsite\.sse/);
    expect(cfg({ endpoint: 'ftp://x' })).toThrow(/storages\.offsite\.endpoint/);
    expect(cfg({ bukket: 'x' })).toThrow(/unknown key bukket/);
    const ok = resolveConfig({ storages: { offsite: { type: 's3', bucket: 'bkt', part_size: '16MiB', sse: 'aws:kms', kms_key_id: 'arn:k' } }, targets: {} });
    expect(ok.storages.offsite!.options.part_size).toBe(16 * MiB);
  });
});
