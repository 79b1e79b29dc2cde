// The postgres driver against a throwaway PostgreSQL server, end to end through bin/bk.js (build
// first: npx tsc -p tsconfig.json) and directly for the restore drill. Restored databases are
// compared with the source row by row and definition by definition (fingerprint), never by exit code.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDriver, postgresOptionsSchema } from '../../src/drivers/postgres.js';
import { silentLogger } from '../../src/log.js';
import { freePort, makeTmpDir, rmrf, startPostgres, type PostgresServer } from '../harness/index.js';
import { runBk, spawnBk, type BkRun } from '../helpers/run-bk.js';
import { descendants } from '../reliability/proc-tree.js';
import { fingerprint, rowCounts, SEED_SQL } from './postgres-fixture.js';

// Characters that need escaping in a passfile (":" and "\"), in SQL, and in a shell.
const PASSWORD = `pw:${randomBytes(6).toString('hex')}\\'"$x`;
const BAD_PASSWORD = `wrong-${randomBytes(6).toString('hex')}`;

let pg: PostgresServer;
let dir: string;
let tmp: string;
let source: string;
const outputs: string[] = [];

interface ListJson {
  backups: { id: string; target: string }[];
}

/** What bk printed: the result on stdout, logs on stderr. */
const said = (run: BkRun): string => `${run.stdout}\n${run.stderr}`;

function config(targets: string): string {
  return `storages:\n  local:\n    type: local\n    path: ${join(dir, 'store')}\ntargets:\n${targets}`;
}

const tcp = (db: string, extra = '') => `    driver: postgres
    host: 127.0.0.1
    port: ${pg.port}
    user: bk
    password: \${APP_DB_PASSWORD}
    database: ${db}
${extra}`;

/** Runs bin/bk.js with the test's config (config: false for ad-hoc use) and a private TMPDIR. */
async function bk(args: string[], opts: { config?: string | false; env?: Record<string, string>; cwd?: string } = {}): Promise<BkRun> {
  const run = await runBk(opts.config === false ? args : ['--config', opts.config ?? join(dir, 'backup.config.yaml'), ...args], {
    cwd: opts.cwd ?? dir,
    // A private TMPDIR: every passfile and staging file bk makes lands here, and must be gone after.
    env: { APP_DB_PASSWORD: PASSWORD, TMPDIR: tmp, ...opts.env },
  });
  outputs.push(run.stdout, run.stderr);
  return run;
}

async function manifests(target: string): Promise<Record<string, unknown>[]> {
  const path = join(dir, 'store', target);
  const names = (await readdir(path).catch(() => [] as string[])).filter((n) => n.endsWith('.manifest.json')).sort();
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(path, n), 'utf8')) as Record<string, unknown>));
}

/** Ids of the backups of a target that `bk list` shows. */
async function listed(target: string): Promise<string[]> {
  const run = await bk(['--json', 'list', target]);
  expect(run.exitCode).toBe(0);
  return run.json<ListJson>().backups.map((b) => b.id);
}

/** Every process's command line, and pg tools' environments, sampled until `until` settles. */
async function sampleProcesses(until: Promise<unknown>): Promise<{ cmdlines: Set<string>; environs: string[] }> {
  const cmdlines = new Set<string>();
  const environs: string[] = [];
  let done = false;
  void until.finally(() => {
    done = true;
  });
  while (!done) {
    for (const pid of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(pid)) continue;
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (!cmd) continue;
      const line = cmd.split('\0').join(' ');
      cmdlines.add(line);
      // Tools that connect; a `--version` probe has no connection and no passfile.
      if (/^\S*(pg_dump|pg_restore|psql|pg_dumpall) /.test(line) && !/ --version\s*$/.test(line)) {
        // Empty when the process exited between the two reads: nothing to judge.
        const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
        if (environ) environs.push(environ);
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return { cmdlines, environs };
}

beforeAll(async () => {
  pg = await startPostgres({ bkPassword: PASSWORD });
  dir = await makeTmpDir('bk-pg-test-');
  tmp = join(dir, 'tmp');
  await mkdir(tmp);
  await pg.createDb('app');
  await pg.psql(SEED_SQL, 'app');
  // Large enough that a dump takes a moment, for sampling the process list during it.
  await pg.createDb('big');
  await pg.psql(`CREATE TABLE big (id int PRIMARY KEY, filler text); INSERT INTO big SELECT g, md5(g::text) || repeat('x', 120) FROM generate_series(1, 300000) g;`, 'big');
  await pg.psql(`CREATE ROLE reporting LOGIN CONNECTION LIMIT 3 PASSWORD 'reporting-pass'; GRANT SELECT ON ALL TABLES IN SCHEMA sales TO reporting;`, 'app');
  source = await fingerprint(pg, 'app');

  // A pg_dump that exits 0 without writing a complete dump: the driver must not believe it.
  const fakeBin = join(dir, 'fake-bin');
  await mkdir(fakeBin);
  await writeFile(
    join(fakeBin, 'pg_dump'),
    `#!/bin/sh\n[ "$1" = --version ] && exec ${join(pg.binDir, 'pg_dump')} --version\nfor a in "$@"; do [ "$a" = --format=plain ] && printf -- '--\\n-- PostgreSQL database dump\\n--\\n\\nSET x = 1;\\n'; done\nexit 0\n`,
  );
  await chmod(join(fakeBin, 'pg_dump'), 0o755);
  for (const tool of ['psql', 'pg_restore']) await symlink(join(pg.binDir, tool), join(fakeBin, tool));

  const writeConfig = (name: string, text: string) => writeFile(join(dir, name), text, { mode: 0o600 });
  await writeConfig(
    'backup.config.yaml',
    config(`  app:
${tcp('app')}
  app-plain:
    driver: postgres
    url: postgres://bk@127.0.0.1:${pg.port}/app?sslmode=disable
    password: \${APP_DB_PASSWORD}
    format: plain
  big:
${tcp('big')}
  roles:
    driver: postgresql
    url: postgresql://bk@127.0.0.1:${pg.port}/postgres
    password: \${APP_DB_PASSWORD}
    globals: true
`),
  );
  await writeConfig(
    'broken.yaml',
    config(`  bad:
    driver: postgres
    host: 127.0.0.1
    port: ${pg.port}
    user: bk
    password: ${BAD_PASSWORD}
    database: app
  fake-empty:
${tcp('app', `    bin_dir: ${fakeBin}\n`)}
  fake-truncated:
${tcp('app', `    bin_dir: ${fakeBin}\n    format: plain\n`)}
  legacy-sql:
${tcp('app', '    format: plain\n')}
`),
  );
});

afterAll(async () => {
  await pg?.stop();
  if (dir) await rmrf(dir);
});

describe('postgres driver', () => {
  it('config check: tools, connection, versions and permissions', async () => {
    const run = await bk(['config', 'check']);
    expect(run.stdout).toMatch(/ok {3}target app: connection: 127\.0\.0\.1:\d+ database app as bk: PostgreSQL \d+/);
    expect(run.stdout).toMatch(/target app: versions: pg_dump .* can dump PostgreSQL/);
    expect(run.exitCode).toBe(0);
  });

  it('custom format: backup, restore --to a new database (created by bk) equals the source, which stays untouched', async () => {
    const backup = await bk(['--json', 'backup', 'app']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const [m] = await manifests('app');
    expect(m).toMatchObject({ driver: 'postgres', contents: ['app'], payload: { ext: 'pgdump' }, extra: { kind: 'database', format: 'custom' } });
    expect((m!.tools as { name: string }[])[0]!.name).toBe('pg_dump');
    expect(m!.serverVersion).toMatch(/^\d+\.\d+/);
    // Row counts taken in the dump's snapshot: exactly the source's.
    expect((m!.checks as { tables: unknown }).tables).toEqual(await rowCounts(pg, 'app'));

    const restore = await bk(['restore', 'app', '--to', 'app_copy', '--yes']);
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await fingerprint(pg, 'app_copy')).toBe(source);
    expect(await fingerprint(pg, 'app')).toBe(source);
    // Restored elsewhere without owners: the objects belong to the restoring role.
    expect(await pg.psql(`SELECT tableowner FROM pg_tables WHERE schemaname = 'sales' AND tablename = 'orders'`, 'app_copy')).toBe('bk');
  });

  it('plain format: backup and restore --to a new database equals the source', async () => {
    const backup = await bk(['backup', 'app-plain']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const [m] = await manifests('app-plain');
    expect(m).toMatchObject({ payload: { ext: 'sql' }, extra: { format: 'plain' } });
    const restore = await bk(['restore', 'app-plain', '--to', 'app_copy_plain', '--yes']);
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await fingerprint(pg, 'app_copy_plain')).toBe(source);
  });

  it('restores over the original (clean): both formats undo changes made since the backup', async () => {
    for (const target of ['app', 'app-plain']) {
      await pg.psql(
        `DELETE FROM sales.orders WHERE id % 3 = 0; UPDATE sales.customers SET name = 'changed' WHERE id < 50; SELECT setval('sales.invoice_no', 5);
         DROP VIEW sales.customer_totals; UPDATE "Ünïcode ☃"."Tëst tablé" SET v = 'x'; TRUNCATE public.measurements_2023; SELECT lo_unlink(oid) FROM pg_largeobject_metadata;`,
        'app',
      );
      expect(await fingerprint(pg, 'app')).not.toBe(source);
      const run = await bk(['restore', target, '--yes']);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(await fingerprint(pg, 'app'), target).toBe(source);
    }
  });

  it('--jobs 2: parallel restore of a custom archive', async () => {
    const run = await bk(['restore', 'app', '--to', 'app_jobs', '--jobs', '2', '--yes']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await fingerprint(pg, 'app_jobs')).toBe(source);
    const plain = await bk(['restore', 'app-plain', '--to', 'app_jobs_plain', '--jobs', '2', '--yes']);
    expect(plain.exitCode).toBe(2);
    expect(said(plain)).toMatch(/--jobs needs a custom-format backup/);
  });

  it('--to a postgres:// URL; the password comes from PGPASSWORD', async () => {
    const run = await bk(['restore', 'app', '--to', `postgres://bk@127.0.0.1:${pg.port}/app_url`, '--yes'], { env: { PGPASSWORD: PASSWORD } });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await fingerprint(pg, 'app_url')).toBe(source);
  });

  it('ad hoc without a config: libpq environment, or --source URL', async () => {
    // Outside the test directory, so no backup.config.yaml can be found from there.
    const adhoc = await makeTmpDir('bk-pg-adhoc-');
    const repo = join(adhoc, 'repo');
    const env = { PGHOST: '127.0.0.1', PGPORT: String(pg.port), PGUSER: 'bk', PGPASSWORD: PASSWORD, PGDATABASE: 'app' };
    const backup = await bk(['--json', '--repo', repo, 'backup', 'postgres'], { config: false, cwd: adhoc, env });
    expect(backup.exitCode, backup.stderr).toBe(0);
    const restore = await bk(['--repo', repo, 'restore', 'postgres', '--to', 'app_adhoc', '--yes'], { config: false, cwd: adhoc, env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await fingerprint(pg, 'app_adhoc')).toBe(source);

    const byUrl = await bk(['--json', '--repo', repo, 'backup', 'postgresql', '--source', `postgresql://bk@127.0.0.1:${pg.port}/big`], {
      config: false,
      cwd: adhoc,
      env: { PGPASSWORD: PASSWORD },
    });
    expect(byUrl.exitCode, byUrl.stderr).toBe(0);
    const m = JSON.parse(await readFile(join(repo, 'postgresql', `${byUrl.json<{ results: { id: string }[] }>().results[0]!.id}.manifest.json`), 'utf8')) as { contents: string[] };
    expect(m.contents).toEqual(['big']);
    await rmrf(adhoc);
  });

  it('never puts the password on a command line or in a tool environment, during backup and restore', async () => {
    for (const args of [
      ['backup', 'big'],
      ['restore', 'big', '--to', 'big_copy', '--yes'],
    ]) {
      const child = spawnBk(['--config', join(dir, 'backup.config.yaml'), ...args], { cwd: dir, env: { APP_DB_PASSWORD: PASSWORD, TMPDIR: tmp } });
      const { cmdlines, environs } = await sampleProcesses(child);
      const result = await child;
      outputs.push(String(result.stdout), String(result.stderr));
      expect(result.exitCode, String(result.stderr)).toBe(0);
      const tool = args[0] === 'backup' ? 'pg_dump' : 'pg_restore';
      // The sampling saw the tool at work (so this test can fail), with no password anywhere.
      expect([...cmdlines].some((c) => c.includes(`${tool} `) && c.includes('--dbname=')), tool).toBe(true);
      expect(environs.length).toBeGreaterThan(0);
      for (const c of cmdlines) expect(c).not.toContain(PASSWORD);
      for (const e of environs) {
        expect(e).not.toContain(PASSWORD);
        expect(e).toContain('PGPASSFILE=');
      }
    }
    expect(await pg.psql('SELECT count(*), sum(length(filler)) FROM big', 'big_copy')).toBe(await pg.psql('SELECT count(*), sum(length(filler)) FROM big', 'big'));
  });

  it('globals: roles come back, existing roles are no error', async () => {
    await pg.psql(`CREATE ROLE "Audit Ör" LOGIN CONNECTION LIMIT 3 PASSWORD 'audit-pass' VALID UNTIL '2031-01-01';`);
    const backup = await bk(['backup', 'roles']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const [m] = await manifests('roles');
    expect(m).toMatchObject({ driver: 'postgresql', contents: ['globals'], payload: { ext: 'sql' }, extra: { kind: 'globals' } });
    expect((m!.checks as { roles: string[] }).roles).toEqual(expect.arrayContaining(['Audit Ör', 'bk', 'postgres', 'reporting']));
    const role = `SELECT rolcanlogin, rolconnlimit, rolpassword, rolvaliduntil FROM pg_authid WHERE rolname = 'Audit Ör'`;
    const before = await pg.psql(role);
    await pg.psql(`DROP ROLE "Audit Ör"; ALTER ROLE reporting CONNECTION LIMIT 1;`);
    const restore = await bk(['restore', 'roles', '--yes']);
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(await pg.psql(role)).toBe(before);
    // An existing role gets its backed-up attributes back.
    expect(await pg.psql(`SELECT rolconnlimit FROM pg_roles WHERE rolname = 'reporting'`)).toBe('3');
  });

  it('estimates a first backup\'s size from the database size: at least the raw dump', async () => {
    const driver = new PostgresDriver('app', postgresOptionsSchema.parse({ driver: 'postgres', host: '127.0.0.1', port: pg.port, user: 'bk', password: PASSWORD, database: 'app' }));
    const estimate = await driver.estimateSize({ signal: new AbortController().signal, logger: silentLogger });
    const raw = (await manifests('app')).map((m) => (m.raw as { bytes: number }).bytes);
    expect(raw.length).toBeGreaterThan(0);
    expect(estimate).toBeGreaterThanOrEqual(Math.max(...raw));
  });

  it('restore drill: a temp database, inspected like the manifest checks, then dropped', async () => {
    const driver = new PostgresDriver('app', postgresOptionsSchema.parse({ driver: 'postgres', host: '127.0.0.1', port: pg.port, user: 'bk', password: PASSWORD, database: 'app' }));
    const signal = new AbortController().signal;
    const session = await driver.backup({ signal, logger: silentLogger });
    const chunks: Buffer[] = [];
    for await (const c of session.stream) chunks.push(c as Buffer);
    const info = await session.done;
    const drill = await driver.prepareDrill({ signal, logger: silentLogger, options: {} });
    expect(drill.to).toMatch(/^bk_drill_[0-9a-f]+$/);
    try {
      await driver.restore(Readable.from([Buffer.concat(chunks)]), { signal, logger: silentLogger, to: drill.to, options: {}, dumpInfo: info });
      expect(await drill.inspect()).toEqual(info.checks);
      expect(await fingerprint(pg, drill.to)).toBe(await fingerprint(pg, 'app'));
    } finally {
      await drill.dispose();
    }
    expect(await pg.psql(`SELECT count(*) FROM pg_database WHERE datname = '${drill.to}'`)).toBe('0');
  });

  it('a restore error stops the restore, exits non-zero, and changes nothing (both formats)', async () => {
    // A view where the dump has a table: DROP TABLE IF EXISTS cannot remove it.
    await pg.createDb('conflict');
    await pg.psql(`CREATE SCHEMA sales; CREATE VIEW sales.customers AS SELECT 1 AS x; CREATE TABLE marker (x int); INSERT INTO marker VALUES (1);`, 'conflict');
    const before = await fingerprint(pg, 'conflict');
    for (const target of ['app', 'app-plain']) {
      const run = await bk(['restore', target, '--to', 'conflict', '--yes']);
      expect(run.exitCode, target).toBe(1);
      expect(said(run)).toMatch(new RegExp(`${target}: restore: (pg_restore|psql) exited with code \\d`));
      expect(said(run)).toMatch(/customers/);
      expect(await fingerprint(pg, 'conflict'), target).toBe(before);
    }
  });

  it('a custom archive is checked while pg_restore reads it: a payload that fails its checksum commits nothing and leaves no database behind', async () => {
    // A copy of app's newest backup whose stored bytes are intact and whose manifest has the wrong
    // raw sha256: only the check at the very end of the decompressed stream can find it.
    const [newest] = (await manifests('app')).slice(-1) as { id: string; archive: string; raw: { sha256: string } }[];
    const archive = `app-rot/${newest!.id}.pgdump.zst`;
    await mkdir(join(dir, 'store', 'app-rot'), { recursive: true });
    await writeFile(join(dir, 'store', archive), await readFile(join(dir, 'store', newest!.archive)));
    const rot = { ...newest, target: 'app-rot', archive, raw: { ...newest!.raw, sha256: 'f'.repeat(64) } };
    await writeFile(join(dir, 'store', 'app-rot', `${newest!.id}.manifest.json`), JSON.stringify(rot));
    const rotConfig = join(dir, 'rot.yaml');
    await writeFile(rotConfig, config(`  app-rot:\n${tcp('app')}`), { mode: 0o600 });

    // A destination holding the backup's objects, changed since: the restore's --clean drops and
    // recreates them, and sets the sequences (setval, not undone by a rollback), all before the end.
    const copy = await bk(['restore', 'app', '--to', 'rot_existing', '--yes']);
    expect(copy.exitCode, said(copy)).toBe(0);
    await pg.psql(`DELETE FROM sales.orders WHERE id % 2 = 0; SELECT setval('sales.invoice_no', 7);`, 'rot_existing');
    const before = await fingerprint(pg, 'rot_existing');
    for (const to of ['rot_existing', 'rot_new']) {
      const run = await bk(['restore', 'app-rot', '--to', to, '--yes', '--log-level', 'info'], { config: rotConfig });
      expect(run.exitCode, said(run)).toBe(4);
      expect(said(run)).toMatch(/checking archive while restoring/);
      expect(said(run)).toMatch(/decompressed payload of app-rot\/\S+ does not match its manifest: sha256/);
    }
    expect(await fingerprint(pg, 'rot_existing')).toBe(before);
    expect(await pg.psql(`SELECT count(*) FROM pg_database WHERE datname = 'rot_new'`)).toBe('0');
  });

  it('wrong password: fails naming target and step, with the fix, and lists nothing', async () => {
    const broken = join(dir, 'broken.yaml');
    const run = await bk(['backup', 'bad'], { config: broken });
    expect(run.exitCode).toBe(1);
    expect(said(run)).toMatch(/bad: connect: cannot log in to PostgreSQL at 127\.0\.0\.1:\d+/);
    expect(said(run)).toMatch(/password authentication failed/);
    expect(said(run)).toMatch(/fix: check user and password/);
    const check = await bk(['config', 'check'], { config: broken });
    expect(check.exitCode).toBe(2);
    expect(check.stdout).toMatch(/FAIL target bad: connection: cannot log in/);
  });

  it('an imported SQL dump that ends psql early (\\q) fails the restore instead of passing for one that committed', async () => {
    // psql exits 0 at a \q; the rest of the dump and bk's COMMIT after it never run.
    const broken = join(dir, 'broken.yaml');
    const sql = (quit: string) => `CREATE TABLE before_quit (id int);\nINSERT INTO before_quit VALUES (1);\n${quit}CREATE TABLE after_quit (id int);\n`;
    const tables = (db: string) => pg.psql(`SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'`, db);
    await writeFile(join(dir, 'legacy-whole.sql'), sql(''));
    await writeFile(join(dir, 'legacy-quit.sql'), sql('\\q\n'));
    for (const [file, time] of [['legacy-whole.sql', '2024-01-01T02:00'], ['legacy-quit.sql', '2024-01-02T02:00']]) {
      const imported = await bk(['import', 'legacy-sql', join(dir, file!), '--time', time!], { config: broken });
      expect(imported.exitCode, imported.stderr).toBe(0);
    }
    const whole = await bk(['restore', 'legacy-sql', '--at', '2024-01-01T03:00', '--to', 'legacy_whole', '--yes'], { config: broken });
    expect(whole.exitCode, whole.stderr).toBe(0);
    expect(await tables('legacy_whole')).toBe('after_quit,before_quit');
    const quit = await bk(['restore', 'legacy-sql', '--to', 'legacy_quit', '--yes'], { config: broken });
    expect(quit.exitCode).toBe(1);
    expect(said(quit)).toMatch(/legacy-sql: restore: psql exited 0 before it had read the whole dump/);
    expect(said(quit)).toMatch(/fix: nothing was committed/);
    // Nothing was committed, and the database the restore created for it is gone again.
    expect(await pg.psql(`SELECT count(*) FROM pg_database WHERE datname = 'legacy_quit'`)).toBe('0');
  });

  it('an empty or truncated dump fails even when pg_dump exits 0, and lists nothing', async () => {
    const broken = join(dir, 'broken.yaml');
    const empty = await bk(['backup', 'fake-empty'], { config: broken });
    expect(empty.exitCode).toBe(1);
    expect(said(empty)).toMatch(/fake-empty: dump: .*(empty|produced no data)/);
    const truncated = await bk(['backup', 'fake-truncated'], { config: broken });
    expect(truncated.exitCode).toBe(1);
    expect(said(truncated)).toMatch(/fake-truncated: dump: pg_dump exited 0 but the SQL dump is truncated/);
  });

  it('server down or pg_dump missing: exit 1 with the fix, nothing listed', async () => {
    const downCfg = join(dir, 'down.yaml');
    await writeFile(downCfg, config(`  down:\n    driver: postgres\n    host: 127.0.0.1\n    port: ${await freePort()}\n    user: bk\n    database: app\n`));
    const down = await bk(['backup', 'down'], { config: downCfg });
    expect(down.exitCode).toBe(1);
    expect(said(down)).toMatch(/down: connect: cannot connect to PostgreSQL at 127\.0\.0\.1:\d+/);
    expect(said(down)).toMatch(/fix: is PostgreSQL running and reachable/);
    expect(said(down)).not.toMatch(/\n\s+at /);
    expect(await manifests('down')).toEqual([]);

    const before = await listed('app');
    await mkdir(join(dir, 'empty-bin'), { recursive: true });
    const noTools = await bk(['backup', 'app'], { env: { PATH: join(dir, 'empty-bin') } });
    expect(noTools.exitCode).toBe(1);
    expect(said(noTools)).toMatch(/app: .*pg_dump not found[\s\S]*fix: install the PostgreSQL client tools/);
    expect(await listed('app')).toEqual(before);
  });

  it('restore over the source needs --yes without a terminal, and changes nothing without it', async () => {
    await pg.psql("CREATE TABLE IF NOT EXISTS marker (v text); INSERT INTO marker VALUES ('after the backup');", 'app');
    const before = await fingerprint(pg, 'app');
    const run = await bk(['restore', 'app']);
    expect(run.exitCode).toBe(2);
    expect(said(run)).toMatch(/--yes/);
    expect(await fingerprint(pg, 'app')).toBe(before);
    await pg.psql('DROP TABLE marker;', 'app');
  });

  it('none of the failed backups is listed', async () => {
    const run = await bk(['--json', 'list'], { config: join(dir, 'broken.yaml') });
    const targets = new Set(run.json<ListJson>().backups.map((b) => b.target));
    // The same storage holds the good backups: the listing works, and has none of the failed ones.
    expect(targets.has('app')).toBe(true);
    for (const failed of ['bad', 'fake-empty', 'fake-truncated']) expect(targets.has(failed), failed).toBe(false);
  });

  it('leaks no password in output or manifests, and leaves no temp files', async () => {
    for (const o of outputs) expect(o).not.toContain(PASSWORD);
    for (const o of outputs) expect(o).not.toContain(BAD_PASSWORD);
    for (const target of ['app', 'app-plain', 'big', 'roles']) {
      for (const m of await manifests(target)) expect(JSON.stringify(m)).not.toContain(PASSWORD);
    }
    expect(await readdir(tmp)).toEqual([]);
  });

  it('the snapshot session killed once pg_dump copies rows: the dump keeps its snapshot, the backup restores whole', async () => {
    const child = spawnBk(['--config', join(dir, 'backup.config.yaml'), 'backup', 'big', '--log-level', 'info'], { cwd: dir, env: { APP_DB_PASSWORD: PASSWORD, TMPDIR: tmp } });
    // pg_dump has imported the snapshot once it copies a table.
    const copying = `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND query LIKE 'COPY %'`;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && child.exitCode === null && (await pg.psql(copying, 'postgres')).trim() === '0');
    const session = (await descendants(child.pid!)).find((p) => p.comm === 'psql' && p.state !== 'Z');
    expect(session, 'bk\'s psql session while pg_dump copies').toBeDefined();
    process.kill(session!.pid, 'SIGKILL');
    const run = await child;
    expect(run.exitCode, `${String(run.stdout)}\n${String(run.stderr)}`).toBe(0);
    const restore = await bk(['restore', 'big', '--to', 'big_session_killed', '--yes']);
    expect(restore.exitCode, said(restore)).toBe(0);
    expect(await fingerprint(pg, 'big_session_killed')).toBe(await fingerprint(pg, 'big'));
  });

  // Last: it kills the server.
  it('server killed mid-dump: the backup fails and lists nothing', async () => {
    const before = await listed('big');
    const child = spawnBk(['--config', join(dir, 'backup.config.yaml'), 'backup', 'big'], { cwd: dir, env: { APP_DB_PASSWORD: PASSWORD, TMPDIR: tmp } });
    // Wait until pg_dump is running, then crash the server under it.
    let seen = false;
    const deadline = Date.now() + 20_000;
    while (!seen && Date.now() < deadline) {
      for (const pid of await readdir('/proc')) {
        // The dump itself (it names a database), not the `pg_dump --version` probe before it.
        if (/^\d+$/.test(pid) && /^(\S*\/)?pg_dump\0.*--dbname=/s.test(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))) {
          // Struck at once: the rest of the sweep would give the dump time to finish.
          seen = true;
          break;
        }
      }
    }
    expect(seen).toBe(true);
    await pg.kill();
    const result = await child;
    expect(result.exitCode).toBe(1);
    expect(`${String(result.stdout)}\n${String(result.stderr)}`).toMatch(/big: dump: /);
    expect(await listed('big')).toEqual(before);
  });
});
