// Options → endpoint → what each client gets: URLs parsed, conflicts refused, the password only in
// REDISCLI_AUTH (never in redis-cli's arguments), ad-hoc flags turned into options.
import { describe, expect, it } from 'vitest';
import { resolveTarget } from '../../src/config/resolve.js';
import { cliArgs, cliEnv, describeEndpoint, endpointUrl, parseRedisUrl, resolveEndpoint } from '../../src/drivers/redis-endpoint.js';
import { atLeast, redisAdHoc, RedisDriver, redisOptionsSchema } from '../../src/drivers/redis.js';
import { redact } from '../../src/secrets.js';

describe('parseRedisUrl', () => {
  it('reads host, port, user and a percent-encoded password', () => {
    expect(parseRedisUrl('redis://app:p%40ss%2Fw@cache.internal:6380/0', 'url')).toEqual({ host: 'cache.internal', port: 6380, user: 'app', password: 'p@ss/w' });
    expect(redact('login p@ss/w')).toBe('login ***');
  });

  it('turns on TLS for rediss:// and reads unix sockets and IPv6 hosts', () => {
    expect(parseRedisUrl('rediss://h', 'url')).toEqual({ host: 'h', tls: true });
    expect(parseRedisUrl('unix:///run/redis/redis.sock', 'url')).toEqual({ socket: '/run/redis/redis.sock' });
    expect(parseRedisUrl('redis://[::1]:7000', 'url')).toEqual({ host: '::1', port: 7000 });
  });

  it('refuses other schemes, query parameters and odd paths, naming the key', () => {
    expect(() => parseRedisUrl('http://h', 'targets.c.url')).toThrow(/targets\.c\.url: unsupported scheme/);
    expect(() => parseRedisUrl('redis://h?ssl=true', 'url')).toThrow(/query parameters/);
    expect(() => parseRedisUrl('redis://h/x', 'url')).toThrow(/unexpected path/);
    expect(() => parseRedisUrl('not a url', 'url')).toThrow(/not a URL/);
  });
});

describe('resolveEndpoint', () => {
  it('fills in from separate keys and refuses the same thing set twice', () => {
    expect(resolveEndpoint({ url: 'redis://h:1', password: 'pw-x' }, 't')).toMatchObject({ host: 'h', port: 1, password: 'pw-x' });
    expect(() => resolveEndpoint({ url: 'redis://:a@h', password: 'b' }, 'targets.c')).toThrow(/targets\.c: password is set both in url and as password/);
    expect(() => resolveEndpoint({ socket: '/s', host: 'h' }, 't')).toThrow(/socket and host/);
  });

  it('combines rediss:// with tls settings, and refuses tls: false with rediss://', () => {
    expect(resolveEndpoint({ url: 'rediss://h', tls: { cacert: '/ca.pem' } }, 't').tls).toEqual({ cacert: '/ca.pem' });
    expect(() => resolveEndpoint({ url: 'rediss://h', tls: false }, 't')).toThrow(/tls: false/);
  });

  it('defaults to 127.0.0.1:6379 without TLS', () => {
    expect(resolveEndpoint({}, 't')).toEqual({ host: '127.0.0.1', port: 6379 });
  });
});

describe('redis-cli arguments and environment', () => {
  const ep = resolveEndpoint({ host: 'db', port: 6390, user: 'backup', password: 'hunter2-pw', tls: { cacert: '/ca', cert: '/c', key: '/k', sni: 'name', insecure: true } }, 't');

  it('carry host, user and every TLS setting, never the password', () => {
    const args = cliArgs(ep);
    expect(args).toEqual(['-h', 'db', '-p', '6390', '--user', 'backup', '--tls', '--cacert', '/ca', '--cert', '/c', '--key', '/k', '--sni', 'name', '--insecure']);
    expect(args.join(' ')).not.toContain('hunter2-pw');
    expect(args).not.toContain('-a');
    expect(cliEnv(ep)).toEqual({ REDISCLI_AUTH: 'hunter2-pw' });
  });

  it('remove an inherited REDISCLI_AUTH when there is no password', () => {
    expect(cliEnv(resolveEndpoint({}, 't'))).toEqual({ REDISCLI_AUTH: undefined });
  });

  it('describe the endpoint without the password', () => {
    expect(describeEndpoint(ep)).toBe('backup@db:6390 (TLS)');
    expect(endpointUrl(ep)).toBe('rediss://backup@db:6390');
    expect(cliArgs(resolveEndpoint({ socket: '/run/redis.sock' }, 't'))).toEqual(['-s', '/run/redis.sock']);
  });
});

describe('options', () => {
  it('are strict and name the key path of a mistake', () => {
    expect(() => resolveTarget('cache', { driver: 'redis', prot: 6379 }, {}, {}, undefined, true)).toThrow(/targets\.cache: unknown key prot/);
    expect(() => resolveTarget('cache', { driver: 'redis', mode: 'copy' }, {}, {}, undefined, true)).toThrow(/targets\.cache\.mode/);
  });

  it('accept a port from an environment variable (a string)', () => {
    expect(redisOptionsSchema.parse({ driver: 'redis', port: '6380' }).port).toBe(6380);
  });

  it('describe the restore destination with what happens to it', () => {
    const d = new RedisDriver('cache', redisOptionsSchema.parse({ driver: 'redis', port: 6380, data_dir: '/var/lib/redis' }));
    expect(d.describeRestoreTarget()).toBe('redis 127.0.0.1:6380 (live: FLUSHALL, then every key of the backup with its TTL)');
    expect(d.describeRestoreTarget('redis://other:7000')).toContain('redis other:7000');
    expect(d.describeRestoreTarget(undefined, { mode: 'file' })).toBe('/var/lib/redis/dump.rdb (file: the server must not be running)');
    const merge = new RedisDriver('cache', redisOptionsSchema.parse({ driver: 'redis', flush_before_restore: false }));
    expect(merge.describeRestoreTarget()).toContain('other keys stay');
  });
});

describe('ad hoc', () => {
  it('defaults to 127.0.0.1:6379 with the password from REDISCLI_AUTH', () => {
    expect(redisAdHoc({}, { REDISCLI_AUTH: 'envpw' })).toEqual({ driver: 'redis', host: '127.0.0.1', port: 6379, password: 'envpw' });
    expect(redisAdHoc({}, {})).toEqual({ driver: 'redis', host: '127.0.0.1', port: 6379 });
  });

  it('takes --source as a URL, host:port or socket; a URL password wins over REDISCLI_AUTH', () => {
    expect(redisAdHoc({ source: 'redis://h:7000' }, { REDISCLI_AUTH: 'envpw' })).toEqual({ driver: 'redis', url: 'redis://h:7000', password: 'envpw' });
    expect(redisAdHoc({ source: 'redis://:own@h:7000' }, { REDISCLI_AUTH: 'envpw' })).toEqual({ driver: 'redis', url: 'redis://:own@h:7000' });
    expect(redisAdHoc({ source: 'cache.internal:6390' }, {})).toEqual({ driver: 'redis', host: 'cache.internal', port: 6390 });
    expect(redisAdHoc({ source: '/run/redis.sock' }, {})).toEqual({ driver: 'redis', socket: '/run/redis.sock' });
    expect(redisAdHoc({ source: 'a b c' }, {})).toMatch(/--source a b c/);
  });
});

describe('atLeast', () => {
  it('compares tool versions', () => {
    expect(atLeast('redis-cli 7.0.15', [5, 0, 3])).toBe(true);
    expect(atLeast('redis-cli 5.0.3', [5, 0, 3])).toBe(true);
    expect(atLeast('redis-cli 5.0.2', [5, 0, 3])).toBe(false);
    expect(atLeast('redis-cli 4.0.9', [5, 0, 3])).toBe(false);
    expect(atLeast('redis-cli 10.1', [5, 0, 3])).toBe(true);
  });
});
