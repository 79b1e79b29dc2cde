// The RESP client: replies parsed across arbitrary chunk boundaries, binary-safe values, pipelining,
// error replies kept apart from connection failures — checked against a real redis-server and
// against redis-cli's view of the same data.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, startRedis, type RedisServer } from '../harness/index.js';
import { encodeCommand, parseInfo, RespClient, RespConnectionError, RespError, RespParser, type RespValue } from '../../src/drivers/redis-resp.js';

const PASSWORD = 'resp "pass" \\ word';
let server: RedisServer;

beforeAll(async () => {
  server = await startRedis({ password: PASSWORD });
});
afterAll(async () => {
  await server?.stop();
});

async function login(): Promise<RespClient> {
  const c = await RespClient.connect({ host: server.host, port: server.port });
  await c.call('AUTH', PASSWORD);
  return c;
}

describe('RespParser', () => {
  const replies = Buffer.concat([
    Buffer.from('+OK\r\n-ERR bad thing\r\n:42\r\n$-1\r\n*-1\r\n$5\r\nab\r\nc\r\n'),
    Buffer.from('*3\r\n$3\r\nfoo\r\n*2\r\n:1\r\n$0\r\n\r\n+x\r\n'),
  ]);
  const expected = (values: RespValue[]) => {
    expect(values[0]).toBe('OK');
    expect(values[1]).toBeInstanceOf(RespError);
    expect((values[1] as RespError).kind).toBe('ERR');
    expect(values[2]).toBe(42);
    expect(values[3]).toBeNull();
    expect(values[4]).toBeNull();
    expect((values[5] as Buffer).toString('latin1')).toBe('ab\r\nc');
    const arr = values[6] as RespValue[];
    expect((arr[0] as Buffer).toString()).toBe('foo');
    expect(arr[1]).toEqual([1, Buffer.alloc(0)]);
    expect(arr[2]).toBe('x');
  };

  it('parses a reply stream in one piece and byte by byte', () => {
    expected(new RespParser().push(replies));
    const p = new RespParser();
    const out: RespValue[] = [];
    for (let i = 0; i < replies.length; i++) out.push(...p.push(replies.subarray(i, i + 1)));
    expected(out);
  });

  it('encodes binary arguments exactly', () => {
    expect(encodeCommand(['SET', Buffer.from([0, 13, 10]), 7]).toString('latin1')).toBe('*3\r\n$3\r\nSET\r\n$3\r\n\x00\r\n\r\n$1\r\n7\r\n');
  });
});

describe('RespClient against redis-server', () => {
  it('logs in with AUTH and round-trips binary values that redis-cli sees identically', async () => {
    const c = await login();
    try {
      const value = Buffer.from([0, 1, 2, 0xff, 13, 10, 0, 0x80]);
      expect(await c.call('SET', 'bin\x00key', value)).toBe('OK');
      expect(((await c.call('GET', 'bin\x00key')) as Buffer).equals(value)).toBe(true);
      await c.call('SET', 'plain', 'hello world');
      const viaCli = await execa('redis-cli', ['-p', String(server.port), 'GET', 'plain'], { env: cleanEnv({ REDISCLI_AUTH: PASSWORD }), extendEnv: false });
      expect(viaCli.stdout).toBe('hello world');
      const info = parseInfo(((await c.call('INFO', 'server')) as Buffer).toString());
      expect(info.redis_version).toMatch(/^\d+\.\d+/);
    } finally {
      await c.close();
    }
  });

  it('pipelines thousands of commands and a multi-megabyte value', async () => {
    const c = await login();
    try {
      const n = 5000;
      const sets = await c.pipeline(Array.from({ length: n }, (_, i) => ['SET', `p:${i}`, `v${i}`]));
      expect(sets.every((r) => r === 'OK')).toBe(true);
      const gets = await c.pipeline(Array.from({ length: n }, (_, i) => ['GET', `p:${i}`]));
      expect(gets.map((b) => (b as Buffer).toString())).toEqual(Array.from({ length: n }, (_, i) => `v${i}`));
      const big = Buffer.alloc(8 << 20, 7);
      await c.call('SET', 'big', big);
      expect(((await c.call('GET', 'big')) as Buffer).equals(big)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('returns error replies in a pipeline without failing the others, and rejects call() with RespError', async () => {
    const c = await login();
    try {
      const r = await c.pipeline([['SET', 'x', '1'], ['INCRBY', 'x', 'notanumber'], ['GET', 'x']]);
      expect(r[0]).toBe('OK');
      expect(r[1]).toBeInstanceOf(RespError);
      expect((r[2] as Buffer).toString()).toBe('1');
      await expect(c.call('NOSUCHCOMMAND')).rejects.toBeInstanceOf(RespError);
    } finally {
      await c.close();
    }
  });

  it('reports a wrong password as WRONGPASS and a missing one as NOAUTH', async () => {
    const c = await RespClient.connect({ host: server.host, port: server.port });
    try {
      await expect(c.call('AUTH', 'wrong')).rejects.toMatchObject({ kind: 'WRONGPASS' });
      await expect(c.call('PING')).rejects.toMatchObject({ kind: 'NOAUTH' });
    } finally {
      await c.close();
    }
  });

  it('fails with a connection error when nothing listens, and fails pending commands when the server goes away', async () => {
    const err = await RespClient.connect({ host: '127.0.0.1', port: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RespConnectionError);
    expect((err as RespConnectionError).code).toBe('ECONNREFUSED');

    const c = await login();
    const victim = await c.call('CLIENT', 'ID');
    const killer = await login();
    // Caught at once: the close can arrive before the killer's own reply, and a rejection
    // nobody is waiting on yet is an unhandled one.
    const pending = c.call('BLPOP', 'never', '0').catch((e: unknown) => e);
    await killer.call('CLIENT', 'KILL', 'ID', String(victim));
    expect(await pending).toBeInstanceOf(RespConnectionError);
    await killer.close();
  });
});
