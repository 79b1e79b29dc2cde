/**
 * Bench data: realistic rows (emails, names, timestamps, numerics, JSON, text), not blank filler,
 * so compression ratios and dump speeds resemble production.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { MariadbServer, PostgresServer, RedisServer } from '../test/harness/index.js';
import { cleanEnv } from '../test/harness/env.js';

/** Creates database `db` with ~500 MB of plain dump at scale 1; returns the plain dump size in MB. */
export async function seedPostgres(pg: PostgresServer, db: string, scale: number): Promise<number> {
  const users = Math.round(1_000_000 * scale);
  const events = Math.round(2_200_000 * scale);
  await pg.createDb(db);
  await pg.psql(
    `CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text, created_at timestamptz, balance numeric(12,2), profile jsonb);
     INSERT INTO users (email, name, created_at, balance, profile)
       SELECT 'user' || g || '@example.com', initcap(md5(g::text)) || ' ' || initcap(substr(md5((g * 7)::text), 1, 12)),
              now() - (g || ' seconds')::interval, (random() * 10000)::numeric(12,2),
              jsonb_build_object('age', (random() * 80)::int, 'plan', (ARRAY['free','pro','team'])[1 + g % 3],
                                 'tags', jsonb_build_array('t' || (g % 17), 't' || (g % 31)), 'bio', md5((g * 3)::text) || ' ' || md5((g * 5)::text))
       FROM generate_series(1, ${users}) g;
     CREATE TABLE events (id bigserial PRIMARY KEY, user_id bigint, kind text, payload text, at timestamptz);
     INSERT INTO events (user_id, kind, payload, at)
       SELECT 1 + (g % ${Math.max(users, 1)}), (ARRAY['login','view','purchase','logout'])[1 + g % 4],
              'session=' || md5(g::text) || ' ua=Mozilla/5.0 (X11; Linux x86_64) path=/items/' || (g % 9973), now() - (g || ' ms')::interval
       FROM generate_series(1, ${events}) g;
     ANALYZE;`,
    db,
  );
  const size = await execa('bash', ['-o', 'pipefail', '-c', `pg_dump -h ${pg.socketDir} -p ${pg.port} -U postgres ${db} | wc -c`], { env: cleanEnv(), extendEnv: false });
  return Number(String(size.stdout).trim()) / 1e6;
}

/** The same shape in MariaDB, generated server-side with the sequence engine; returns the dump size in MB. */
export async function seedMariadb(my: MariadbServer, db: string, scale: number): Promise<number> {
  const users = Math.round(1_000_000 * scale);
  const events = Math.round(2_200_000 * scale);
  await my.query(`CREATE DATABASE ${db}`);
  await my.query(
    `CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(100) NOT NULL, name VARCHAR(100), created_at DATETIME, balance DECIMAL(12,2), profile JSON) ENGINE=InnoDB;
     INSERT INTO users SELECT seq, CONCAT('user', seq, '@example.com'), CONCAT(MD5(seq), ' ', LEFT(MD5(seq * 7), 12)),
       NOW() - INTERVAL seq SECOND, ROUND(RAND() * 10000, 2),
       JSON_OBJECT('age', FLOOR(RAND() * 80), 'plan', ELT(1 + seq % 3, 'free', 'pro', 'team'), 'tags', JSON_ARRAY(CONCAT('t', seq % 17), CONCAT('t', seq % 31)), 'bio', CONCAT(MD5(seq * 3), ' ', MD5(seq * 5)))
       FROM seq_1_to_${users};
     CREATE TABLE events (id BIGINT PRIMARY KEY, user_id BIGINT, kind VARCHAR(20), payload TEXT, at DATETIME(3)) ENGINE=InnoDB;
     INSERT INTO events SELECT seq, 1 + seq % ${Math.max(users, 1)}, ELT(1 + seq % 4, 'login', 'view', 'purchase', 'logout'),
       CONCAT('session=', MD5(seq), ' ua=Mozilla/5.0 (X11; Linux x86_64) path=/items/', seq % 9973), NOW(3) - INTERVAL seq * 1000 MICROSECOND
       FROM seq_1_to_${events};`,
    db,
  );
  // The dump's size, like seedPostgres: InnoDB's data_length is neither that nor up to date.
  const size = await execa('bash', ['-o', 'pipefail', '-c', `"$(command -v mariadb-dump || command -v mysqldump)" --socket=${my.socket} -u root --single-transaction ${db} | wc -c`], {
    env: cleanEnv(),
    extendEnv: false,
  });
  return Number(String(size.stdout).trim()) / 1e6;
}

/** ~1 M keys at scale 1: strings, hashes, lists, sets, a tenth with TTLs; returns the key count. */
export async function seedRedis(rd: RedisServer, scale: number): Promise<number> {
  const n = Math.round(1_000_000 * scale);
  const resp = (args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  function* commands(): Generator<string> {
    let batch = '';
    for (let i = 0; i < n; i++) {
      const kind = i % 10;
      const key = `obj:${i}`;
      if (kind < 7) batch += resp(['SET', `user:${i}:session`, `{"id":${i},"token":"${(i * 2654435761).toString(36)}","ua":"Mozilla/5.0","seen":${1700000000 + i}}`]);
      else if (kind === 7) batch += resp(['HSET', key, 'name', `name-${i}`, 'email', `u${i}@example.com`, 'plan', ['free', 'pro', 'team'][i % 3]!]);
      else if (kind === 8) batch += resp(['RPUSH', key, `a${i}`, `b${i}`, `c${i}`]);
      else batch += resp(['SADD', key, `x${i % 97}`, `y${i % 89}`]);
      if (i % 10 === 3) batch += resp(['PEXPIRE', `user:${i}:session`, String(3_600_000 + i)]);
      if (batch.length > 1 << 16) {
        yield batch;
        batch = '';
      }
    }
    if (batch) yield batch;
  }
  await execa('redis-cli', ['-h', rd.host, '-p', String(rd.port), '--no-auth-warning', '--pipe'], {
    input: Readable.from(commands()) as unknown as string,
    env: cleanEnv({ REDISCLI_AUTH: rd.password ?? '' }),
    extendEnv: false,
  });
  return n;
}

const WORDS = 'the quick brown fox jumps over lazy dog backup restore archive checksum storage retention policy server database table row column index'.split(' ');

/** 40,000 files at scale 1 in 200 directories: mostly small text, some large binaries. */
export async function generateFiles(root: string, scale: number): Promise<{ files: number; bytes: number }> {
  const count = Math.round(40_000 * scale);
  let bytes = 0;
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < count; i++) {
    const dir = join(root, `d${i % 200}`, `e${i % 7}`);
    if (i < 1400) await mkdir(dir, { recursive: true });
    let body: Buffer;
    if (i % 2000 === 0) body = randomBytes(4 << 20);
    else {
      const len = 1024 + Math.floor(rand() * 12 * 1024);
      const parts: string[] = [];
      let l = 0;
      while (l < len) {
        const w = WORDS[Math.floor(rand() * WORDS.length)]!;
        parts.push(w);
        l += w.length + 1;
      }
      body = Buffer.from(parts.join(' '));
    }
    bytes += body.length;
    await writeFile(join(dir, `f${i}.txt`), body);
  }
  return { files: count, bytes };
}
