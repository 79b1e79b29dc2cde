// The redis driver end to end: real servers from the harness, backups through bin/bk.js, restores
// into other servers compared key by key (type, DUMP payload, TTL), file-mode backup and restore,
// a restore drill, and the failures that must leave no listed backup. Passwords are checked
// against every process's argv while bk runs, and against bk's output and the manifest.
import { execa, type ResultPromise } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, makeTmpDir, rmrf, startRedis, type RedisServer } from '../harness/index.js';
import { runBk, spawnBk, type BkRun } from '../helpers/run-bk.js';
import { silentLogger } from '../../src/log.js';
import { RedisDriver, redisOptionsSchema, type RedisChecks } from '../../src/drivers/redis.js';
import { asText, RespClient, type RespValue } from '../../src/drivers/redis-resp.js';

const SRC_PW = `src-Pw-${process.pid}-x9`;
const DST_PW = `dst-Pw-${process.pid}-y7`;
const BULK_KEYS = 100_000;
/** Expiry times may differ by the copy's latency (a live restore copies the remaining TTL). */
const TTL_TOLERANCE_MS = 2_000;

let tmp: string;
let repo: string;
let configPath: string;
let src: RedisServer;
let dst: RedisServer;
let victim: RedisServer;
let hooked: RedisServer;
/** The daemonized redis-server that start_command launches in the stop/start test. */
let hookedRestartPidfile: string;

const env = () => ({ SRC_PW });
const bk = (args: string[], extra: Record<string, string> = {}): Promise<BkRun> => runBk(['--config', configPath, ...args], { env: { ...env(), ...extra }, cwd: tmp });

async function login(host: string, port: number, password?: string): Promise<RespClient> {
  const c = await RespClient.connect({ host, port });
  if (password) await c.call('AUTH', password);
  return c;
}

async function cliPipe(server: RedisServer, password: string, commands: string[][]): Promise<void> {
  const proto = commands.map((args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`).join('');
  await execa('redis-cli', ['-p', String(server.port), '--pipe'], { input: proto, env: cleanEnv({ REDISCLI_AUTH: password }), extendEnv: false });
}

/**
 * Every key of every database: type, encoding, value and expiry, read with pipelining. The value
 * is the DUMP payload, except for sets and hashes, whose hash-table order (and so their DUMP
 * bytes) depends on insertion history: for those, the sorted members. The expiry is PEXPIRETIME
 * (absolute ms, -1 for none), so snapshots taken at different times compare.
 */
type Snapshot = Map<string, { type: string; encoding: string; dump: Buffer; pttl: number }>;
async function snapshot(c: RespClient): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const info = asText(await c.call('INFO', 'keyspace'));
  const dbs = [...info.matchAll(/^db(\d+):/gm)].map((m) => Number(m[1]));
  for (const db of dbs) {
    await c.call('SELECT', db);
    let cursor = '0';
    do {
      const [next, keys] = (await c.call('SCAN', cursor, 'COUNT', 2000)) as [Buffer, Buffer[]];
      cursor = next.toString();
      const replies = await c.pipeline(keys.flatMap((k) => [['TYPE', k], ['OBJECT', 'ENCODING', k], ['DUMP', k], ['PEXPIRETIME', k]]));
      const unordered = keys.filter((_, i) => replies[4 * i] === 'set' || replies[4 * i] === 'hash');
      const members = await c.pipeline(unordered.map((k) => [replies[4 * keys.indexOf(k)] === 'set' ? 'SMEMBERS' : 'HGETALL', k]));
      const canonical = new Map(unordered.map((k, i) => [k.toString('hex'), sortedMembers(members[i] as Buffer[], replies[4 * keys.indexOf(k)] === 'hash')]));
      keys.forEach((k, i) => {
        const hex = k.toString('hex');
        out.set(`${db}/${hex}`, {
          type: replies[4 * i] as string,
          encoding: asText(replies[4 * i + 1]!),
          dump: canonical.get(hex) ?? (replies[4 * i + 2] as Buffer),
          pttl: replies[4 * i + 3] as number,
        });
      });
    } while (cursor !== '0');
  }
  await c.call('SELECT', 0);
  return out;
}

/** Members (or field/value pairs) in a fixed order, as one buffer. */
function sortedMembers(items: Buffer[], pairs: boolean): Buffer {
  const entries: string[] = [];
  for (let i = 0; i < items.length; i += pairs ? 2 : 1) entries.push(pairs ? `${items[i]!.toString('hex')}=${items[i + 1]!.toString('hex')}` : items[i]!.toString('hex'));
  return Buffer.from(entries.sort().join(','));
}

function expectSameData(actual: Snapshot, expected: Snapshot): void {
  expect(actual.size).toBe(expected.size);
  let withTtl = 0;
  for (const [key, want] of expected) {
    const got = actual.get(key);
    if (!got) throw new Error(`key ${key} missing after restore`);
    if (got.type !== want.type || got.encoding !== want.encoding || !got.dump.equals(want.dump)) throw new Error(`key ${key} differs after restore (${want.type}/${want.encoding} → ${got.type}/${got.encoding})`);
    if (want.pttl === -1) {
      if (got.pttl !== -1) throw new Error(`key ${key} gained a TTL (${got.pttl} ms)`);
    } else {
      withTtl++;
      if (Math.abs(got.pttl - want.pttl) > TTL_TOLERANCE_MS) throw new Error(`key ${key}: expires at ${got.pttl}, expected about ${want.pttl}`);
    }
  }
  expect(withTtl).toBeGreaterThan(BULK_KEYS / 10 - 1);
}

/**
 * Samples argv while bk runs: bk and its descendants every 2 ms (walking /proc/<pid>/task/<tid>/children,
 * which is cheap), and every process on the machine every 50 ms. Returns argvs holding a password,
 * and the redis commands seen (so a test can tell the sampling caught the child it cares about).
 */
async function watchArgv(run: ResultPromise): Promise<{ leaks: string[]; commands: string[] }> {
  let done = false;
  void run.finally(() => {
    done = true;
  });
  const leaks: string[] = [];
  const commands = new Set<string>();
  const look = (pid: string) => {
    let argv: string;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`).toString().split('\0').join(' ');
    } catch {
      return;
    }
    if (argv.includes(SRC_PW) || argv.includes(DST_PW)) leaks.push(argv);
    if (/redis-cli|redis-server|\/bin\/sh/.test(argv)) commands.add(argv.trim());
  };
  const descendants = (pid: string): string[] => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      return [];
    }
    const children = tasks.flatMap((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean);
      } catch {
        return [];
      }
    });
    return [...children, ...children.flatMap(descendants)];
  };
  let lastFullScan = 0;
  while (!done) {
    const root = String(run.pid);
    for (const pid of [root, ...descendants(root)]) look(pid);
    if (Date.now() - lastFullScan > 50) {
      lastFullScan = Date.now();
      for (const pid of readdirSync('/proc')) if (/^\d+$/.test(pid)) look(pid);
    }
    await sleep(2);
  }
  await run;
  return { leaks, commands: [...commands] };
}

async function listIds(target: string): Promise<string[]> {
  const r = await bk(['--json', 'list', target]);
  expect(r.exitCode).toBe(0);
  return r.json<{ backups: { id: string; target: string }[] }>().backups.filter((b) => b.target === target).map((b) => b.id);
}

async function seedFixtures(c: RespClient): Promise<void> {
  const binary = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37) % 256));
  binary[0] = 0;
  const cmds: (string | Buffer | number)[][] = [
    ['SET', 'plain', 'hello'],
    ['SET', Buffer.from('bin\x00key\xff', 'latin1'), binary],
    ['SET', 'big', Buffer.alloc(300_000, 'z')],
    ['SET', 'counter', '12345'],
    ['HSET', 'h:small', 'a', '1', 'b', Buffer.from([0, 0, 1])],
    ['HSET', 'h:big', ...Array.from({ length: 1000 }, (_, i) => [`f${i}`, `v${i}`]).flat()],
    ['RPUSH', 'l:small', 'x', 'y', 'z'],
    ['RPUSH', 'l:big', ...Array.from({ length: 10_000 }, (_, i) => `item-${i}`)],
    ['SADD', 's:ints', '1', '2', '3', '100000'],
    ['SADD', 's:strs', 'alpha', 'beta', Buffer.from([0xff, 0])],
    ['SADD', 's:big', ...Array.from({ length: 2000 }, (_, i) => `m${i}`)],
    ['ZADD', 'z:small', '1.5', 'a', '-inf', 'low', '+inf', 'high', '1e-10', 'tiny'],
    ['ZADD', 'z:big', ...Array.from({ length: 1000 }, (_, i) => [String(i / 7), `m${i}`]).flat()],
    ['SET', 'ttl:long', 'v', 'EX', '3600'],
    ['SET', 'ttl:px', 'v', 'PX', '600000'],
    ['HSET', 'ttl:hash', 'f', 'v'],
    ['EXPIRE', 'ttl:hash', '1800'],
  ];
  for (let i = 0; i < 100; i++) cmds.push(['XADD', 'events', '*', 'n', String(i), 'payload', Buffer.from([i, 0, 255])]);
  cmds.push(['XGROUP', 'CREATE', 'events', 'workers', '0'], ['XREADGROUP', 'GROUP', 'workers', 'alice', 'COUNT', '10', 'STREAMS', 'events', '>']);
  cmds.push(['SELECT', '1'], ['SET', 'plain', 'db1 value'], ['RPUSH', 'db1:list', 'a', 'b'], ['SET', 'db1:ttl', 'x', 'EX', '7200']);
  cmds.push(['SELECT', '5'], ['HSET', 'db5:h', 'k', 'v'], ['SET', 'db5:ttl', 'y', 'EX', '900'], ['SELECT', '0']);
  cmds.push(['FUNCTION', 'LOAD', "#!lua name=bklib\nredis.register_function('bkecho', function(keys, args) return args[1] end)"]);
  const replies = await c.pipeline(cmds);
  const errors = replies.filter((r) => r instanceof Error);
  if (errors.length) throw new Error(`seeding failed: ${errors.map(String).join('; ')}`);
}

beforeAll(async () => {
  tmp = await makeTmpDir('bk-redis-e2e-');
  repo = join(tmp, 'repo');
  [src, dst, victim, hooked] = await Promise.all([startRedis({ password: SRC_PW }), startRedis({ password: DST_PW }), startRedis({ password: SRC_PW }), startRedis({ password: SRC_PW })]);
  for (const s of [src, victim, hooked]) await s.cli(['CONFIG', 'SET', 'repl-diskless-sync-delay', '0']);

  const c = await login(src.host, src.port, SRC_PW);
  await seedFixtures(c);
  await c.close();
  const bulk: string[][] = [];
  for (let i = 0; i < BULK_KEYS; i++) bulk.push(i % 10 === 0 ? ['SET', `k:${i}`, `value-${i}`, 'EX', String(3600 + i)] : ['SET', `k:${i}`, `value-${i}`]);
  await cliPipe(src, SRC_PW, bulk);
  await cliPipe(victim, SRC_PW, Array.from({ length: 20_000 }, (_, i) => ['SET', `v:${i}`, 'x'.repeat(100)]));
  await victim.cli(['ACL', 'SETUSER', 'backup', 'on', `>${SRC_PW}`, '~*', '&*', '+@all']);
  await victim.cli(['ACL', 'SETUSER', 'nosync', 'on', `>${SRC_PW}`, '~*', '&*', '+@all', '-sync', '-psync']);
  await cliPipe(hooked, SRC_PW, [['SET', 'before', '1'], ['SET', 'ttl', 'x', 'EX', '5000'], ['SELECT', '2'], ['SET', 'db2', 'y']]);

  hookedRestartPidfile = join(tmp, 'hooked-restart.pid');
  const restartConf = join(tmp, 'hooked-restart.conf');
  await writeFile(
    restartConf,
    [`port ${hooked.port}`, 'bind 127.0.0.1', `dir "${hooked.dir}"`, 'save ""', 'appendonly no', 'repl-diskless-sync-delay 0', `requirepass "${SRC_PW}"`, `pidfile "${hookedRestartPidfile}"`, `logfile "${join(tmp, 'hooked-restart.log')}"`, 'daemonize yes', ''].join('\n'),
    { mode: 0o600 },
  );

  configPath = join(tmp, 'backup.config.yaml');
  const base = (port: number) => `driver: redis\n    host: 127.0.0.1\n    port: ${port}\n    password: \${SRC_PW}`;
  await writeFile(
    configPath,
    `storages:
  local:
    type: local
    path: ${repo}
targets:
  cache:
    ${base(src.port)}
  cachefile:
    ${base(src.port)}
    mode: file
  wrongpw:
    driver: redis
    url: redis://127.0.0.1:${src.port}
    password: not-the-password
  down:
    driver: redis
    port: ${victim.port + 0}
    host: 127.0.0.2
  victim:
    ${base(victim.port)}
  acl:
    driver: redis
    url: redis://backup@127.0.0.1:${victim.port}
    password: \${SRC_PW}
  nosync:
    driver: redis
    url: redis://nosync@127.0.0.1:${victim.port}
    password: \${SRC_PW}
  hooked:
    ${base(hooked.port)}
    stop_command: redis-cli -p ${hooked.port} shutdown nosave
    start_command: [redis-server, ${restartConf}]
`,
    { mode: 0o600 },
  );
}, 120_000);

afterAll(async () => {
  if (hookedRestartPidfile && existsSync(hookedRestartPidfile)) {
    await execa('redis-cli', ['-p', String(hooked.port), 'shutdown', 'nosave'], { env: cleanEnv({ REDISCLI_AUTH: SRC_PW }), extendEnv: false, reject: false });
  }
  await Promise.all([src, dst, victim, hooked].map((s) => s?.stop()));
  await rmrf(tmp);
});

describe('redis driver', () => {
  let cacheId: string;
  let sourceData: Snapshot;

  it('backs up over the replication protocol without a password in any argv, output or manifest', async () => {
    const c = await login(src.host, src.port, SRC_PW);
    sourceData = await snapshot(c);
    // Slow the snapshot down so redis-cli is alive long enough to be seen in /proc: a negative
    // delay -N sleeps 1 µs (really a scheduler tick) for one key in N (debug.c debugDelay).
    await c.call('CONFIG', 'SET', 'rdb-key-save-delay', '-40');
    try {
      const run = spawnBk(['--config', configPath, '--json', 'backup', 'cache'], { env: env(), cwd: tmp });
      const seen = await watchArgv(run);
      const r = await run;
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(seen.leaks).toEqual([]);
      expect(seen.commands.some((cmd) => /redis-cli .*--rdb -/.test(cmd))).toBe(true);
      expect(String(r.stdout) + String(r.stderr)).not.toContain(SRC_PW);
      cacheId = JSON.parse(String(r.stdout)).results[0].id;
    } finally {
      await c.call('CONFIG', 'SET', 'rdb-key-save-delay', '0');
      await c.close();
    }
    const manifestText = await readFile(join(repo, 'cache', `${cacheId}.manifest.json`), 'utf8');
    expect(manifestText).not.toContain(SRC_PW);
    const manifest = JSON.parse(manifestText);
    expect(manifest.driver).toBe('redis');
    expect(manifest.serverVersion).toMatch(/^\d+\.\d+/);
    expect(manifest.tools[0].name).toBe('redis-cli');
    expect(manifest.checks.keys).toBe(sourceData.size);
    expect(Object.keys(manifest.checks.keyspace).sort()).toEqual(['db0', 'db1', 'db5']);
    expect(manifest.extra).toMatchObject({ mode: 'replication', rdbChecksum: 'ok', keyspaceStable: true });
    expect(await listIds('cache')).toEqual([cacheId]);
  });

  it('restores live into another server (--to) equal key by key, TTLs kept, source untouched', async () => {
    const d = await login(dst.host, dst.port, DST_PW);
    await d.call('SET', 'stale', 'must disappear');
    const run = spawnBk(['--config', configPath, 'restore', 'cache', '--to', `redis://127.0.0.1:${dst.port}`, '--yes'], { env: { ...env(), REDISCLI_AUTH: DST_PW }, cwd: tmp });
    const seen = await watchArgv(run);
    const r = await run;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(seen.leaks).toEqual([]);
    expect(String(r.stdout) + String(r.stderr)).not.toMatch(new RegExp(`${SRC_PW}|${DST_PW}`));

    expectSameData(await snapshot(d), sourceData);
    expect(await d.call('EXISTS', 'stale')).toBe(0);
    // Typed reads of the tricky values, independent of DUMP payloads.
    expect(((await d.call('GET', Buffer.from('bin\x00key\xff', 'latin1'))) as Buffer).subarray(0, 4)).toEqual(Buffer.from([0, 37, 74, 111]));
    expect(asText(await d.call('FCALL', 'bkecho', 0, 'hi'))).toBe('hi');
    const groups = (await d.call('XINFO', 'GROUPS', 'events')) as RespValue[][];
    expect(groups).toHaveLength(1);
    const group = new Map<string, RespValue>();
    for (let i = 0; i < groups[0]!.length; i += 2) group.set(asText(groups[0]![i]!), groups[0]![i + 1]!);
    expect(asText(group.get('name')!)).toBe('workers');
    expect(group.get('pending')).toBe(10);
    await d.call('SELECT', 1);
    expect(asText(await d.call('GET', 'plain'))).toBe('db1 value');
    await d.close();

    const s = await login(src.host, src.port, SRC_PW);
    expect(await s.call('EXISTS', 'stale')).toBe(0);
    expect(await s.call('DBSIZE')).toBe(sourceData.size - 5); // db1 and db5 hold the other five keys
    await s.close();
  });

  it('backs up with BGSAVE (mode file) and restores the file into a stopped server\'s data dir', async () => {
    const r = await bk(['--json', 'backup', 'cachefile']);
    expect(r.exitCode, r.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(join(repo, 'cachefile', `${r.json<{ results: { id: string }[] }>().results[0]!.id}.manifest.json`), 'utf8'));
    expect(manifest.extra).toMatchObject({ mode: 'file', rdbChecksum: 'ok', file: join(src.dir, 'dump.rdb') });

    const dir = join(tmp, 'file-restore');
    const restore = await bk(['restore', 'cachefile', '--mode', 'file', '--to', dir, '--yes']);
    expect(restore.exitCode, restore.stderr).toBe(0);
    const restored = await startRedis({ dir });
    try {
      const c = await login(restored.host, restored.port);
      expectSameData(await snapshot(c), sourceData);
      await c.close();
    } finally {
      await restored.stop();
    }
  });

  it('refuses a file-mode restore under a running server without stop/start commands', async () => {
    const before = await src.cli(['DBSIZE']);
    const r = await bk(['restore', 'cachefile', '--mode', 'file', '--yes']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/is running .* would overwrite/);
    expect(r.stdout + r.stderr).toMatch(/stop_command and start_command|--mode live/);
    expect(await src.cli(['DBSIZE'])).toBe(before);
  });

  it('restores in file mode with stop_command and start_command', async () => {
    const backup = await bk(['--json', 'backup', 'hooked']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const c = await login(hooked.host, hooked.port, SRC_PW);
    const expected = await snapshot(c);
    await c.call('SET', 'after', 'written after the backup');
    await c.call('DEL', 'before');
    // The dump.rdb the restore replaces, kept as dump.rdb.before-restore. The backup's fork may
    // still be finishing ("Background save already in progress"): try again until it is done.
    for (let i = 0; ; i++) {
      const saved = await c.call('SAVE').catch((e: unknown) => e);
      if (saved === 'OK') break;
      if (i > 100) throw saved;
      await sleep(100);
    }
    await c.close();

    const run = spawnBk(['--config', configPath, 'restore', 'hooked', '--mode', 'file', '--yes'], { env: env(), cwd: tmp });
    const seen = await watchArgv(run);
    const r = await run;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(seen.leaks).toEqual([]);
    expect(existsSync(join(hooked.dir, 'dump.rdb.before-restore'))).toBe(true);

    const back = await login(hooked.host, hooked.port, SRC_PW);
    expectSameKeys(await snapshot(back), expected);
    expect(await back.call('EXISTS', 'after')).toBe(0);
    await back.close();
  });

  it('estimates a first backup\'s size from the dataset\'s memory, at least the RDB\'s size', async () => {
    const driver = new RedisDriver('cache', redisOptionsSchema.parse({ driver: 'redis', port: src.port, password: SRC_PW }));
    const estimate = await driver.estimateSize({ signal: new AbortController().signal, logger: silentLogger });
    const session = await driver.backup({ signal: new AbortController().signal, logger: silentLogger });
    let rdbBytes = 0;
    for await (const chunk of session.stream) rdbBytes += (chunk as Buffer).length;
    await session.done;
    expect(rdbBytes).toBeGreaterThan(0);
    expect(estimate).toBeGreaterThanOrEqual(rdbBytes);
    const wrong = new RedisDriver('bad', redisOptionsSchema.parse({ driver: 'redis', port: src.port, password: 'nope-nope' }));
    await expect(wrong.estimateSize({ signal: new AbortController().signal, logger: silentLogger })).rejects.toThrow(/cannot log in/);
  });

  it('runs a restore drill: temporary server, inspect() equal to the recorded checks, dispose() cleans up', async () => {
    const driver = new RedisDriver('cache', redisOptionsSchema.parse({ driver: 'redis', port: src.port, password: SRC_PW }));
    const session = await driver.backup({ signal: new AbortController().signal, logger: silentLogger });
    const drill = await driver.prepareDrill({ signal: new AbortController().signal, logger: silentLogger, options: {} });
    try {
      await driver.restore(session.stream, { signal: new AbortController().signal, logger: silentLogger, to: drill.to, options: {}, dumpInfo: { tools: [] } });
      const info = await session.done;
      const found = (await drill.inspect()) as RedisChecks;
      expect(found.keys).toBe((info.checks as RedisChecks).keys);
      expect(Object.keys(found.keyspace).sort()).toEqual(Object.keys((info.checks as RedisChecks).keyspace).sort());
      expect(found.keyspace.db0!.keys).toBe((info.checks as RedisChecks).keyspace.db0!.keys);
    } finally {
      await drill.dispose();
    }
    const socketPath = drill.to.replace(/^unix:\/\//, '');
    expect(existsSync(socketPath)).toBe(false);
  });

  it('check() reports tool, login and server; a wrong password fails the login check', async () => {
    const good = await new RedisDriver('cache', redisOptionsSchema.parse({ driver: 'redis', port: src.port, password: SRC_PW })).check();
    expect(good.filter((r) => !r.ok)).toEqual([]);
    expect(good.find((r) => r.name === 'redis-cli')?.detail).toMatch(/redis-cli \d/);
    const bad = await new RedisDriver('bad', redisOptionsSchema.parse({ driver: 'redis', port: src.port, password: 'nope-nope' })).check();
    expect(bad.find((r) => r.name === 'login')?.ok).toBe(false);
    expect(bad.find((r) => r.name === 'server')?.detail).toMatch(/cannot log in/);
  });

  it('backs up and restores ad hoc: --url redis://… with REDISCLI_AUTH, no config', async () => {
    const adhocRepo = join(tmp, 'adhoc');
    // A directory with no backup.config.yaml above it (bk would find the one in `tmp`).
    const cwd = await makeTmpDir('bk-redis-adhoc-');
    const b = await runBk(['--repo', adhocRepo, 'backup', 'redis', '--url', `redis://127.0.0.1:${hooked.port}`], { env: { REDISCLI_AUTH: SRC_PW }, cwd });
    expect(b.exitCode, b.stderr).toBe(0);
    const l = await runBk(['--repo', adhocRepo, '--json', 'list'], { cwd });
    expect(l.json<{ backups: { target: string }[] }>().backups.map((x) => x.target)).toEqual(['redis']);
    const fresh = await startRedis();
    try {
      const r = await runBk(['--repo', adhocRepo, 'restore', 'redis', '--to', `127.0.0.1:${fresh.port}`, '--yes'], { cwd });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await fresh.cli(['GET', 'before'])).toBe('1');
      expect(Number(await fresh.cli(['TTL', 'ttl']))).toBeGreaterThan(4000);
      expect(await fresh.cli(['-n', '2', 'GET', 'db2'])).toBe('y');
    } finally {
      await fresh.stop();
    }
  });

  it('fails on a wrong password: non-zero exit, a clear message, no listed backup', async () => {
    const r = await bk(['backup', 'wrongpw']);
    expect(r.exitCode).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/cannot log in to source 127\.0\.0\.1:\d+: WRONGPASS/);
    expect(out).toMatch(/fix: check password/);
    expect(out).not.toContain('not-the-password');
    expect(await listIds('wrongpw')).toEqual([]);
  });

  it('fails when the server is down: non-zero exit, what to check, no listed backup', async () => {
    const r = await bk(['backup', 'down']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/cannot connect to source 127\.0\.0\.2:\d+: connection refused/);
    expect(r.stdout + r.stderr).toMatch(/fix: is redis running there/);
    expect(await listIds('down')).toEqual([]);
  });

  it('fails when redis-cli is missing: exit 1, what to install, no new backup', async () => {
    const before = await listIds('cache');
    await mkdir(join(tmp, 'empty-bin'), { recursive: true });
    const r = await bk(['backup', 'cache'], { PATH: join(tmp, 'empty-bin') });
    expect(r.exitCode).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/cache: .*redis-cli not found[\s\S]*fix: install redis-cli/);
    expect(r.stdout + r.stderr).not.toMatch(/\n\s+at /);
    expect(await listIds('cache')).toEqual(before);
  });

  it('logs in as an ACL user (--user, REDISCLI_AUTH); one without SYNC fails with what to grant', async () => {
    const ok = await bk(['--json', 'backup', 'acl']);
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0);
    const denied = await bk(['backup', 'nosync']);
    expect(denied.exitCode).toBe(1);
    expect(denied.stdout + denied.stderr).toMatch(/NOPERM/);
    expect(denied.stdout + denied.stderr).toMatch(/fix: the ACL user needs the SYNC permission/);
    expect(await listIds('nosync')).toEqual([]);
  });

  it('fails when the server dies mid-transfer: no listed backup', async () => {
    await victim.cli(['CONFIG', 'SET', 'rdb-key-save-delay', '200']); // 20k keys × 200 µs ≈ 4 s
    const run = spawnBk(['--config', configPath, 'backup', 'victim'], { env: env(), cwd: tmp });
    // Kill once redis-cli is streaming.
    for (let i = 0; i < 500; i++) {
      const streaming = readdirSync('/proc').some((pid) => {
        try {
          return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/cmdline`).toString().includes(`${victim.port}\0--rdb`);
        } catch {
          return false;
        }
      });
      if (streaming) break;
      await sleep(10);
    }
    await sleep(300);
    await victim.kill();
    const r = await run;
    expect(r.exitCode).toBe(1);
    expect(String(r.stdout) + String(r.stderr)).toMatch(/redis-cli (exited|was killed)|cut short|EOF marker|truncated/);
    expect(await listIds('victim')).toEqual([]);
    expect(existsSync(join(repo, 'victim')) ? readdirSync(join(repo, 'victim')).filter((f) => f.endsWith('.manifest.json')) : []).toEqual([]);
  });
});

/** Same keys, types and payloads; TTLs within tolerance (no bulk-TTL count, for small datasets). */
function expectSameKeys(actual: Snapshot, expected: Snapshot): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, want] of expected) {
    const got = actual.get(key)!;
    expect(got.type).toBe(want.type);
    expect(got.encoding).toBe(want.encoding);
    expect(got.dump.equals(want.dump)).toBe(true);
    expect(want.pttl === -1 ? got.pttl === -1 : Math.abs(got.pttl - want.pttl) < TTL_TOLERANCE_MS).toBe(true);
  }
}
