/**
 * Secrets stay secret (DESIGN §5): database passwords (inline, from ${ENV}, from *_file), an age
 * passphrase and identity, and a webhook URL with its token never appear in any process's argv
 * (sampled from /proc for every process on the host while bk and its tools run), in logs (JSON
 * and pretty, debug level), in error messages of failing runs, in `--json` output, in the
 * notifications received, or in anything written to the storage. A config file holding secrets
 * that other users can read gets a warning.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf, startMariadb, startPostgres, startRedis, type MariadbServer, type PostgresServer, type RedisServer } from '../harness/index.js';
import { runBk, type BkRun } from '../helpers/run-bk.js';
import { startArgvSampler, type ArgvReport } from './argv-sampler.js';
import { localView, sha256File } from './storage-view.js';

/** Hard secrets: characters that need quoting in a shell, a URL, a passfile, SQL and YAML. */
const secret = (tag: string) => `${tag}-${randomBytes(8).toString('hex')}:@/;$(x)'"\\ü`;
const PG_PW = secret('pg');
const MY_PW = secret('my');
const REDIS_PW = secret('rd');
const WRONG_PW = secret('wrong');
const PASSPHRASE = secret('passphrase');
const WEBHOOK_TOKEN = `tok${randomBytes(12).toString('hex')}`;

let work: string;
let pg: PostgresServer;
let my: MariadbServer;
let redis: RedisServer;
let redis2: RedisServer;
let hook: Server;
const hookBodies: string[] = [];
let identity: string;
let config: string;
let repo: string;
const outputs: { what: string; text: string }[] = [];
let argv: ArgvReport;

const allSecrets = () => [PG_PW, MY_PW, REDIS_PW, WRONG_PW, PASSPHRASE, WEBHOOK_TOKEN, identity];

/** Every form a secret can take in text: as is, URL- and JSON-encoded. */
const forms = (s: string) => [...new Set([s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)])];

function leaksIn(text: string): string[] {
  return allSecrets().flatMap((s) => forms(s).filter((f) => text.includes(f)).map((f) => `${f.slice(0, 12)}…`));
}

async function bk(what: string, args: string[], env: Record<string, string> = {}): Promise<BkRun> {
  const r = await runBk([...args, '--config', config], { env: { BK_LOCK_DIR: join(work, 'locks'), BK_TEST_PG_PW: PG_PW, ...env }, cwd: work });
  outputs.push({ what: `${what} (stdout)`, text: r.stdout }, { what: `${what} (stderr)`, text: r.stderr });
  return r;
}

beforeAll(async () => {
  work = await makeTmpDir('bk-secrets-');
  repo = join(work, 'repo');
  [pg, my, redis, redis2] = await Promise.all([startPostgres({ bkPassword: PG_PW }), startMariadb({ bkPassword: MY_PW }), startRedis({ password: REDIS_PW }), startRedis()]);
  // redis-cli --rdb then waits a second for the diskless transfer to start, so the sampler sees it
  // running however fast the transfer itself is on a busy machine.
  await redis.cli(['CONFIG', 'SET', 'repl-diskless-sync', 'yes']);
  await redis.cli(['CONFIG', 'SET', 'repl-diskless-sync-delay', '1']);
  // Enough data that the other tools stream for a while too.
  await redis.cli(['EVAL', "for i = 1, 96 do redis.call('SET', 'k' .. i, string.rep(string.format('%08x', i * 7919), 8192)) end return 1", '0']);
  await pg.createDb('app');
  // A few MB each, so the dump tools live long enough for the sampler to see them.
  await pg.psql('CREATE TABLE t (k text); INSERT INTO t SELECT repeat(md5(g::text), 2048) FROM generate_series(1, 96) g;', 'app');
  await my.query('CREATE DATABASE shop; CREATE TABLE shop.t (k LONGTEXT); INSERT INTO shop.t (k) WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 96) SELECT REPEAT(MD5(n), 2048) FROM s;');
  await mkdir(join(work, 'src'), { recursive: true });
  await writeFile(join(work, 'src', 'a.txt'), 'data\n');
  const keygen = await execa('age-keygen', [], { reject: false });
  identity = keygen.exitCode === 0 ? /AGE-SECRET-KEY-1[0-9A-Z]+/.exec(keygen.stdout)![0] : `AGE-SECRET-KEY-unused-${randomBytes(8).toString('hex')}`;
  const recipient = /public key: (age1[0-9a-z]+)/.exec(keygen.stdout)?.[1];
  await writeFile(join(work, 'age.key'), `${keygen.stdout}\n`, { mode: 0o600 });
  await writeFile(join(work, 'my.pw'), `${MY_PW}\n`, { mode: 0o600 });

  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hookBodies.push(`${req.url}\n${body}`);
      // Refused, so bk also logs a failed notification.
      res.writeHead(req.url?.includes('refuse') ? 500 : 200).end(req.url?.includes('refuse') ? 'no thanks' : 'ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const port = (hook.address() as AddressInfo).port;

  config = join(work, 'backup.config.yaml');
  const q = (s: string) => JSON.stringify(s);
  await writeFile(
    config,
    [
      'storages:',
      '  local:',
      '    type: local',
      `    path: ${q(repo)}`,
      'notifications:',
      `  - { type: webhook, url: ${q(`http://127.0.0.1:${port}/hook/${WEBHOOK_TOKEN}`)}, on: [failure, success] }`,
      `  - { type: webhook, url: ${q(`http://127.0.0.1:${port}/refuse/${WEBHOOK_TOKEN}`)}, on: [failure] }`,
      'targets:',
      '  pg:',
      `    { driver: postgres, host: 127.0.0.1, port: ${pg.port}, user: bk, password: "\${BK_TEST_PG_PW}", database: app }`,
      '  my:',
      `    { driver: mysql, host: 127.0.0.1, port: ${my.port}, user: bk, password_file: ${q(join(work, 'my.pw'))}, database: shop }`,
      '  cache:',
      `    { driver: redis, host: 127.0.0.1, port: ${redis.port}, password: ${q(REDIS_PW)} }`,
      '  files:',
      `    driver: files`,
      `    source: ${q(join(work, 'src'))}`,
      '    encryption:',
      `      passphrase: ${q(PASSPHRASE)}`,
      ...(recipient
        ? ['  files-age:', '    driver: files', `    source: ${q(join(work, 'src'))}`, '    encryption:', `      recipients: [${recipient}]`, `      identity_file: ${q(join(work, 'age.key'))}`]
        : []),
      '  pg-wrong:',
      `    { driver: postgres, host: 127.0.0.1, port: ${pg.port}, user: bk, password: ${q(WRONG_PW)}, database: app }`,
      '  my-wrong:',
      `    { driver: mysql, host: 127.0.0.1, port: ${my.port}, user: bk, password: ${q(WRONG_PW)}, database: shop }`,
      '  cache-wrong:',
      `    { driver: redis, host: 127.0.0.1, port: ${redis.port}, password: ${q(WRONG_PW)} }`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );

  // Everything below runs while every process's command line is sampled.
  const sampler = startArgvSampler({ secrets: allSecrets() });
  try {
    const debug = ['--log-level', 'debug', '--log-format', 'json'];
    await bk('config check', ['config', 'check', '--json', ...debug]);
    const backup = await bk('backup --all', ['backup', '--all', '--json', ...debug]);
    expect(backup.exitCode, backup.stderr).toBe(3); // the *-wrong targets fail
    await bk('backup, pretty logs', ['backup', 'pg', 'my', 'cache', '--log-level', 'debug', '--log-format', 'pretty']);
    await bk('list', ['list', '--json']);
    await bk('verify --all', ['verify', '--all', '--json', ...debug]);
    await bk('status', ['status', '--json']);
    for (const [t, to] of [
      ['pg', 'app_copy'],
      ['my', 'shop_copy'],
      ['cache', `redis://127.0.0.1:${redis2.port}`],
      ['files', join(work, 'restored')],
      ...(recipient ? [['files-age', join(work, 'restored-age')]] : []),
    ] as const) {
      const r = await bk(`restore ${t}`, ['restore', t, '--to', to, '--yes', '--json', ...debug]);
      expect(r.exitCode, `restore ${t}: ${r.stderr}`).toBe(0);
      await bk(`restore ${t} --dry-run`, ['restore', t, '--to', to, '--dry-run', '--json']);
    }
    await bk('verify --restore-test', ['verify', 'pg', '--restore-test', '--json', ...debug]);
  } finally {
    argv = await sampler.stop();
  }
}, 240_000);

afterAll(async () => {
  hook?.close();
  await Promise.all([pg?.stop(), my?.stop(), redis?.stop(), redis2?.stop()]);
  await rmrf(work);
});

describe('secrets', () => {
  it('no secret in any process command line while bk and its tools ran', () => {
    expect(argv.leaks).toEqual([]);
    // The check means something only if the sampler saw the tools that get the passwords.
    for (const tool of ['pg_dump', 'pg_restore', 'redis-cli', 'zstd']) expect(argv.saw(tool), `${tool} never sampled (saw ${argv.names().join(', ')})`).toBe(true);
    expect(argv.saw('mariadb-dump') || argv.saw('mysqldump'), 'the mysql dump tool was never sampled').toBe(true);
    expect(argv.samples).toBeGreaterThan(50);
  });

  it('no secret in logs, error messages or --json output, including failed logins', () => {
    // The wrong-password runs really failed and said why.
    expect(outputs.map((o) => o.text).join('\n')).toMatch(/password authentication failed|Access denied|WRONGPASS|invalid password/i);
    const leaks = outputs.flatMap((o) => leaksIn(o.text).map((l) => `${o.what}: ${l}`));
    expect(leaks).toEqual([]);
  });

  it('no secret in notifications; they were sent, and the refused one was logged without its URL', () => {
    expect(hookBodies.length).toBeGreaterThan(2);
    const bodies = hookBodies.map((b) => b.slice(b.indexOf('\n') + 1));
    expect(bodies.flatMap(leaksIn)).toEqual([]);
    expect(outputs.map((o) => o.text).join('\n')).toMatch(/notification failed/);
  });

  it('no secret in anything written to the storage (manifests, archives of unencrypted targets)', async () => {
    const objects = await localView('local', repo).objects();
    expect(objects.size).toBeGreaterThan(6);
    const leaks: string[] = [];
    for (const key of objects.keys()) {
      const bytes = await readFile(join(repo, key));
      // Archives are compressed: a secret could only show in a manifest or in plain metadata.
      for (const s of allSecrets()) for (const f of forms(s)) if (bytes.includes(Buffer.from(f))) leaks.push(`${key}: ${f.slice(0, 12)}…`);
    }
    expect(leaks).toEqual([]);
    expect(await sha256File(join(work, 'age.key'))).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('a config file holding secrets that others can read', () => {
  const warning = /holds secrets and is readable by other users; run: chmod 600/;

  async function configWith(line: string, mode: number): Promise<string> {
    const file = join(work, `perm-${mode.toString(8)}-${randomBytes(3).toString('hex')}.yaml`);
    await writeFile(file, ['storages:', '  local: { type: local, path: /tmp/bk-never-written }', 'targets:', '  pg:', '    driver: postgres', '    host: 127.0.0.1', line, '    database: app', ''].join('\n'));
    await chmod(file, mode);
    return file;
  }

  it.each([
    ['0644, inline password', '    password: hunter2-inline', 0o644, true],
    ['0640, inline password (group-readable)', '    password: hunter2-inline', 0o640, true],
    ['0604, inline password (world-readable)', '    password: hunter2-inline', 0o604, true],
    ['0600, inline password', '    password: hunter2-inline', 0o600, false],
    ['0644, password from ${ENV}', '    password: ${BK_TEST_UNUSED:-x}', 0o644, false],
    ['0644, password_file', `    password_file: PWFILE`, 0o644, false],
  ])('%s: warned = %s', async (_name, line, mode, warned) => {
    const file = await configWith(line.replace('PWFILE', join(work, 'my.pw')), mode);
    const r = await runBk(['cron', '--config', file], { env: { BK_LOCK_DIR: join(work, 'locks') }, cwd: work });
    if (warned) expect(r.stderr).toMatch(warning);
    else expect(r.stderr).not.toMatch(warning);
    expect(r.stderr).not.toContain('hunter2-inline');
  });
});
