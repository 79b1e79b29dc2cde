// The database drivers end to end through bin/bk with encryption on and with restore drills:
// - an age-encrypted backup of PostgreSQL, MariaDB and Redis restores elsewhere equal to its
//   source (rows, keys, TTLs), and a wrong identity fails before the destination exists;
// - `bk verify --restore-test` passes for each, and fails with exit 4 for an archive replaced by
//   another valid dump whose hashes were re-recorded (the drill checks content, not hashes);
// - `verify.url` drills on a scratch server: a source role that may not create databases passes
//   there and fails without it;
// - no drill database, temp server or temp directory is left behind, passed or failed.
import { readdir, readFile, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf, startMariadb, startPostgres, startRedis, type MariadbServer, type PostgresServer, type RedisServer } from '../harness/index.js';
import { runBk, type BkRun } from '../helpers/run-bk.js';
import { makeAgeKey, type AgeKey } from '../crypto/keys.js';

let dir: string;
let repo: string;
let tmp: string;
let config: string;
let key: AgeKey;
let wrongKey: AgeKey;
let pg: PostgresServer;
let scratch: PostgresServer;
let my: MariadbServer;
let cache: RedisServer;
let cacheOther: RedisServer;
let cacheDest: RedisServer;

const READER_PW = 'reader-pw-5b1e9c';

interface Check {
  name: string;
  ok: boolean;
}
interface VerifyJson {
  drills?: { target: string; status: string; ok: boolean; checks: Check[]; error: { code: string; message: string } | null }[];
}

/** TMPDIR inside the test dir, so a drill's temp redis-server or directory left behind is seen. */
const bk = (args: string[]): Promise<BkRun> =>
  runBk(['--config', config, ...args], { env: { TMPDIR: tmp, BK_T_PG_PW: pg.bkPassword, BK_T_MY_PW: my.bkPassword, BK_T_SCRATCH_PW: scratch.bkPassword } });

async function backup(target: string): Promise<string> {
  const r = await bk(['backup', target, '--json', '--no-prune']);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.json<{ results: { id: string }[] }>().results[0]!.id;
}

const pgRows = (db: string, server = pg) => server.psql('SELECT id, name, price, tags FROM items ORDER BY id; SELECT count(*) FROM notes;', db);
const myRows = (db: string) => my.query('SELECT id, name, price, doc FROM items ORDER BY id; SELECT COUNT(*) FROM notes;', db);
const drillDatabases = async () => ({
  pg: await pg.psql("SELECT datname FROM pg_database WHERE datname LIKE 'bk_drill_%'"),
  scratch: await scratch.psql("SELECT datname FROM pg_database WHERE datname LIKE 'bk_drill_%'"),
  my: await my.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'bk_drill_%'"),
});

/** A restore copies the remaining TTL, so the two servers' TTLs, read back to back, differ by a second or so. */
const TTL_TOLERANCE_S = 5;

/** Every key of every database with its type and value. */
async function redisSnapshot(r: RedisServer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const db of ['0', '1']) {
    const keys = (await r.cli(['-n', db, '--scan'])).split('\n').filter(Boolean).sort();
    for (const k of keys) {
      const type = await r.cli(['-n', db, 'TYPE', k]);
      const value =
        type === 'string' ? await r.cli(['-n', db, 'GET', k]) : type === 'hash' ? await r.cli(['-n', db, 'HGETALL', k]) : await r.cli(['-n', db, 'LRANGE', k, '0', '-1']);
      out[`${db}/${k}`] = `${type}=${value}`;
    }
  }
  return out;
}

/** Each key's TTL in seconds (-1: none) on the source and on the copy, read one right after the other. */
async function redisTtlPairs(source: RedisServer, copy: RedisServer, keys: string[]): Promise<{ key: string; source: number; copy: number }[]> {
  const pairs = [];
  for (const key of keys) {
    const [db, k] = [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
    const ttl = async (r: RedisServer) => Number(await r.cli(['-n', db, 'TTL', k]));
    pairs.push({ key, source: await ttl(source), copy: await ttl(copy) });
  }
  return pairs;
}

/**
 * Puts backup `from`'s archive in place of backup `into`'s and re-records its hashes: a valid
 * archive, matching checksums, other content.
 */
async function replaceArchive(into: { target: string; id: string }, from: { target: string; id: string }): Promise<void> {
  const path = (t: { target: string; id: string }) => join(repo, t.target, `${t.id}.manifest.json`);
  const a = JSON.parse(await readFile(path(into), 'utf8')) as Record<string, unknown> & { archive: string };
  const b = JSON.parse(await readFile(path(from), 'utf8')) as Record<string, unknown> & { archive: string };
  await copyFile(join(repo, b.archive), join(repo, a.archive));
  await writeFile(path(into), `${JSON.stringify({ ...a, raw: b.raw, stored: b.stored }, null, 2)}\n`);
}

beforeAll(async () => {
  dir = await makeTmpDir('bk-drill-db-');
  repo = join(dir, 'repo');
  tmp = join(dir, 'tmp');
  await mkdir(tmp);
  [pg, scratch, my, cache, cacheOther, cacheDest] = await Promise.all([startPostgres(), startPostgres(), startMariadb(), startRedis(), startRedis(), startRedis()]);
  key = await makeAgeKey(dir, 'key');
  wrongKey = await makeAgeKey(dir, 'wrong');

  const pgSeed = (rows: number) =>
    `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[]);
     INSERT INTO items SELECT g, 'item ' || g || ' ü', g * 1.25, ARRAY['t' || g] FROM generate_series(1, ${rows}) g;
     CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) VALUES ('a'), ('b');`;
  await pg.createDb('app');
  await pg.createDb('other');
  await pg.psql(pgSeed(7), 'app');
  await pg.psql(pgSeed(12), 'other');
  // A role that may read app but not create databases: a drill on the source server must fail.
  await pg.psql(`CREATE ROLE reader LOGIN NOCREATEDB PASSWORD '${READER_PW}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader; GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO reader;`, 'app');

  const mySeed = (db: string, rows: number) =>
    `CREATE DATABASE ${db}; USE ${db};
     CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, price DECIMAL(10,2), doc JSON);
     INSERT INTO items WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${rows}) SELECT n, CONCAT('item ', n, ' ü'), n * 1.25, JSON_OBJECT('n', n) FROM s;
     CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('a'), ('b');`;
  await my.query(mySeed('shop', 7));
  await my.query(mySeed('shop2', 12));

  for (const [r, n] of [[cache, 5], [cacheOther, 9]] as const) {
    for (let i = 1; i <= n; i++) await r.cli(['SET', `k${i}`, `v${i}`]);
    await r.cli(['EXPIRE', 'k1', '5000']);
    await r.cli(['-n', '1', 'HSET', 'h', 'f', 'x', 'g', 'y']);
    await r.cli(['-n', '1', 'RPUSH', 'l', 'a', 'b', 'c']);
  }

  const enc = `encryption: { recipients: [${key.recipient}], identity_file: ${key.file} }`;
  const pgConn = `host: 127.0.0.1, port: ${pg.port}, user: bk, password: "\${BK_T_PG_PW}"`;
  const myConn = `host: 127.0.0.1, port: ${my.port}, user: bk, password: "\${BK_T_MY_PW}"`;
  config = join(dir, 'backup.config.yaml');
  await writeFile(
    config,
    [
      'storages:',
      `  local: { type: local, path: ${repo} }`,
      'targets:',
      `  pg: { driver: postgres, ${pgConn}, database: app, ${enc} }`,
      `  pg-swap: { driver: postgres, ${pgConn}, database: app }`,
      `  pg-other: { driver: postgres, ${pgConn}, database: other }`,
      `  pg-reader: { driver: postgres, host: 127.0.0.1, port: ${pg.port}, user: reader, password: ${READER_PW}, database: app, verify: { url: "postgres://bk:\${BK_T_SCRATCH_PW}@127.0.0.1:${scratch.port}/postgres" } }`,
      `  pg-reader-here: { driver: postgres, host: 127.0.0.1, port: ${pg.port}, user: reader, password: ${READER_PW}, database: app }`,
      `  my: { driver: mysql, ${myConn}, database: shop, ${enc} }`,
      `  my-swap: { driver: mysql, ${myConn}, database: shop }`,
      `  my-other: { driver: mysql, ${myConn}, database: shop2 }`,
      `  cache: { driver: redis, host: 127.0.0.1, port: ${cache.port}, ${enc} }`,
      `  cache-swap: { driver: redis, host: 127.0.0.1, port: ${cache.port} }`,
      `  cache-other: { driver: redis, host: 127.0.0.1, port: ${cacheOther.port} }`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([pg?.stop(), scratch?.stop(), my?.stop(), cache?.stop(), cacheOther?.stop(), cacheDest?.stop()]);
  if (dir) await rmrf(dir);
});

describe('encrypted database backups', () => {
  it('postgres: restores elsewhere equal to the source; a wrong identity fails before the database exists', async () => {
    const id = await backup('pg');
    const archive = (await readdir(join(repo, 'pg'))).find((f) => f.startsWith(id) && !f.endsWith('.manifest.json'))!;
    expect(archive).toMatch(/\.zst\.age$/);
    expect(await readFile(join(repo, 'pg', archive), 'latin1')).toMatch(/^age-encryption\.org\/v1\n/);

    const wrong = await bk(['restore', 'pg', '--to', 'app_wrong', '--identity', wrongKey.file, '--yes']);
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.stderr).toMatch(/pg/);
    expect(wrong.stderr).not.toMatch(/\n\s+at /);
    expect(await pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'app_wrong'")).toBe('0');

    const r = await bk(['restore', 'pg', '--to', 'app_restored', '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await pgRows('app_restored')).toBe(await pgRows('app'));
  });

  it('mysql: restores elsewhere equal to the source; a wrong identity fails before the database exists', async () => {
    await backup('my');
    const wrong = await bk(['restore', 'my', '--to', 'shop_wrong', '--identity', wrongKey.file, '--yes']);
    expect(wrong.exitCode).not.toBe(0);
    expect(await my.query("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop_wrong'")).toBe('0');

    const r = await bk(['restore', 'my', '--to', 'shop_restored', '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await myRows('shop_restored')).toBe(await myRows('shop'));
  });

  it('redis: restores into another server key by key with TTLs; a wrong identity leaves it untouched', async () => {
    await backup('cache');
    await cacheDest.cli(['SET', 'marker', 'untouched']);
    const to = `redis://127.0.0.1:${cacheDest.port}`;
    const wrong = await bk(['restore', 'cache', '--to', to, '--identity', wrongKey.file, '--yes']);
    expect(wrong.exitCode).not.toBe(0);
    expect(await cacheDest.cli(['GET', 'marker'])).toBe('untouched');

    const r = await bk(['restore', 'cache', '--to', to, '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    const restored = await redisSnapshot(cacheDest);
    expect(restored).toEqual(await redisSnapshot(cache));
    expect(Object.keys(restored)).toHaveLength(7);
    const ttls = await redisTtlPairs(cache, cacheDest, Object.keys(restored));
    for (const t of ttls) {
      if (t.source < 0) expect(t.copy, t.key).toBe(t.source);
      else expect(Math.abs(t.copy - t.source), `${t.key}: TTL ${t.copy} s, source ${t.source} s`).toBeLessThanOrEqual(TTL_TOLERANCE_S);
    }
    expect(ttls.filter((t) => t.source > 0).length).toBeGreaterThan(0);
  });
});

describe('verify --restore-test on databases', () => {
  it.each(['pg', 'my', 'cache'])('%s (encrypted): passes check by check and leaves nothing behind', async (target) => {
    const r = await bk(['verify', target, '--restore-test', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const drill = r.json<VerifyJson>().drills![0]!;
    expect(drill).toMatchObject({ target, status: 'passed', ok: true, error: null });
    expect(drill.checks.length).toBeGreaterThan(0);
    expect(drill.checks.every((c) => c.ok)).toBe(true);
    expect(await drillDatabases()).toEqual({ pg: '', scratch: '', my: '' });
    expect(await readdir(tmp)).toEqual([]);
  });

  it.each([
    ['pg-swap', 'pg-other'],
    ['my-swap', 'my-other'],
    ['cache-swap', 'cache-other'],
  ])('%s: an archive replaced by another valid dump with matching hashes fails with exit 4', async (target, other) => {
    const into = { target, id: await backup(target) };
    const from = { target: other, id: await backup(other) };
    await replaceArchive(into, from);
    // Sizes and checksums agree with the manifest: an integrity read cannot tell.
    const integrity = await bk(['verify', target, '--id', into.id]);
    expect(integrity.exitCode, integrity.stderr).toBe(0);

    const r = await bk(['verify', target, '--id', into.id, '--restore-test', '--json']);
    expect(r.exitCode, r.stderr).toBe(4);
    const drill = r.json<VerifyJson>().drills![0]!;
    expect(drill.status).toBe('mismatch');
    expect(drill.error?.code).toBe('INTEGRITY');
    expect(drill.checks.some((c) => !c.ok)).toBe(true);
    expect(await drillDatabases()).toEqual({ pg: '', scratch: '', my: '' });
    expect(await readdir(tmp)).toEqual([]);
  });
});

describe('verify.url', () => {
  it('drills on the scratch server, so a source role without CREATEDB passes; without it the drill fails', async () => {
    await backup('pg-reader');
    await backup('pg-reader-here');
    const there = await bk(['verify', 'pg-reader', '--restore-test', '--json']);
    expect(there.exitCode, there.stderr).toBe(0);
    expect(there.json<VerifyJson>().drills![0]!.status).toBe('passed');
    expect(there.stdout + there.stderr).not.toContain(scratch.bkPassword);

    const here = await bk(['verify', 'pg-reader-here', '--restore-test', '--json']);
    expect(here.exitCode).not.toBe(0);
    expect(here.exitCode).not.toBe(4);
    expect(JSON.stringify(here.json<VerifyJson>().drills![0]!.error)).toMatch(/permission denied to create database.*verify\.url/);
    expect(await drillDatabases()).toEqual({ pg: '', scratch: '', my: '' });
  });
});
