// copyKeyspace between two real servers: values larger than the in-memory budget, several
// databases, TTLs; and a destination that refuses the data (out of memory) failing loudly.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../harness/index.js';
import { copyKeyspace } from '../../src/drivers/redis-copy.js';
import { RespClient } from '../../src/drivers/redis-resp.js';

let src: RedisServer;
let dst: RedisServer;
const big = Array.from({ length: 24 }, () => randomBytes(1 << 20)); // 24 MiB of incompressible values

const connect = (s: RedisServer) => RespClient.connect({ host: s.host, port: s.port });

beforeAll(async () => {
  [src, dst] = await Promise.all([startRedis(), startRedis()]);
  const c = await connect(src);
  await c.pipeline(big.map((v, i) => ['SET', `big:${i}`, v]));
  await c.pipeline(Array.from({ length: 3000 }, (_, i) => ['SET', `small:${i}`, String(i), 'EX', String(1000 + i)]));
  await c.call('SELECT', 2);
  await c.call('RPUSH', 'db2:list', 'a', 'b');
  await c.close();
});

afterAll(async () => {
  await Promise.all([src?.stop(), dst?.stop()]);
});

describe('copyKeyspace', () => {
  it('copies every key of every database with its TTL, big values included', async () => {
    const [s, d] = await Promise.all([connect(src), connect(dst)]);
    try {
      const result = await copyKeyspace(s, d, { databases: [0, 2], batch: 500 });
      expect(result.keys).toEqual({ db0: 3024, db2: 1 });
      expect(result.skipped).toBe(0);
      await d.call('SELECT', 0);
      for (const [i, v] of big.entries()) expect(((await d.call('GET', `big:${i}`)) as Buffer).equals(v)).toBe(true);
      const ttl = (await d.call('PTTL', 'small:2999')) as number;
      expect(ttl).toBeGreaterThan(3_990_000 - 10_000);
      expect(ttl).toBeLessThanOrEqual(3_999_000);
      expect(await d.call('PTTL', 'big:0')).toBe(-1);
      await d.call('SELECT', 2);
      expect(((await d.call('LRANGE', 'db2:list', 0, -1)) as Buffer[]).map(String)).toEqual(['a', 'b']);
    } finally {
      await Promise.all([s.close(), d.close()]);
    }
  });

  it('fails with the key and a hint when the destination refuses (out of memory)', async () => {
    const [s, d] = await Promise.all([connect(src), connect(dst)]);
    try {
      await d.call('FLUSHALL');
      await d.call('CONFIG', 'SET', 'maxmemory', '4mb');
      await d.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      const err = await copyKeyspace(s, d, { databases: [0], target: 'cache' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'FAILED', target: 'cache', step: 'restore' });
      expect((err as Error).message).toMatch(/RESTORE of key ".+" into database 0 failed; the destination is partly restored/);
      expect((err as { hint?: string }).hint).toMatch(/out of memory/);
    } finally {
      await d.call('CONFIG', 'SET', 'maxmemory', '0');
      await Promise.all([s.close(), d.close()]);
    }
  });
});
