// MySQL/MariaDB driver against a throwaway MariaDB server, end to end through bin/bk.js: seed a
// realistic schema, back up as the `bk` user with a password over TCP, restore elsewhere and in
// place, and compare the restored data with the source — rows, DDL, routines, triggers, events,
// views. Failures (wrong password, server killed mid-dump, an SQL error during restore) must
// exit non-zero and leave no listed backup; the password must never show in any child's argv.
import { execa } from 'execa';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { MysqlDriver, mysqlOptionsSchemaFor } from '../../src/drivers/mysql.js';
import type { Driver } from '../../src/drivers/driver.js';
import { runBackup } from '../../src/engine/backup.js';
import { silentLogger } from '../../src/log.js';
import { LocalStorage } from '../../src/storage/local.js';
import { cleanEnv, freePort, makeTmpDir, mariadbString, rmrf, startMariadb, type MariadbServer } from '../harness/index.js';
import { runBk, spawnBk } from '../helpers/run-bk.js';

const PASSWORD = `s3cr3t "pa'ss" \\ w#rd;$x`;
const ENV = { MYSQL_TEST_PW: PASSWORD };

let db: MariadbServer;
/** A second server, with a binary log; killed mid-dump by the last test. */
let victim: MariadbServer;
let dir: string;
let store: string;
let cfg: string;

const SEED = `
SET NAMES utf8mb4;
CREATE DATABASE app CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE app;
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  note TEXT NULL,
  balance DECIMAL(14,4),
  created DATETIME(6),
  meta JSON,
  name_len INT AS (CHAR_LENGTH(name)) STORED
);
INSERT INTO customers (name, note, balance, created, meta) VALUES
  ('Zoë 😀 Ünïcødé', 'it''s "quoted" \\\\ and\\nnewline),(;', 12345678.1234, '2024-02-29 23:59:59.123456', '{"a": [1, 2, {"b": null}], "s": "x\\\\"y"}'),
  ('名前', NULL, -0.0001, NULL, NULL),
  ('tab\\there', '', 0, '1970-01-01 00:00:01', '[]');
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2), FOREIGN KEY (customer_id) REFERENCES customers(id));
INSERT INTO orders VALUES (1, 1, 9.99), (2, 1, 0.01), (3, 2, NULL);
CREATE TABLE blobs (id INT PRIMARY KEY, data LONGBLOB, small VARBINARY(16));
INSERT INTO blobs VALUES (1, 0x00FF00270A0D5C225C30, 0x00), (2, NULL, ''), (3, REPEAT(0x00, 1000), 0x27), (4, RANDOM_BYTES(1024), RANDOM_BYTES(16));
CREATE TABLE empty_t (id INT PRIMARY KEY) ENGINE=InnoDB;
CREATE VIEW v_positive AS SELECT id, name FROM customers WHERE balance > 0;
CREATE TRIGGER trg_note BEFORE INSERT ON customers FOR EACH ROW SET NEW.note = COALESCE(NEW.note, 'default');
DELIMITER //
CREATE PROCEDURE add_customer(IN n VARCHAR(100)) BEGIN INSERT INTO customers (name) VALUES (n); END //
CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2 //
DELIMITER ;
CREATE EVENT ev_cleanup ON SCHEDULE EVERY 1 DAY DO DELETE FROM empty_t;
CREATE DATABASE other;
CREATE TABLE other.notes (id INT PRIMARY KEY, body TEXT);
INSERT INTO other.notes VALUES (1, 'one'), (2, 'two');
CREATE DATABASE bulk;
CREATE TABLE bulk.big (id INT PRIMARY KEY, s VARCHAR(200), b VARBINARY(64));
`;

beforeAll(async () => {
  // One after the other: concurrent mariadb-install-db runs sometimes trip over each other's
  // temporary tables in the shared /tmp ("Unknown table 'mysql.tmp_user_sys'").
  victim = await startMariadb({ bkPassword: PASSWORD, args: ['--log-bin=mysql-bin', '--server-id=7'] });
  const victimReady = (async () => {
    await victim.query('CREATE DATABASE huge; CREATE TABLE huge.t (id INT PRIMARY KEY, s VARCHAR(255));');
    await victim.query("INSERT INTO t SELECT seq, REPEAT('x', 250) FROM seq_1_to_20000;", 'huge');
    // A user with only what a dump needs: no RELOAD, no REPLICATION CLIENT / BINLOG MONITOR.
    await victim.query(`CREATE USER 'ro'@'%' IDENTIFIED BY ${mariadbString(PASSWORD)}; GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON huge.* TO 'ro'@'%';`);
  })();
  victimReady.catch(() => undefined);
  db = await startMariadb({ bkPassword: PASSWORD });
  dir = await makeTmpDir('bk-mysql-test-');
  store = join(dir, 'store');
  await db.query(SEED);
  // Big enough that the dump runs for a moment while /proc is sampled.
  await db.query(
    "INSERT INTO big SELECT seq, CONCAT('row ', seq, ' it''s (x),(y); ', REPEAT('abc', 40)), RANDOM_BYTES(64) FROM seq_1_to_60000;",
    'bulk',
  );
  const server = { host: '127.0.0.1', port: db.port, user: 'bk', password: '${MYSQL_TEST_PW}' };
  cfg = await writeConfig('backup.config.yaml', {
    app: { driver: 'mysql', ...server, database: 'app' },
    bulk: { driver: 'mysql', ...server, database: 'bulk' },
    pair: { driver: 'mariadb', ...server, databases: ['app', 'other'] },
    server: { driver: 'mysql', ...server, all: true, users_and_grants: true, exclude_tables: ['bulk.big'] },
    badpw: { driver: 'mysql', ...server, password: 'wrong-password', database: 'app' },
    broken: { driver: 'mysql', ...server, database: 'broken' },
  });
  await victimReady;
});

afterAll(async () => {
  await Promise.all([db?.stop(), victim?.stop()]);
  if (dir) await rmrf(dir);
});

async function writeConfig(name: string, targets: Record<string, object>): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, stringify({ version: 1, storages: { local: { type: 'local', path: store } }, targets }), { mode: 0o600 });
  return path;
}

const bk = (args: string[], env: Record<string, string> = ENV) => runBk(['--config', cfg, ...args], { env, cwd: dir });

async function manifests(target: string): Promise<Record<string, unknown>[]> {
  const files = await readdir(join(store, target)).catch(() => [] as string[]);
  return Promise.all(files.filter((f) => f.endsWith('.manifest.json')).sort().map(async (f) => JSON.parse(await readFile(join(store, target, f), 'utf8')) as Record<string, unknown>));
}

const q = (sql: string, database?: string) => db.query(`SET NAMES utf8mb4; ${sql}`, database);

/**
 * Everything that must survive a round trip, with the database name factored out: DDL of every
 * table (columns, keys, foreign keys, AUTO_INCREMENT), exact row data (CHECKSUM TABLE EXTENDED and
 * ordered rows with binary columns in hex), views, routines, triggers, events, default collation.
 */
async function fingerprint(name: string): Promise<string[]> {
  const lit = mariadbString(name);
  const tables = (await q(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${lit} AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1`)).split('\n').filter(Boolean);
  // One client run; every result row starts with a tag saying what it is.
  const parts: string[] = [];
  for (const t of tables) {
    const tl = mariadbString(t);
    parts.push(`SHOW CREATE TABLE \`${t}\`;`, `CHECKSUM TABLE \`${t}\` EXTENDED;`, `SELECT ${tl}, 'count', COUNT(*) FROM \`${t}\`;`);
  }
  if (tables.includes('customers')) parts.push("SELECT 'customers', id, HEX(name), HEX(note), balance, created, HEX(meta), name_len FROM customers ORDER BY id;");
  if (tables.includes('blobs')) parts.push("SELECT 'blobs', id, HEX(data), HEX(small), data IS NULL FROM blobs ORDER BY id;");
  parts.push(
    `SELECT 'view', TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ${lit} ORDER BY 2;`,
    `SELECT 'routine', ROUTINE_TYPE, ROUTINE_NAME, DTD_IDENTIFIER, ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_MODE, DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${lit} ORDER BY 3;`,
    `SELECT 'trigger', TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${lit} ORDER BY 2;`,
    `SELECT 'event', EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${lit} ORDER BY 2;`,
    `SELECT 'schema', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${lit};`,
  );
  const out = await q(parts.join('\n'), name);
  // Views name their tables as `db`.`table`; CHECKSUM TABLE rows start with db.table.
  return out
    .split(`\`${name}\`.`)
    .join('')
    .split('\n')
    .map((line) => (line.startsWith(`${name}.`) ? `<db>${line.slice(name.length)}` : line));
}

interface ProcessSample {
  /** Command lines of matching processes seen while sampling. */
  seen: string[];
  leaks: string[];
  optionFiles: Map<string, { mode: number; dirMode: number; holdsPassword: boolean }>;
}

/**
 * Reads every process's argv from /proc every few ms, and the environment of the mysql tools,
 * looking for the secret; also stats the option files the tools were given while they exist.
 * Synchronous reads: a sweep takes ~10 ms instead of ~85 ms with fs/promises, so even a dump
 * that runs for a fraction of a second is seen several times.
 */
function sampleProcesses(secret: string, tools: RegExp): { stop(): Promise<ProcessSample> } {
  let stopped = false;
  const sample: ProcessSample = { seen: [], leaks: [], optionFiles: new Map() };
  const read = (path: string): Buffer | undefined => {
    try {
      return readFileSync(path);
    } catch {
      return undefined;
    }
  };
  const sweep = () => {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      const raw = read(`/proc/${pid}/cmdline`);
      if (!raw || raw.length === 0) continue;
      const cmdline = raw.toString('utf8').split('\0').join(' ').trim();
      if (raw.includes(secret)) sample.leaks.push(`argv of ${pid}: ${cmdline}`);
      if (!tools.test(cmdline)) continue;
      if (!sample.seen.includes(cmdline)) sample.seen.push(cmdline);
      if (read(`/proc/${pid}/environ`)?.includes(secret)) sample.leaks.push(`environment of ${pid}: ${cmdline}`);
      const file = /--defaults-extra-file=(\S+)/.exec(cmdline)?.[1];
      if (file && !sample.optionFiles.has(file)) {
        try {
          const mode = statSync(file).mode & 0o777;
          const dirMode = statSync(dirname(file)).mode & 0o777;
          sample.optionFiles.set(file, { mode, dirMode, holdsPassword: readFileSync(file, 'utf8').includes("pa'ss") });
        } catch {
          /* already removed */
        }
      }
    }
  };
  const loop = (async () => {
    while (!stopped) {
      sweep();
      await sleep(2);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return sample;
    },
  };
}

/**
 * Holds LOCK TABLES … WRITE on `db.table` from another session for `seconds`: a dump reaching that
 * table waits there, so it is reliably still running while the test looks at it (or kills the server).
 */
async function holdWriteLock(server: MariadbServer, dbName: string, table: string, seconds: number): Promise<{ released: Promise<unknown>; release(): void }> {
  const cnf = join(dir, `root-${server.port}.cnf`);
  await writeFile(cnf, `[client]\nuser=root\npassword=""\nsocket=${server.socket}\n`, { mode: 0o600 });
  const holder = execa('mariadb', [`--defaults-file=${cnf}`, dbName], { input: `LOCK TABLES \`${table}\` WRITE; DO SLEEP(${seconds}); UNLOCK TABLES;`, env: cleanEnv(), extendEnv: false, reject: false });
  while ((await server.query(`SHOW OPEN TABLES FROM \`${dbName}\` WHERE \`Table\` = ${mariadbString(table)} AND In_use > 0`)) === '') {
    if (holder.exitCode !== null) throw new Error(`lock holder exited: ${String((await holder).stderr)}`);
    await sleep(10);
  }
  // Wrapped: returning the subprocess (a thenable) itself would make the caller wait for it.
  return { released: holder, release: () => holder.kill() };
}

/** Processes whose command line matches, from a synchronous /proc sweep. */
function sweepProcesses(match: (cmdline: string) => boolean): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (match(cmdline)) found.push({ pid: Number(pid), cmdline });
    } catch {
      /* gone */
    }
  }
  return found;
}

function findProcesses(match: (cmdline: string) => boolean): number[] {
  return sweepProcesses(match).map((p) => p.pid);
}

/**
 * The processes of the first sweep that finds any, within 30 s. One sweep's answer, not a second
 * look: while stdbuf (stdout-buffer.ts) execs the dump, /proc/PID/cmdline reads empty for a moment,
 * so a process seen by one sweep can be missed by the next (a CI run failed on exactly that).
 */
async function waitForProcesses(match: (cmdline: string) => boolean): Promise<{ pid: number; cmdline: string }[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = sweepProcesses(match);
    if (found.length > 0 || Date.now() > deadline) return found;
    await sleep(5);
  }
}

const MYSQL_TOOLS = /(?:^|\/)(?:mariadb-dump|mysqldump|mariadb|mysql)\s/;

describe('mysql driver', () => {
  let appBefore: string[];

  it('backs up with the password only in a private 0600 option file: never in argv, environments, output or manifest', async () => {
    appBefore = await fingerprint('app');
    const lock = await holdWriteLock(db, 'bulk', 'big', 1);
    const sampler = sampleProcesses(PASSWORD, MYSQL_TOOLS);
    const run = await bk(['backup', 'app', 'bulk', '--json', '--log-level', 'debug']);
    const sample = await sampler.stop();
    await lock.released;
    expect(run.exitCode, run.stderr).toBe(0);
    expect(sample.leaks).toEqual([]);
    // The sampler really saw the dump running, with its option file.
    // Anchored: stdbuf (stdout-buffer.ts) shows the same arguments for the moment before it execs the dump.
    expect(sample.seen.filter((c) => /^\S*mariadb-dump --defaults-extra-file=.* bulk$/.test(c)), sample.seen.join('\n')).toHaveLength(1);
    expect(sample.optionFiles.size).toBeGreaterThan(0);
    for (const [file, f] of sample.optionFiles) {
      expect(f).toEqual({ mode: 0o600, dirMode: 0o700, holdsPassword: true });
      await expect(stat(file)).rejects.toThrow(); // removed afterwards
    }
    expect(run.stdout).not.toContain(PASSWORD);
    expect(run.stderr).not.toContain(PASSWORD);
    const [m] = await manifests('app');
    expect(JSON.stringify(m)).not.toContain(PASSWORD);
    expect(m).toMatchObject({ driver: 'mysql', contents: ['app'], extra: { layout: 'single-database', binlog: 'off' } });
    expect(String(m!.serverVersion)).toMatch(/MariaDB/);
  });

  it('records checks that match the source exactly', async () => {
    const [m] = await manifests('app');
    expect(m!.checks).toEqual({
      tables: { blobs: 4, customers: 3, empty_t: 0, orders: 3 },
      views: ['v_positive'],
      routines: ['FUNCTION double_it', 'PROCEDURE add_customer'],
      triggers: ['trg_note'],
      events: ['ev_cleanup'],
    });
    const [bulk] = await manifests('bulk');
    expect(bulk!.checks).toMatchObject({ tables: { big: 60000 } });
  });

  it('restores elsewhere with --to (created when missing), exactly, leaving the source untouched', async () => {
    const run = await bk(['restore', 'app', '--to', 'app_copy', '--yes']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await fingerprint('app_copy')).toEqual(appBefore);
    expect(await fingerprint('app')).toEqual(appBefore);
    // Routines and triggers work in the copy, on the copy's own tables.
    await q("CALL add_customer('via procedure'); SELECT double_it(21);", 'app_copy');
    expect(await q("SELECT note FROM customers WHERE name = 'via procedure'", 'app_copy')).toBe('default');
    expect(await q("SELECT COUNT(*) FROM customers WHERE name = 'via procedure'", 'app')).toBe('0');
  });

  it('prints a by-hand pipeline (--dry-run) that restores the same data with the standard tools', async () => {
    const plan = await bk(['restore', 'app', '--to', 'app_by_hand', '--dry-run', '--json']);
    expect(plan.exitCode, plan.stderr).toBe(0);
    const manual = plan.json<{ plan: { manual: string }[] }>().plan[0]!.manual;
    expect(manual).toMatch(/^zstd -dc \S+\.sql\.zst \| \(mariadb --defaults-extra-file=client\.cnf .*app_by_hand\)$/);
    expect(await q("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'app_by_hand'")).toBe('0');
    // client.cnf as docs/drivers/mysql.md tells the reader to write it.
    await writeFile(join(dir, 'client.cnf'), `[client]\nuser=root\npassword=""\nsocket=${db.socket}\n`, { mode: 0o600 });
    await execa('sh', ['-c', manual], { cwd: dir, env: cleanEnv(), extendEnv: false });
    expect(await fingerprint('app_by_hand')).toEqual(appBefore);
    await q('DROP DATABASE app_by_hand');
  });

  it('restores a large table with the password kept out of argv and environments', async () => {
    const sampler = sampleProcesses(PASSWORD, MYSQL_TOOLS);
    const run = await bk(['restore', 'bulk', '--to', 'bulk_copy', '--yes']);
    const sample = await sampler.stop();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(sample.leaks).toEqual([]);
    expect(sample.seen.some((c) => /mariadb --defaults-extra-file=.*--database=bulk_copy/.test(c)), sample.seen.join('\n')).toBe(true);
    expect(await fingerprint('bulk_copy')).toEqual(await fingerprint('bulk'));
    await q('DROP DATABASE bulk_copy');
  });

  it('restores into the original database after it was dropped', async () => {
    await q('DROP DATABASE app');
    const run = await bk(['restore', 'app', '--yes']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await fingerprint('app')).toEqual(appBefore);
  });

  it('backs up several databases with their names; restores them in place, refuses another name', async () => {
    const backup = await bk(['backup', 'pair']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const [m] = await manifests('pair');
    expect(m).toMatchObject({ driver: 'mariadb', contents: ['app', 'other'], extra: { layout: 'multi-database' } });
    expect(m!.checks).toMatchObject({ tables: { 'app.customers': 3, 'other.notes': 2 }, routines: ['FUNCTION app.double_it', 'PROCEDURE app.add_customer'] });

    const refused = await bk(['restore', 'pair', '--to', 'elsewhere', '--yes']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/pair: restore: .*dumped with their names.*cannot be restored into elsewhere/s);
    expect(await q("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'elsewhere'")).toBe('0');

    const before = await fingerprint('other');
    await q('DROP DATABASE other');
    const run = await bk(['restore', 'pair', '--yes']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await fingerprint('other')).toEqual(before);
    expect(await fingerprint('app')).toEqual(appBefore);
  });

  it('backs up the whole server with users and grants, and brings a dropped account back', async () => {
    await q(`CREATE USER 'reporter'@'%' IDENTIFIED BY 'rep-pw'; GRANT SELECT ON app.* TO 'reporter'@'%'; GRANT SELECT (id) ON other.notes TO 'reporter'@'%';`);
    const backup = await bk(['backup', 'server']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const [m] = await manifests('server');
    expect(m!.contents).toEqual(['app', 'app_copy', 'bulk', 'other']);
    expect((m!.checks as { tables: Record<string, number> }).tables).not.toHaveProperty(['bulk.big']);
    expect((m!.extra as { usersAndGrants: { accounts: number } }).usersAndGrants.accounts).toBeGreaterThanOrEqual(3);

    await q("DROP USER 'reporter'@'%'; DROP DATABASE other;");
    const run = await bk(['restore', 'server', '--yes']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await q("SHOW GRANTS FOR 'reporter'@'%'")).toMatch(/GRANT SELECT ON `app`\.\* TO `reporter`@`%`[\s\S]*GRANT SELECT \(`id`\) ON `other`\.`notes`/);
    // The restored account logs in with its own password.
    const cnf = join(dir, 'reporter.cnf');
    await writeFile(cnf, `[client]\nuser=reporter\npassword=rep-pw\nhost=127.0.0.1\nport=${db.port}\nprotocol=TCP\n`, { mode: 0o600 });
    const login = await execa('mariadb', [`--defaults-file=${cnf}`, '-N', '-e', 'SELECT COUNT(*) FROM app.customers'], { env: cleanEnv(), extendEnv: false });
    expect(login.stdout).toBe('3');
    expect(await fingerprint('app')).toEqual(appBefore);
  });

  it('estimates a first backup\'s size from the tables\' data and index lengths', async () => {
    const driver = new MysqlDriver('app', mysqlOptionsSchemaFor.mysql.parse({ driver: 'mysql', host: '127.0.0.1', port: db.port, user: 'bk', password: PASSWORD, database: 'app' }));
    const estimate = await driver.estimateSize({ signal: new AbortController().signal, logger: silentLogger });
    const lengths = await db.query("SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'");
    expect(estimate).toBe(Number(lengths));
    expect(estimate).toBeGreaterThan(0);
  });

  it('gives a slow reader the whole dump: the completeness check waits for the last bytes to pass', async () => {
    // It once ran when the tool's output ended, while the last chunks still sat unscanned in front
    // of a slow consumer (a stalling upload), and failed good dumps as "cut short".
    const driver = new MysqlDriver('bulk', mysqlOptionsSchemaFor.mysql.parse({ driver: 'mysql', host: '127.0.0.1', port: db.port, user: 'bk', password: PASSWORD, database: 'bulk' }));
    const session = await driver.backup({ signal: new AbortController().signal, logger: silentLogger });
    let chunks = 0;
    const slow = new Writable({ highWaterMark: 1024, write: (_c, _e, cb) => void setTimeout(cb, ++chunks % 20 === 0 ? 10 : 0) });
    await pipeline(session.stream, slow);
    const info = await session.done;
    expect(info.checks).toMatchObject({ tables: { big: 60000 } });
  });

  it('runs a restore drill: a temp database whose inspection equals the manifest checks, dropped afterwards', async () => {
    const driver = new MysqlDriver('app', mysqlOptionsSchemaFor.mysql.parse({ driver: 'mysql', host: '127.0.0.1', port: db.port, user: 'bk', password: PASSWORD, database: 'app' }));
    const drill = await driver.prepareDrill({ signal: new AbortController().signal, logger: silentLogger, options: {} });
    try {
      expect(drill.to).toMatch(/^bk_drill_[0-9a-f]{12}$/);
      const run = await bk(['restore', 'app', '--to', drill.to, '--yes']);
      expect(run.exitCode, run.stderr).toBe(0);
      const [m] = await manifests('app');
      expect(await drill.inspect()).toEqual(m!.checks);
    } finally {
      await drill.dispose();
    }
    expect(await q(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${mariadbString(drill.to)}`)).toBe('0');
  });

  it('works ad hoc from --url, with the password from BK_MYSQL_PASSWORD', async () => {
    const repo = join(dir, 'adhoc');
    const url = `mysql://bk@127.0.0.1:${db.port}/app`;
    const env = { BK_MYSQL_PASSWORD: PASSWORD };
    // A directory with no backup.config.yaml above it: bk would otherwise find the one in `dir`.
    const cwd = await makeTmpDir('bk-mysql-adhoc-');
    const backup = await runBk(['backup', 'mysql', '--url', url, '--repo', repo], { env, cwd });
    expect(backup.exitCode, backup.stderr).toBe(0);
    const restore = await runBk(['restore', 'mysql', '--source', url, '--repo', repo, '--to', 'app_adhoc', '--yes'], { env, cwd });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await fingerprint('app_adhoc')).toEqual(appBefore);
    expect(backup.stderr + restore.stderr).not.toContain(PASSWORD);
  });

  it('preflight: bk config check reports tools, connection and privileges; a wrong password fails it', async () => {
    const ok = await runBk(['--config', await writeConfig('check.yaml', { app: { driver: 'mysql', host: '127.0.0.1', port: db.port, user: 'bk', password: '${MYSQL_TEST_PW}', database: 'app' } }), 'config', 'check'], { env: ENV, cwd: dir });
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/ok {3}target app: dump tool: mariadb-dump/);
    expect(ok.stdout).toMatch(/ok {3}target app: connection: 127\.0\.0\.1:\d+: connected as bk@%/);
    expect(ok.stdout).toMatch(/ok {3}target app: privileges: enough/);

    const bad = await runBk(['--config', await writeConfig('check-bad.yaml', { app: { driver: 'mysql', host: '127.0.0.1', port: db.port, user: 'bk', password: 'nope', database: 'app' } }), 'config', 'check'], { cwd: dir });
    expect(bad.exitCode).toBe(2);
    expect(bad.stdout).toMatch(/FAIL target app: connection: .*Access denied.*fix: check user and password/);
  });

  it('fails on a wrong password: exit 1, target and step named, nothing listed', async () => {
    const run = await bk(['backup', 'badpw']);
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(/badpw: backup FAILED: connect: .*Access denied for user 'bk'/);
    expect(run.stdout).toMatch(/fix: check user and password/);
    const list = await bk(['list', 'badpw', '--json']);
    expect(list.json<{ backups: unknown[] }>().backups).toEqual([]);
    expect(await readdir(join(store, 'badpw')).catch(() => [])).toEqual([]);
  });

  it('fails clearly when the server is down or the client tools are missing', async () => {
    const port = await freePort();
    const downCfg = await writeConfig('down.yaml', { down: { driver: 'mysql', host: '127.0.0.1', port, user: 'bk', password: 'x', database: 'app' } });
    const down = await runBk(['--config', downCfg, 'backup', 'down'], { cwd: dir });
    expect(down.exitCode).toBe(1);
    expect(down.stdout).toMatch(/down: backup FAILED: connect: .*Can't connect to server on '127\.0\.0\.1'[\s\S]*fix: check that the server is running/);

    const noTools = await runBk(['--config', cfg, 'backup', 'app'], { env: { ...ENV, PATH: join(dir, 'empty-bin') }, cwd: dir });
    expect(noTools.exitCode).toBe(1);
    expect(noTools.stdout).toMatch(/app: backup FAILED: dump: mariadb-dump or mysqldump not found[\s\S]*fix: install the MariaDB or MySQL client tools/);
    expect(await manifests('down')).toEqual([]);
  });

  it('reports a storage that cannot be written as such, and stops the dump', async () => {
    await writeFile(join(dir, 'not-a-dir'), '');
    const path = join(dir, 'unwritable.yaml');
    await writeFile(
      path,
      stringify({ storages: { local: { type: 'local', path: join(dir, 'not-a-dir', 'store') } }, targets: { app: { driver: 'mysql', host: '127.0.0.1', port: db.port, user: 'bk', password: '${MYSQL_TEST_PW}', database: 'app' } } }),
      { mode: 0o600 },
    );
    const run = await runBk(['--config', path, 'backup', 'app'], { env: ENV, cwd: dir });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(/app: backup FAILED: write local: .*ENOTDIR/);
    expect(findProcesses((c) => /(?:^|\/)mariadb-dump .* app$/.test(c))).toEqual([]);
  });

  it('on SIGINT stops the dump, removes the option file and lists nothing (exit 130)', async () => {
    const lock = await holdWriteLock(db, 'bulk', 'big', 30);
    const child = spawnBk(['--config', cfg, 'backup', 'bulk'], { env: ENV, cwd: dir });
    const isDump = (c: string) => /(?:^|\/)mariadb-dump .* bulk$/.test(c);
    const [dump] = await waitForProcesses(isDump);
    expect(dump).toBeDefined();
    const optionFile = /--defaults-extra-file=(\S+)/.exec(dump!.cmdline)![1]!;
    const before = (await manifests('bulk')).length;
    child.kill('SIGINT');
    const res = await child;
    lock.release();
    await lock.released;
    expect(res.exitCode, String(res.stdout) + String(res.stderr)).toBe(130);
    expect(findProcesses(isDump)).toEqual([]);
    await expect(stat(dirname(optionFile))).rejects.toThrow();
    expect(await manifests('bulk')).toHaveLength(before);
  });

  it('stops a restore at the first SQL error and exits non-zero', async () => {
    // A stored backup whose SQL fails halfway, made by the real engine (checksums and all).
    const sql = [
      'CREATE TABLE before_error (id INT PRIMARY KEY);',
      'INSERT INTO before_error VALUES (1);',
      'INSERT INTO no_such_table VALUES (1);',
      'CREATE TABLE after_error (id INT PRIMARY KEY);',
      '-- Dump completed',
      '',
    ].join('\n');
    const fake: Driver = {
      kind: 'mysql',
      payloadExt: 'sql',
      check: async () => [],
      backup: async () => ({
        stream: Readable.from([Buffer.from(sql)]),
        done: Promise.resolve({ tools: [], contents: ['broken'], extra: { layout: 'single-database' } }),
      }),
      restore: async () => undefined,
      describeRestoreTarget: () => '',
      manualRestoreCommand: () => '',
    };
    const made = await runBackup({ target: 'broken', driver: fake, storages: [new LocalStorage('local', store)], compression: 'zstd', logger: silentLogger, signal: new AbortController().signal, bkVersion: 'test' });
    expect(made.status).toBe('ok');

    const run = await bk(['restore', 'broken', '--yes']);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/broken: restore: .*mariadb exited with code 1/);
    expect(run.stderr).toMatch(/ERROR 1146 .* at line 3: Table 'broken\.no_such_table' doesn't exist/);
    expect(await q("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'broken' ORDER BY 1")).toBe('before_error');
  });

  it('records the binlog position and GTID with a minimally privileged user', async () => {
    const roCfg = await writeConfig('ro.yaml', { 'huge-ro': { driver: 'mysql', host: '127.0.0.1', port: victim.port, user: 'ro', password: '${MYSQL_TEST_PW}', database: 'huge' } });
    const run = await runBk(['--config', roCfg, 'backup', 'huge-ro'], { env: ENV, cwd: dir });
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    const [m] = await manifests('huge-ro');
    const pos = (await victim.query('SHOW MASTER STATUS')).split('\t');
    const gtid = await victim.query('SELECT @@gtid_binlog_pos');
    expect(m!.extra).toMatchObject({ binlog: { file: pos[0], position: Number(pos[1]), gtid } });
    expect(m!.checks).toMatchObject({ tables: { t: 20000 } });

    // The preflight says what this user cannot do: read routine definitions (the dump tool would
    // leave routines out without a word).
    const check = await runBk(['--config', roCfg, 'config', 'check'], { env: ENV, cwd: dir });
    expect(check.exitCode).toBe(2);
    expect(check.stdout).toMatch(/FAIL target huge-ro: privileges: missing: reading routine definitions/);
    expect(check.stdout).toMatch(/ok {3}target huge-ro: binlog: binary log on/);
  });

  it('fails when the server dies mid-dump: exit 1, nothing listed, no archive left', async () => {
    const victimCfg = await writeConfig('victim.yaml', { huge: { driver: 'mysql', host: '127.0.0.1', port: victim.port, user: 'bk', password: '${MYSQL_TEST_PW}', database: 'huge' } });
    const lock = await holdWriteLock(victim, 'huge', 't', 120);
    const child = spawnBk(['--config', victimCfg, 'backup', 'huge'], { env: ENV, cwd: dir });
    // The dump blocks on the locked table: wait until it is running there, then kill the server.
    const isDump = (c: string) => /(?:^|\/)mariadb-dump .* huge$/.test(c);
    expect(await waitForProcesses(isDump)).toHaveLength(1);
    await victim.kill();
    await lock.released;
    const res = await child;
    expect(res.exitCode).toBe(1);
    const out = `${String(res.stdout)}${String(res.stderr)}`;
    expect(out).toMatch(/huge: backup FAILED: dump: \S*mariadb-dump (exited with code \d+|was killed)/);
    expect(out).toMatch(/Lost connection|server has gone away|Can't connect|Error 20\d\d/i);
    expect(await readdir(join(store, 'huge')).catch(() => [])).toEqual([]);
  });
});
