// Smoke test for the integration-test harness itself: every server starts, does one real round
// trip, and stops without leaving its temp dir behind.
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanEnv,
  startFaultProxy,
  startMariadb,
  startPostgres,
  startRedis,
  startS3,
  type FaultProxy,
  type MariadbServer,
  type PostgresServer,
  type RedisServer,
  type S3Server,
} from './harness/index.js';

const REDIS_PASSWORD = 'r3dis "pa$$" \\ word';

let mariadb: MariadbServer;
let postgres: PostgresServer;
let redis: RedisServer;
let s3: S3Server;
const startupMs: Record<string, number> = {};

async function timed<T>(name: string, start: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const server = await start();
  startupMs[name] = Math.round(performance.now() - t0);
  return server;
}

const stoppables: Array<{ stop(): Promise<void> }> = [];
function track<T extends { stop(): Promise<void> }>(started: Promise<T>): Promise<T> {
  return started.then((server) => {
    stoppables.push(server);
    return server;
  });
}

beforeAll(async () => {
  const starts = [
    track(timed('mariadb', () => startMariadb())),
    track(timed('postgres', () => startPostgres())),
    track(timed('redis', () => startRedis({ password: REDIS_PASSWORD }))),
    track(timed('s3', () => startS3({ buckets: ['backups', 'other'] }))),
  ] as const;
  // Let every start settle before reporting a failure, so afterAll stops whatever did start.
  await Promise.allSettled(starts);
  [mariadb, postgres, redis, s3] = await Promise.all(starts);
});

afterAll(async () => {
  const t0 = performance.now();
  await Promise.allSettled(stoppables.map((s) => s.stop()));
  console.log(`harness startup ms: ${JSON.stringify(startupMs)}; stop all: ${Math.round(performance.now() - t0)} ms`);
});

describe('mariadb', () => {
  it('round-trips as root over the socket and as bk over TCP with its password', async () => {
    await mariadb.query('CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, name TEXT);');
    await mariadb.query("INSERT INTO t VALUES (1, 'hello'), (2, 'world');", 'app');
    expect(await mariadb.query('SELECT id, name FROM t ORDER BY id', 'app')).toBe('1\thello\n2\tworld');

    expect(mariadb.bkPassword).not.toBe('');
    expect(await mariadb.query('SELECT CURRENT_USER(), COUNT(*) FROM app.t', undefined, { as: 'bk' })).toBe('bk@%\t2');

    // Without the password the bk user is rejected, i.e. grants and auth are really enforced.
    const anon = await execa(
      'mariadb',
      ['--no-defaults', '-h', '127.0.0.1', '-P', String(mariadb.port), '-u', 'bk', '--protocol=TCP', '-e', 'SELECT 1'],
      { env: cleanEnv(), extendEnv: false, reject: false },
    );
    expect(anon.exitCode).not.toBe(0);
    expect(anon.stderr).toMatch(/Access denied/);
  });
});

describe('postgres', () => {
  it('round-trips as superuser over the socket and as bk over TCP with its password', async () => {
    await postgres.createDb('app');
    await postgres.psql("CREATE TABLE t (id int PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'hello'), (2, 'world');", 'app');
    expect(await postgres.psql('SELECT id, name FROM t ORDER BY id', 'app')).toBe('1|hello\n2|world');
    expect(await postgres.psql('SELECT current_user, count(*) FROM t', 'app', { as: 'bk' })).toBe('bk|2');

    const noPassword = await execa(
      `${postgres.binDir}/psql`,
      ['-XAtqw', '-h', '127.0.0.1', '-p', String(postgres.port), '-U', 'bk', '-d', 'app', '-c', 'SELECT 1'],
      { env: cleanEnv({ PGPASSFILE: '/nonexistent' }), extendEnv: false, reject: false },
    );
    expect(noPassword.exitCode).not.toBe(0);
    expect(noPassword.stderr).toMatch(/password/);
  });
});

describe('redis', () => {
  it('round-trips with a password and rejects clients without it', async () => {
    expect(await redis.cli(['SET', 'greeting', 'hello world'])).toBe('OK');
    expect(await redis.cli(['GET', 'greeting'])).toBe('hello world');
    expect(await redis.cli(['CONFIG', 'GET', 'dir'])).toContain(redis.dir);

    const noAuth = await execa('redis-cli', ['-p', String(redis.port), 'GET', 'greeting'], { env: cleanEnv(), extendEnv: false });
    expect(noAuth.stdout).toMatch(/NOAUTH/);
  });

  it('keeps the password out of the server argv', async () => {
    const cmdline = await readFile(`/proc/${redis.pid}/cmdline`, 'utf8');
    expect(cmdline).not.toContain(REDIS_PASSWORD);
  });
});

describe('crash simulation', () => {
  it('kill() SIGKILLs the server; stop() still cleans up (incl. postgres shared memory)', async () => {
    const [r, pg] = await Promise.all([startRedis(), startPostgres()]);
    const shmid = (await readFile(`${pg.dataDir}/postmaster.pid`, 'utf8')).split('\n')[6]?.trim().split(/\s+/)[1];
    expect(shmid).toMatch(/^\d+$/);
    await Promise.all([r.kill(), pg.kill()]);
    await expect(r.cli(['PING'])).rejects.toThrow();
    await expect(pg.psql('SELECT 1')).rejects.toThrow();
    await Promise.all([r.stop(), pg.stop()]);
    expect(existsSync(r.dir)).toBe(false);
    expect(existsSync(pg.dataDir)).toBe(false);
    const ipcs = await execa('ipcs', ['-m']);
    expect(ipcs.stdout.split('\n').some((l) => l.trim().split(/\s+/)[1] === shmid)).toBe(false);
  });
});

function s3Client(config: S3ClientConfig, extra: S3ClientConfig = {}): S3Client {
  return new S3Client({ ...config, ...extra });
}

describe('s3', () => {
  it('PutObject / GetObject / truncated ListObjectsV2', async () => {
    const client = s3Client(s3.clientConfig);
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'a/one.txt', Body: 'hello s3' }));
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'a/two.txt', Body: 'two' }));
    const got = await client.send(new GetObjectCommand({ Bucket: 'backups', Key: 'a/one.txt' }));
    expect(await got.Body?.transformToString()).toBe('hello s3');

    // A truncated listing needs DES for its continuation token: proves --openssl-legacy-provider.
    const page = await client.send(new ListObjectsV2Command({ Bucket: 'backups', MaxKeys: 1 }));
    expect(page.IsTruncated).toBe(true);
    const rest = await client.send(
      new ListObjectsV2Command({ Bucket: 'backups', MaxKeys: 1, ContinuationToken: page.NextContinuationToken }),
    );
    expect(rest.Contents?.[0]?.Key).toBe('a/two.txt');
    client.destroy();
  });
});

describe('fault proxy', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
  });
  afterAll(async () => {
    await proxy.stop();
  });

  const via = (maxAttempts: number): S3Client =>
    s3Client(s3.clientConfig, { endpoint: proxy.endpoint, maxAttempts, retryStrategy: undefined });

  it('returns an S3-style 503 once, then passes through', async () => {
    proxy.reset();
    const client = via(1);
    proxy.failNext(1, { status: 503 });
    const err = await client
      .send(new PutObjectCommand({ Bucket: 'backups', Key: 'p.txt', Body: 'via proxy' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3ServiceException);
    expect((err as S3ServiceException).$metadata.httpStatusCode).toBe(503);
    expect((err as S3ServiceException).name).toBe('SlowDown');

    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'p.txt', Body: 'via proxy' }));
    const got = await client.send(new GetObjectCommand({ Bucket: 'backups', Key: 'p.txt' }));
    expect(await got.Body?.transformToString()).toBe('via proxy');
    expect(proxy.stats).toEqual({ total: 3, byMethod: { PUT: 2, GET: 1 }, faults: 1 });
    expect(proxy.log.map((e) => e.status)).toEqual([503, 200, 200]);
    client.destroy();
  });

  it('the SDK retries through an injected 500 and a dropped upload', async () => {
    proxy.reset();
    const client = via(3);
    proxy.failNext(1, { status: 500 });
    proxy.dropNext(1, { afterBytes: 4 });
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'r.txt', Body: 'retried body' }));
    expect(proxy.log.map((e) => [e.method, e.fault, e.status])).toEqual([
      ['PUT', 'fail', 500],
      ['PUT', 'drop', undefined],
      ['PUT', undefined, 200],
    ]);
    client.destroy();
  });

  it('rules, response-phase drops and stalls', async () => {
    proxy.reset();
    const client = via(1);
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'big.bin', Body: Buffer.alloc(256 * 1024, 7) }));

    // Rule: only GETs of big.bin are cut off mid-body.
    proxy.setRule((req) => (req.method === 'GET' && req.path.endsWith('/big.bin') ? { type: 'drop', phase: 'response' } : undefined));
    const cut = await client.send(new GetObjectCommand({ Bucket: 'backups', Key: 'big.bin' }));
    await expect(cut.Body!.transformToByteArray()).rejects.toThrow();
    proxy.setRule(undefined);

    proxy.stallNext(1, 300, { afterBytes: 1000 });
    const t0 = performance.now();
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'slow.bin', Body: Buffer.alloc(64 * 1024, 1) }));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    const slow = await client.send(new GetObjectCommand({ Bucket: 'backups', Key: 'slow.bin' }));
    expect((await slow.Body!.transformToByteArray()).length).toBe(64 * 1024);
    client.destroy();
  });
});
