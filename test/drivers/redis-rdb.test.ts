// The RDB stream check: CRC64 as Redis computes it, the trailing EOF marker of `redis-cli --rdb -`
// dropped, and empty, truncated or foreign data refused. Real RDBs come from a real redis-server.
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, startRedis, type RedisServer } from '../harness/index.js';
import { Crc64, RDB_EOF_MARK_SIZE, RdbCheck, reportedRdbLength, type RdbCheckOptions } from '../../src/drivers/redis-rdb.js';

let server: RedisServer;
let rdb: Buffer;

beforeAll(async () => {
  server = await startRedis();
  await server.cli(['SET', 'greeting', 'hello']);
  await server.cli(['RPUSH', 'list', 'a', 'b', 'c']);
  await server.cli(['SAVE']);
  rdb = await readFile(join(server.dir, 'dump.rdb'));
});

afterAll(async () => {
  await server?.stop();
});

async function run(input: Buffer[], options: Partial<RdbCheckOptions> = {}): Promise<{ out: Buffer; check: RdbCheck }> {
  const check = new RdbCheck({ what: 'test rdb', step: 'test', ...options });
  const chunks: Buffer[] = [];
  const src = Readable.from(input);
  await new Promise<void>((resolve, reject) => {
    src.pipe(check);
    check.on('data', (c: Buffer) => chunks.push(c));
    check.on('end', resolve);
    check.on('error', reject);
  });
  return { out: Buffer.concat(chunks), check };
}

/** The bytes in chunks of `size`, to exercise every boundary. */
const chunked = (buf: Buffer, size: number): Buffer[] => Array.from({ length: Math.ceil(buf.length / size) }, (_, i) => buf.subarray(i * size, (i + 1) * size));

describe('Crc64', () => {
  it('matches the check value of CRC-64/Jones as Redis uses it', () => {
    // redis/src/crc64.c: crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca
    expect(new Crc64().update(Buffer.from('123456789')).hex()).toBe('e9c6d914c4b8d9ca');
  });

  it('matches the trailer of an RDB written by redis-server', () => {
    const crc = new Crc64().update(rdb.subarray(0, rdb.length - 8));
    expect(crc.matches(rdb.subarray(rdb.length - 8))).toBe(true);
  });
});

describe('RdbCheck', () => {
  it('passes a real RDB through unchanged, in any chunking', async () => {
    for (const size of [1, 3, 9, 17, 64, rdb.length]) {
      const { out, check } = await run(chunked(rdb, size));
      expect(out.equals(rdb)).toBe(true);
      expect(check.facts).toEqual({ version: Number(rdb.subarray(5, 9).toString()), bytes: rdb.length, checksum: 'ok' });
    }
  });

  it('drops the EOF marker redis-cli leaves after a diskless transfer', async () => {
    const mark = Buffer.from('x'.repeat(RDB_EOF_MARK_SIZE));
    // Chunks smaller and larger than the bytes held back take different paths.
    for (const size of [7, 50, 333, 4096]) {
      const { out, check } = await run(chunked(Buffer.concat([rdb, mark]), size), { holdBack: RDB_EOF_MARK_SIZE, length: async () => rdb.length });
      expect(out.equals(rdb)).toBe(true);
      expect(check.facts?.checksum).toBe('ok');
    }
  });

  it('keeps every byte of a sized transfer (no length reported)', async () => {
    const { out } = await run([rdb], { holdBack: RDB_EOF_MARK_SIZE, length: async () => undefined });
    expect(out.equals(rdb)).toBe(true);
  });

  it('refuses a stream shorter than the reported length', async () => {
    await expect(run([rdb.subarray(0, rdb.length - 5)], { holdBack: RDB_EOF_MARK_SIZE, length: async () => rdb.length })).rejects.toThrow(/reported/);
  });

  it('refuses a truncated RDB', async () => {
    await expect(run([rdb.subarray(0, rdb.length - 20)])).rejects.toThrow(/EOF marker|CRC64/);
  });

  it('refuses a damaged RDB', async () => {
    const bad = Buffer.from(rdb);
    bad[20] = bad[20]! ^ 0xff;
    await expect(run([bad])).rejects.toThrow(/CRC64/);
  });

  it('refuses empty output and non-RDB data', async () => {
    await expect(run([])).rejects.toThrow(/no data/);
    await expect(run([Buffer.from('-NOAUTH Authentication required.\r\n')])).rejects.toThrow(/magic/);
  });

  it('accepts an RDB without a checksum (rdbchecksum no writes eight zero bytes)', async () => {
    // rdbchecksum cannot be changed at runtime; the trailer is all that differs (rdb.c rdbSaveRio).
    const nocrc = Buffer.concat([rdb.subarray(0, rdb.length - 8), Buffer.alloc(8)]);
    const { out, check } = await run([nocrc]);
    expect(out.equals(nocrc)).toBe(true);
    expect(check.facts?.checksum).toBe('disabled');
  });

  it('reads the length redis-cli reports for a real diskless transfer', async () => {
    await server.cli(['CONFIG', 'SET', 'repl-diskless-sync-delay', '0']);
    const r = await execa('redis-cli', ['-p', String(server.port), '--rdb', '-'], { env: cleanEnv(), extendEnv: false, encoding: 'buffer' });
    const stderr = Buffer.from(r.stderr).toString();
    const length = reportedRdbLength(stderr);
    expect(length).toBeGreaterThan(0);
    const stdout = Buffer.from(r.stdout);
    // On this redis-cli the marker follows the RDB on stdout; a fixed redis-cli would write exactly `length`.
    expect([length, length! + RDB_EOF_MARK_SIZE]).toContain(stdout.length);
    const { out, check } = await run([stdout], { holdBack: RDB_EOF_MARK_SIZE, length: async () => length });
    expect(out.length).toBe(length);
    expect(check.facts?.checksum).toBe('ok');
  });
});
