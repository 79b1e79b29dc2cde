/**
 * MySQL / MariaDB driver: a consistent logical dump with mariadb-dump or mysqldump (whichever is
 * installed), restored with the mariadb / mysql client. The payload is the tool's plain SQL, so
 * `mysql db < dump.sql` restores it without bk.
 *
 * Layouts. `database: x` dumps one database without `--databases`: no CREATE DATABASE and no USE,
 * so the dump restores into any database (`--to other`). `databases: […]` and `all: true` use
 * `--databases`, whose CREATE DATABASE/USE statements put every table back where it came from;
 * such a dump restores onto the same or another server, never under another name.
 *
 * Credentials travel only in a 0600 option file (see mysql-client.ts); restores stop at the first
 * error (the client without --force exits at the first failing statement).
 */
import { randomBytes } from 'node:crypto';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { execa } from 'execa';
import { z } from 'zod';
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';
import { redact, redactUrl, registerSecret } from '../secrets.js';
import { shellQuote } from '../codecs/compression.js';
import { toolError } from '../util/exec.js';
import { withDatabase } from '../util/url.js';
import { onPath } from '../util/on-path.js';
import { withStdoutBuffer } from '../util/stdout-buffer.js';
import type { BackupContext, CheckResult, DrillCapable, Driver, DumpInfo, DumpSession, RestoreCheckData, RestoreContext, RestoreDrill } from './driver.js';
import {
  childEnv,
  connectionArgs,
  findTool,
  ident,
  literal,
  runQuery,
  versionAtLeast,
  withMysqlHint,
  withOptionFile,
  writeOptionFile,
  type ClientTool,
  type Connection,
  type Flavor,
  type SslOptions,
} from './mysql-client.js';
import { DumpScanner, type LineKind } from './mysql-dump-scan.js';
import { usersAndGrantsSql } from './mysql-users.js';

/** Never part of `all: true`: server internals (users and grants have their own option). */
export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

/** Dump tool options bk sets itself or that would break streaming, the trailer check or the layout. */
const FORBIDDEN_ARGS: { name: string; why: string }[] = [
  { name: 'password', why: 'set password or password_file instead' },
  { name: 'defaults-file', why: 'bk passes the connection in its own option file' },
  { name: 'defaults-extra-file', why: 'bk passes the connection in its own option file' },
  { name: 'defaults-group-suffix', why: 'bk passes the connection in its own option file' },
  { name: 'no-defaults', why: 'bk passes the connection in its own option file' },
  { name: 'login-path', why: 'bk passes the connection in its own option file' },
  { name: 'print-defaults', why: 'it prints instead of dumping' },
  { name: 'result-file', why: 'bk reads the dump from stdout' },
  { name: 'tab', why: 'bk stores one SQL stream' },
  { name: 'xml', why: 'bk stores SQL' },
  { name: 'databases', why: 'use the databases option' },
  { name: 'all-databases', why: 'use all: true' },
  { name: 'tables', why: 'use exclude_tables' },
  { name: 'compact', why: 'bk needs the "-- Dump completed" trailer to detect truncated dumps' },
  { name: 'skip-comments', why: 'bk needs the "-- Dump completed" trailer to detect truncated dumps' },
  { name: 'disable-comments', why: 'bk needs the "-- Dump completed" trailer to detect truncated dumps' },
];

/** Why an extra dump argument is refused, or undefined when it is fine. */
export function extraArgProblem(arg: string): string | undefined {
  const m = /^--([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(arg);
  if (!m) return `"${arg}": use long options, with the value after "=" (--name=value)`;
  // The clients accept unambiguous prefixes and loose-/maximum- forms: compare normalized names.
  const name = m[1]!.toLowerCase().replace(/_/g, '-').replace(/^(?:loose|maximum)-/, '');
  if ('password'.startsWith(name) || name.startsWith('password')) return `"${m[1]}": no password options; set password or password_file`;
  for (const f of FORBIDDEN_ARGS) {
    if (name === f.name || (name.length >= 3 && f.name.startsWith(name))) return `"--${m[1]}" is not allowed: ${f.why}`;
  }
  if (name === 'comments' && /^(?:0|false|off|no)$/i.test(m[2] ?? '')) return `"${arg}" is not allowed: bk needs the "-- Dump completed" trailer`;
  return undefined;
}

/** Database names: what the server allows, minus what would read as an option or a path. */
const dbName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[^/\\.]+$/, 'a database name has no "/", "\\" or "."')
  .refine((s) => !s.startsWith('-'), 'a database name may not start with "-"');

export function mysqlOptionsSchema<D extends string>(driver: D) {
  return z
    .object({
      driver: z.literal(driver),
      /** Server host; "localhost" without port means the unix socket. Default: the client's (option files, MYSQL_HOST). */
      host: z.string().min(1).optional(),
      port: z.number().int().min(1).max(65535).optional(),
      /** Unix socket path (instead of host/port). */
      socket: z.string().min(1).optional(),
      user: z.string().min(1).optional(),
      /** Secret: `password_file` reads it from a file; never put on a command line. */
      password: z.string().optional(),
      /** One database, dumped without CREATE DATABASE/USE so it can be restored under another name. */
      database: dbName.optional(),
      /** Several databases (--databases): restored under their own names. */
      databases: z.array(dbName).min(1).optional(),
      /** Every database except mysql, information_schema, performance_schema and sys. */
      all: z.literal(true).optional(),
      /** Tables (and views) to leave out: "table" with database, "db.table" otherwise. */
      exclude_tables: z.array(z.string().min(1)).default([]),
      /** With all: true, append the accounts, roles and grants (SHOW CREATE USER / SHOW GRANTS). */
      users_and_grants: z.boolean().default(false),
      /** Record the binlog file/position and GTID in the manifest when the server has a binlog. */
      binlog_position: z.boolean().default(true),
      ssl: z.boolean().optional(),
      ssl_ca: z.string().min(1).optional(),
      ssl_cert: z.string().min(1).optional(),
      ssl_key: z.string().min(1).optional(),
      ssl_verify_server_cert: z.boolean().optional(),
      /** More dump tool options, long form only (--name=value); password and layout options are refused. */
      extra_args: z
        .array(z.string())
        .default([])
        .superRefine((args, ctx) => {
          args.forEach((a, i) => {
            const problem = extraArgProblem(a);
            if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [i] });
          });
        }),
    })
    .superRefine((o, ctx) => {
      const scopes = [o.database !== undefined, o.databases !== undefined, o.all === true].filter(Boolean).length;
      if (scopes !== 1) {
        ctx.addIssue({ code: 'custom', path: ['database'], message: 'set exactly one of database, databases or all: true' });
      }
      if (o.users_and_grants && o.all !== true) {
        ctx.addIssue({ code: 'custom', path: ['users_and_grants'], message: 'users_and_grants needs all: true (accounts and grants are server-wide)' });
      }
      if (o.database === undefined) {
        o.exclude_tables.forEach((t, i) => {
          if (!t.includes('.')) ctx.addIssue({ code: 'custom', path: ['exclude_tables', i], message: `write "db.${t}": with several databases a table needs its database` });
        });
      }
    });
}

export const mysqlOptionsSchemaFor = { mysql: mysqlOptionsSchema('mysql'), mariadb: mysqlOptionsSchema('mariadb') };
export type MysqlOptions = z.infer<ReturnType<typeof mysqlOptionsSchema<'mysql' | 'mariadb'>>>;

/** One database without CREATE DATABASE/USE, or several with them. */
export type Layout = 'single-database' | 'multi-database';

interface SourceFacts {
  version: string;
  serverFlavor: Flavor;
  logBin: boolean;
  currentUser: string;
  databases: { name: string; charset: string; collation: string }[];
  views: string[][];
  routines: string[][];
  triggers: string[][];
  events: string[][];
  globalPrivileges: Set<string>;
}

interface Destination {
  conn: Connection;
  /** The database to restore into (single-database dumps); undefined: the dump says where. */
  database?: string;
}

export class MysqlDriver implements Driver, DrillCapable {
  readonly payloadExt = 'sql';

  constructor(
    private readonly target: string,
    private readonly options: MysqlOptions,
  ) {
    // Ad-hoc passwords (BK_MYSQL_PASSWORD, MYSQL_PWD) did not pass through config interpolation.
    registerSecret(options.password ?? process.env.MYSQL_PWD);
  }

  get kind(): string {
    return this.options.driver;
  }

  private get layout(): Layout {
    return this.options.database !== undefined ? 'single-database' : 'multi-database';
  }

  private get conn(): Connection {
    const o = this.options;
    return { host: o.host, port: o.port, socket: o.socket, user: o.user, password: o.password ?? process.env.MYSQL_PWD, ssl: this.ssl };
  }

  private get ssl(): SslOptions | undefined {
    const o = this.options;
    if (o.ssl === undefined && !o.ssl_ca && !o.ssl_cert && !o.ssl_key && o.ssl_verify_server_cert === undefined) return undefined;
    return { ssl: o.ssl, ca: o.ssl_ca, cert: o.ssl_cert, key: o.ssl_key, verifyServerCert: o.ssl_verify_server_cert };
  }

  private get where(): string {
    return describeServer(this.conn);
  }

  // ---------------------------------------------------------------------------------------------
  // check

  async check(): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    const dump = await findTool('dump').catch((e: BkError) => e);
    const client = await findTool('client').catch((e: BkError) => e);
    for (const [name, t] of [['dump tool', dump], ['client', client]] as const) {
      results.push(t instanceof BkError ? { name, ok: false, detail: t.message, hint: t.hint } : { name, ok: true, detail: `${t.versionLine} (${t.path})` });
    }
    if (client instanceof BkError) return results;
    try {
      await withOptionFile(this.conn, async (file) => {
        const facts = await this.sourceFacts(client, file, 'check');
        results.push({ name: 'connection', ok: true, detail: `${this.where}: connected as ${facts.currentUser}, server ${facts.version}` });
        const wantedUser = this.options.user;
        if (wantedUser !== undefined && facts.currentUser.split('@')[0] !== wantedUser) {
          results.push({
            name: 'user',
            ok: false,
            detail: `connected as ${facts.currentUser}, not ${wantedUser}`,
            hint: 'an option file read after bk\'s (~/.my.cnf) sets another user; remove it there',
          });
        }
        results.push(this.databasesCheck(facts));
        results.push(await this.privilegesCheck(client, file, facts));
        results.push({
          name: 'binlog',
          ok: true,
          detail: facts.logBin ? 'binary log on: the position is recorded with each backup' : 'binary log off: no position to record (fine for backups; needed for point-in-time recovery)',
        });
      });
    } catch (e) {
      const err = e instanceof BkError ? e : new BkError('FAILED', String(e));
      results.push({ name: 'connection', ok: false, detail: `${this.where}: ${err.message}${err.toolOutput ? ` — ${err.toolOutput.trim().split('\n').pop()}` : ''}`, hint: err.hint });
    }
    return results;
  }

  private databasesCheck(facts: SourceFacts): CheckResult {
    const have = new Set(facts.databases.map((d) => d.name));
    if (this.options.all) {
      return facts.databases.length > 0
        ? { name: 'databases', ok: true, detail: `${facts.databases.length} databases: ${[...have].join(', ')}` }
        : { name: 'databases', ok: false, detail: 'no databases to back up besides the system schemas', hint: 'create one, or check the user sees them (SHOW DATABASES)' };
    }
    const wanted = this.wantedDatabases();
    const missing = wanted.filter((d) => !have.has(d));
    return missing.length === 0
      ? { name: 'databases', ok: true, detail: wanted.join(', ') }
      : { name: 'databases', ok: false, detail: `not found or not visible: ${missing.join(', ')}`, hint: 'check the name, and that the user has privileges on it' };
  }

  /**
   * What a dump needs: SELECT (tables), SHOW VIEW (views), TRIGGER (triggers), EVENT (events), and
   * read access to routine definitions — without it mysqldump leaves routines out silently. Read
   * from information_schema, which does not show privileges that come through roles.
   */
  private async privilegesCheck(client: ClientTool, file: string, facts: SourceFacts): Promise<CheckResult> {
    const grantee = GRANTEE_SQL;
    const rows = await this.query(
      client,
      file,
      `SELECT 'role', COUNT(*) FROM information_schema.APPLICABLE_ROLES;\n` +
        `SELECT 'schema', s.SCHEMA_NAME, p.PRIVILEGE_TYPE FROM information_schema.SCHEMATA s JOIN information_schema.SCHEMA_PRIVILEGES p ON s.SCHEMA_NAME LIKE p.TABLE_SCHEMA WHERE p.GRANTEE = ${grantee} AND ${this.schemaCondition('s.SCHEMA_NAME')};\n` +
        `SELECT 'proc', PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ${grantee} AND TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'proc';\n` +
        `SELECT 'mysqlschema', PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ${grantee} AND TABLE_SCHEMA = 'mysql';`,
      'check',
      { force: true },
    );
    const roles = Number(rows.find((r) => r[0] === 'role')?.[1] ?? 0);
    const global = facts.globalPrivileges;
    const bySchema = new Map<string, Set<string>>();
    for (const r of rows.filter((r) => r[0] === 'schema')) {
      if (!bySchema.has(r[1]!)) bySchema.set(r[1]!, new Set());
      bySchema.get(r[1]!)!.add(r[2]!);
    }
    const has = (db: string, priv: string) => global.has(priv) || global.has('ALL PRIVILEGES') || (bySchema.get(db)?.has(priv) ?? false);
    const missing: string[] = [];
    for (const { name: db } of facts.databases) {
      const need = ['SELECT'];
      if (facts.views.some((v) => v[0] === db)) need.push('SHOW VIEW');
      if (facts.triggers.some((t) => t[0] === db)) need.push('TRIGGER');
      if (facts.events.some((e) => e[0] === db)) need.push('EVENT');
      const lacking = need.filter((p) => !has(db, p));
      if (lacking.length) missing.push(`${lacking.join(', ')} on ${db}`);
    }
    const routineReaders = ['SELECT', 'SHOW CREATE ROUTINE', 'SHOW_ROUTINE'];
    const canReadRoutines =
      routineReaders.some((p) => global.has(p)) ||
      rows.some((r) => (r[0] === 'proc' || r[0] === 'mysqlschema') && r[1] === 'SELECT');
    if (!canReadRoutines) missing.push('reading routine definitions (global SELECT, SELECT on mysql.proc, or SHOW CREATE ROUTINE / SHOW_ROUTINE): without it routines are left out silently');
    if (this.options.users_and_grants && !global.has('SELECT')) missing.push('global SELECT (users_and_grants reads mysql.user)');
    if (missing.length === 0) return { name: 'privileges', ok: true, detail: 'enough to dump tables, views, triggers, events and routines' };
    if (roles > 0) return { name: 'privileges', ok: true, detail: `the user has roles; bk cannot tell whether they grant: ${missing.join('; ')}` };
    return { name: 'privileges', ok: false, detail: `missing: ${missing.join('; ')}`, hint: 'see docs/drivers/mysql.md for the GRANT statement' };
  }

  // ---------------------------------------------------------------------------------------------
  // backup

  /** Data and index length of the tables in scope: a generous guess of the dump's size. */
  async estimateSize(ctx: BackupContext): Promise<number | undefined> {
    const client = await findTool('client');
    const rows = await withOptionFile(this.conn, (file) =>
      this.query(client, file, `SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES WHERE ${this.schemaCondition('TABLE_SCHEMA')};`, 'estimate size', { signal: ctx.signal }),
    );
    return Number(rows[0]?.[0]) || undefined;
  }

  async backup(ctx: BackupContext): Promise<DumpSession> {
    const log = ctx.logger;
    const [dump, client] = await Promise.all([findTool('dump'), findTool('client')]).catch((e: unknown) => {
      throw e instanceof BkError ? e.at(this.target, 'dump') : e;
    });
    const file = await writeOptionFile(this.conn);
    try {
      const facts = await this.sourceFacts(client, file.path, 'connect', ctx.signal);
      const databases = this.options.all ? facts.databases.map((d) => d.name) : this.wantedDatabases();
      const missing = databases.filter((d) => !facts.databases.some((f) => f.name === d));
      if (missing.length > 0) {
        throw new BkError('SOURCE', `database${missing.length > 1 ? 's' : ''} not found on ${this.where}: ${missing.join(', ')}`, {
          target: this.target,
          step: 'connect',
          hint: 'check the database names, and that the user has privileges on them',
        });
      }
      if (databases.length === 0) {
        throw new BkError('SOURCE', `no databases to back up on ${this.where} (system schemas are never included)`, { target: this.target, step: 'connect', hint: 'create a database or check the user sees it' });
      }
      const users = this.options.users_and_grants
        ? await usersAndGrantsSql((sql, o) => this.query(client, file.path, sql, 'users', { force: o?.force, signal: ctx.signal }), facts.serverFlavor, log)
        : undefined;
      const binlog = this.binlogArgs(dump, facts, log);
      const args = [
        ...connectionArgs(file.path, dump, this.ssl),
        '--single-transaction',
        '--quick',
        '--routines',
        '--triggers',
        '--events',
        '--hex-blob',
        '--default-character-set=utf8mb4',
        // Tablespaces need PROCESS (MySQL ≥ 8.0.21) and matter only for NDB/general tablespaces.
        '--no-tablespaces',
        '--max-allowed-packet=1G',
        ...binlog.args,
        ...this.compatArgs(dump, facts),
        ...this.excludedTables(databases).map((t) => `--ignore-table=${t}`),
        // After bk's flags, so they can override them (e.g. --skip-events without EVENT privilege).
        ...this.options.extra_args,
        // Sacrificial: an extra option written without its "=value" takes the next argument as
        // its value; let that be this harmless repeat rather than the databases.
        '--quick',
        ...(this.layout === 'single-database' ? ['--', databases[0]!] : ['--databases', '--', ...databases]),
      ];
      log.info('dumping', { step: 'dump', tool: dump.name, databases, binlog: binlog.args.length > 0 });
      const env = childEnv();
      const command = withStdoutBuffer(dump.path, args, env);
      const sub = execa(command.file, command.args, {
        env,
        extendEnv: false,
        stdin: 'ignore',
        buffer: { stdout: false, stderr: true },
        maxBuffer: { stderr: 16 * 1024 * 1024 },
        cancelSignal: ctx.signal,
        forceKillAfterDelay: 5000,
      });
      const exited = sub.finally(() => file.dispose());
      exited.catch(() => undefined);

      const scanner = new DumpScanner();
      const stdout = sub.stdout!;
      // Users and grants follow the dump once the tool has succeeded; asked for at the tap's end.
      const stream = new DumpTap(scanner, () => verified.then(() => users?.sql ?? ''));
      /** Set when the consumer destroyed the stream before the tool finished (a storage failed). */
      const abandoned: { error?: unknown } = {};
      // Settles once the tool has exited and every byte of its output went through the scanner.
      const verified = (async () => {
        let result;
        try {
          // The tap, not stdout's end: a slow consumer leaves the last chunks unscanned after it.
          [result] = await Promise.all([sub, finished(stdout), stream.scanned]);
        } catch (e) {
          // Killed below because the backup's output failed: that failure is the cause, not the kill.
          if (abandoned.error instanceof BkError) throw abandoned.error;
          throw withMysqlHint(toolError(dump.spec, e, { target: this.target, step: 'dump' }), this.target);
        }
        const stderr = String(result.stderr ?? '').trim();
        if (stderr) log.warn(`${dump.name}: ${redact(stderr)}`, { step: 'dump' });
        const scan = scanner.result();
        if (!scan.completed) {
          throw new BkError('SOURCE', `${dump.name} exited 0 but its output is ${scan.bytes === 0 ? 'empty' : 'cut short (no "-- Dump completed" trailer)'}`, {
            target: this.target,
            step: 'dump',
            hint: 'the dump is incomplete; check the server log and run the backup again',
            toolOutput: stderr || undefined,
          });
        }
        return scan;
      })();
      verified.catch(() => undefined);

      stdout.on('error', (e) => stream.destroy(e));
      stdout.pipe(stream);
      // If the consumer goes away, stop the tool instead of leaving it blocked on a full pipe.
      stream.on('close', () => {
        if (sub.exitCode !== null) return;
        abandoned.error = stream.errored ?? undefined;
        sub.kill();
      });

      const done = verified.then((scan): DumpInfo => {
        const single = this.layout === 'single-database';
        const qualify = (db: string, name: string) => (single ? name : `${db}.${name}`);
        const excluded = new Set(this.excludedTables(databases));
        const keep = (db: string, table: string) => !excluded.has(`${db}.${table}`);
        return {
          tools: [{ name: dump.name, version: dump.versionLine }],
          serverVersion: facts.version,
          contents: databases,
          checks: sortedChecks({
            tables: scan.tables,
            views: facts.views.filter(([db, v]) => keep(db!, v!)).map(([db, v]) => qualify(db!, v!)),
            routines: facts.routines.map(([db, type, name]) => `${type} ${qualify(db!, name!)}`),
            triggers: facts.triggers.filter(([db, , table]) => keep(db!, table!)).map(([db, t]) => qualify(db!, t!)),
            events: facts.events.map(([db, e]) => qualify(db!, e!)),
          }),
          extra: {
            layout: this.layout,
            serverFlavor: facts.serverFlavor,
            databases: Object.fromEntries(facts.databases.filter((d) => databases.includes(d.name)).map((d) => [d.name, { charset: d.charset, collation: d.collation }])),
            binlog: scan.binlog.file || scan.binlog.gtid ? scan.binlog : binlog.note,
            ...(users ? { usersAndGrants: { accounts: users.accounts, skipped: users.skipped } } : {}),
          },
        };
      });
      done.catch(() => undefined);
      return { stream, done };
    } catch (e) {
      await file.dispose();
      throw e instanceof BkError ? e.at(this.target, 'dump') : e;
    }
  }

  /** Binlog coordinates (as comments in the dump) when the server has a binlog and the user may read them. */
  private binlogArgs(dump: ClientTool, facts: SourceFacts, log: Logger): { args: string[]; note?: string } {
    if (!this.options.binlog_position) return { args: [], note: 'not recorded (binlog_position: false)' };
    if (!facts.logBin) return { args: [], note: 'off' };
    const both = dump.flavor === 'mariadb' && facts.serverFlavor === 'mariadb';
    // MariaDB reads a consistent position without a global lock. MySQL's mysqldump takes FLUSH
    // TABLES WITH READ LOCK for a moment and runs SHOW MASTER STATUS: RELOAD and REPLICATION CLIENT.
    if (!both) {
      const p = facts.globalPrivileges;
      const all = p.has('ALL PRIVILEGES');
      const canLock = all || p.has('RELOAD');
      const canRead = all || p.has('REPLICATION CLIENT') || p.has('BINLOG MONITOR') || p.has('SUPER');
      if (!canLock || !canRead) {
        log.info('binlog position not recorded: the user lacks RELOAD and REPLICATION CLIENT', { step: 'dump' });
        return { args: [], note: 'not recorded (needs RELOAD and REPLICATION CLIENT)' };
      }
    }
    if (dump.flavor === 'mariadb') return { args: ['--master-data=2', ...(facts.serverFlavor === 'mariadb' ? ['--gtid'] : [])] };
    return { args: [versionAtLeast(dump.version, 8, 0, 26) ? '--source-data=2' : '--master-data=2'] };
  }

  /** Flags for mixing MySQL's mysqldump with other servers. */
  private compatArgs(dump: ClientTool, facts: SourceFacts): string[] {
    if (dump.flavor !== 'mysql') return [];
    // Never SET @@GLOBAL.GTID_PURGED in the dump: it breaks restores into servers with GTIDs.
    const args = ['--set-gtid-purged=OFF'];
    // An 8.0 mysqldump asks MariaDB and MySQL 5.7 for column statistics they do not have.
    if (versionAtLeast(dump.version, 8) && (facts.serverFlavor === 'mariadb' || !versionAtLeast(parseServerVersion(facts.version), 8))) args.push('--column-statistics=0');
    return args;
  }

  /** exclude_tables as db.table. */
  private excludedTables(databases: string[]): string[] {
    return this.options.exclude_tables.flatMap((t) => (t.includes('.') ? [t] : databases.map((d) => `${d}.${t}`)));
  }

  private wantedDatabases(): string[] {
    return this.options.database !== undefined ? [this.options.database] : (this.options.databases ?? []);
  }

  private schemaCondition(column: string): string {
    if (this.options.all) return `${column} NOT IN (${SYSTEM_SCHEMAS.map(literal).join(', ')})`;
    return `${column} IN (${this.wantedDatabases().map(literal).join(', ')})`;
  }

  /** Server version, binlog state, user, databases and their objects, read before the dump. */
  private async sourceFacts(client: ClientTool, file: string, step: string, signal?: AbortSignal): Promise<SourceFacts> {
    const c = (col: string) => this.schemaCondition(col);
    const rows = await this.query(
      client,
      file,
      [
        `SELECT 'server', VERSION(), @@log_bin, CURRENT_USER();`,
        `SELECT 'db', SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE ${c('SCHEMA_NAME')} ORDER BY SCHEMA_NAME;`,
        `SELECT 'view', TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS WHERE ${c('TABLE_SCHEMA')};`,
        `SELECT 'routine', ROUTINE_SCHEMA, ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ${c('ROUTINE_SCHEMA')};`,
        `SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE ${c('TRIGGER_SCHEMA')};`,
        `SELECT 'event', EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS WHERE ${c('EVENT_SCHEMA')};`,
        `SELECT 'priv', PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ${GRANTEE_SQL};`,
      ].join('\n'),
      step,
      { signal },
    );
    const tagged = (tag: string) => rows.filter((r) => r[0] === tag).map((r) => r.slice(1));
    const server = tagged('server')[0];
    if (!server) throw new BkError('SOURCE', `${this.where}: the server answered nothing`, { target: this.target, step });
    return {
      version: server[0]!,
      serverFlavor: /mariadb/i.test(server[0]!) ? 'mariadb' : 'mysql',
      logBin: server[1] === '1',
      currentUser: server[2]!,
      databases: tagged('db').map(([name, charset, collation]) => ({ name: name!, charset: charset!, collation: collation! })),
      views: tagged('view'),
      routines: tagged('routine'),
      triggers: tagged('trigger'),
      events: tagged('event'),
      globalPrivileges: new Set(tagged('priv').map((r) => r[0]!)),
    };
  }

  private query(client: ClientTool, file: string, sql: string, step: string, opts: { database?: string; force?: boolean; signal?: AbortSignal } = {}): Promise<string[][]> {
    return runQuery(client, file, this.ssl, sql, { target: this.target, step, signal: opts.signal, database: opts.database, force: opts.force });
  }

  // ---------------------------------------------------------------------------------------------
  // restore

  async restore(stream: Readable, ctx: RestoreContext): Promise<void> {
    const layout = layoutOf(ctx.dumpInfo);
    const dest = this.destination(ctx.to, layout, ctx.dumpInfo);
    const client = await findTool('client').catch((e: unknown) => {
      throw e instanceof BkError ? e.at(this.target, 'restore') : e;
    });
    const file = await writeOptionFile(dest.conn);
    try {
      if (dest.database !== undefined) {
        await this.query(client, file.path, `CREATE DATABASE IF NOT EXISTS ${ident(dest.database)}${charsetClause(ctx.dumpInfo)};`, 'restore', { signal: ctx.signal });
      }
      ctx.logger.info('applying the dump', { step: 'restore', tool: client.name, to: describeServer(dest.conn), database: dest.database ?? '(from the dump)' });
      await this.apply(client, file.path, dest, layout, stream, ctx.signal);
    } finally {
      await file.dispose();
    }
  }

  /** Streams the SQL into the client; the client stops at the first failing statement (no --force). */
  private async apply(client: ClientTool, file: string, dest: Destination, layout: Layout, stream: Readable, signal: AbortSignal): Promise<void> {
    const args = [
      ...connectionArgs(file, client, dest.conn.ssl),
      '--binary-mode',
      '--default-character-set=utf8mb4',
      '--max-allowed-packet=1G',
      ...(dest.database !== undefined ? [`--database=${dest.database}`] : []),
    ];
    const sub = execa(client.path, args, {
      env: childEnv(),
      extendEnv: false,
      stdin: 'pipe',
      stdout: 'ignore',
      buffer: { stderr: true },
      maxBuffer: { stderr: 16 * 1024 * 1024 },
      cancelSignal: signal,
      forceKillAfterDelay: 5000,
    });
    sub.catch(() => undefined);
    // A single-database dump restored by name must not switch databases on its own.
    const guard = layout === 'single-database' ? new DumpScanner((line) => refuseSwitch(line, this.target)) : undefined;
    let fed: unknown;
    let complete = false;
    try {
      // Kill before the client sees EOF: it would run the half statement it holds.
      complete = await pump(stream, sub.stdin!, (chunk) => guard?.feed(chunk), () => sub.kill('SIGKILL'));
    } catch (e) {
      fed = e;
    }
    let ran: unknown;
    await sub.catch((e: unknown) => {
      ran = e;
    });
    if (fed !== undefined) throw fed instanceof BkError ? fed.at(this.target, 'restore') : fed;
    if (ran !== undefined) throw withMysqlHint(toolError(client.spec, ran, { target: this.target, step: 'restore' }), this.target);
    if (!complete) {
      throw new BkError('TOOL_FAILED', `${client.name} exited before reading the whole dump`, { target: this.target, step: 'restore', hint: 'the restore is incomplete; check the server log' });
    }
  }

  /** Where a restore goes: the source, a database name, or a mysql:// URL. */
  private destination(to: string | undefined, layout: Layout, info: DumpInfo): Destination {
    const original = info.contents?.[0];
    if (to === undefined) {
      return { conn: this.conn, database: layout === 'single-database' ? (this.options.database ?? original) : undefined };
    }
    if (/^(?:mysql|mariadb):\/\//i.test(to)) {
      const url = parseMysqlUrl(to);
      const conn = this.urlConnection(url);
      if (layout === 'multi-database') {
        if (url.database !== undefined) throw this.renameRefused(info, to);
        return { conn };
      }
      return { conn, database: url.database ?? this.options.database ?? original };
    }
    const name = dbName.safeParse(to);
    if (!name.success) {
      throw new BkError('USAGE', `--to ${to}: not a database name or mysql:// URL`, { target: this.target, step: 'restore', hint: 'give a database name, or mysql://user@host:port/database' });
    }
    if (layout === 'multi-database') throw this.renameRefused(info, to);
    return { conn: this.conn, database: to };
  }

  private renameRefused(info: DumpInfo, to: string): BkError {
    return new BkError('USAGE', `backup holds ${info.contents?.length ?? 'several'} database(s) (${(info.contents ?? []).join(', ')}) dumped with their names; it cannot be restored into ${to}`, {
      target: this.target,
      step: 'restore',
      hint: 'restore without --to (same server), or --to mysql://user@host:port/ (another server, same names); to restore under another name, back up with database: <name>',
    });
  }

  /** Credentials for a --to URL: its own, else the target's when the user is the same, else BK_MYSQL_PASSWORD. */
  private urlConnection(url: MysqlUrl): Connection {
    const user = url.user ?? this.options.user;
    let password = url.password;
    if (password === undefined) password = user === this.options.user ? this.conn.password : (process.env.BK_MYSQL_PASSWORD ?? process.env.MYSQL_PWD);
    registerSecret(password);
    return { host: url.host, port: url.port, socket: url.socket, user, password, ssl: this.ssl };
  }

  describeRestoreTarget(to?: string): string {
    const keep = 'tables in the backup are dropped and recreated; other tables are kept';
    if (to !== undefined && /^(?:mysql|mariadb):\/\//i.test(to)) {
      const url = parseMysqlUrl(to);
      const server = describeServer({ host: url.host, port: url.port, socket: url.socket });
      return url.database !== undefined ? `database ${url.database} on ${server} (${keep})` : `the backup's databases on ${server} (${keep})`;
    }
    if (to !== undefined) return `database ${to} on ${this.where} (created if missing; ${keep})`;
    if (this.options.database !== undefined) return `database ${this.options.database} on ${this.where} (${keep})`;
    return `the backup's databases on ${this.where} (${keep})`;
  }

  manualRestoreCommand(to?: string, _options?: Record<string, unknown>, dumpInfo?: DumpInfo): string {
    const client = onPath(['mariadb']) ? 'mariadb' : 'mysql';
    const cnf = 'client.cnf'; // [client] user=… password=… host=… port=…, mode 0600 (docs/drivers/mysql.md)
    const base = `${client} --defaults-extra-file=${cnf} --binary-mode --default-character-set=utf8mb4`;
    if (dumpInfo && layoutOf(dumpInfo) === 'multi-database') return base;
    let db: string | undefined = to;
    if (to !== undefined && /^(?:mysql|mariadb):\/\//i.test(to)) db = parseMysqlUrl(to).database;
    db ??= this.options.database ?? dumpInfo?.contents?.[0];
    if (db === undefined) return base;
    const create = shellQuote(`CREATE DATABASE IF NOT EXISTS ${ident(db)}${dumpInfo ? charsetClause(dumpInfo) : ''}`);
    return `(${base} -e ${create} && ${base} ${shellQuote(db)})`;
  }

  // ---------------------------------------------------------------------------------------------
  // restore drill

  async prepareDrill(ctx: { signal: AbortSignal; logger: Logger; options: Record<string, unknown> }): Promise<RestoreDrill> {
    const client = await findTool('client');
    const name = `bk_drill_${randomBytes(6).toString('hex')}`;
    // verify.url: a scratch server, so the drill puts no load and no database on the source.
    const scratch = typeof ctx.options.url === 'string' ? ctx.options.url : undefined;
    const conn = scratch ? this.drillConnection(scratch) : this.conn;
    await withOptionFile(conn, (file) => this.query(client, file, `CREATE DATABASE ${ident(name)};`, 'drill', { signal: ctx.signal }));
    ctx.logger.info('created drill database', { step: 'drill', database: name, server: describeServer(conn) });
    return {
      to: scratch ? withDatabase(scratch, name) : name,
      inspect: () => this.inspectDatabase(client, name, ctx.signal, conn),
      dispose: async () => {
        await withOptionFile(conn, (file) => this.query(client, file, `DROP DATABASE IF EXISTS ${ident(name)};`, 'drill'));
      },
    };
  }

  private drillConnection(url: string): Connection {
    if (!/^(?:mysql|mariadb):\/\//i.test(url)) {
      throw new BkError('CONFIG', `verify.url ${redactUrl(url)}: not a mysql:// URL`, { target: this.target, step: 'restore test', hint: 'use mysql://user@host:port/' });
    }
    return this.urlConnection(parseMysqlUrl(url));
  }

  /** The same facts as a single-database backup's checks, read from a restored database: exact row counts. */
  async inspectDatabase(client: ClientTool, db: string, signal?: AbortSignal, conn: Connection = this.conn): Promise<RestoreCheckData> {
    return withOptionFile(conn, async (file) => {
      const lit = literal(db);
      const rows = await this.query(
        client,
        file,
        [
          `SELECT 'table', TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${lit} AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED');`,
          `SELECT 'view', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ${lit};`,
          `SELECT 'routine', ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${lit};`,
          `SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${lit};`,
          `SELECT 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${lit};`,
        ].join('\n'),
        'drill',
        { signal },
      );
      const tagged = (tag: string) => rows.filter((r) => r[0] === tag).map((r) => r.slice(1));
      const tables = tagged('table').map((r) => r[0]!);
      const counts: Record<string, number> = {};
      // COUNT(*) in batches of statements; one client run per 200 tables.
      for (let i = 0; i < tables.length; i += 200) {
        const part = tables.slice(i, i + 200);
        const out = await this.query(client, file, part.map((t) => `SELECT ${literal(t)}, COUNT(*) FROM ${ident(db)}.${ident(t)};`).join('\n'), 'drill', { signal });
        for (const [t, n] of out) counts[t!] = Number(n);
      }
      return sortedChecks({
        tables: counts,
        views: tagged('view').map((r) => r[0]!),
        routines: tagged('routine').map(([type, name]) => `${type} ${name}`),
        triggers: tagged('trigger').map((r) => r[0]!),
        events: tagged('event').map((r) => r[0]!),
      });
    });
  }
}

/** CURRENT_USER() as information_schema writes grantees: 'user'@'host'. */
const GRANTEE_SQL = "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";

function parseServerVersion(v: string): number[] {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
}

export interface MysqlChecks {
  tables: Record<string, number>;
  views: string[];
  routines: string[];
  triggers: string[];
  events: string[];
}

/** Checks in a stable order, so a manifest's and a drill's compare equal when the data is. */
export function sortedChecks(c: MysqlChecks): MysqlChecks & RestoreCheckData {
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    tables: Object.fromEntries(Object.entries(c.tables).sort(([a], [b]) => byName(a, b))),
    views: [...c.views].sort(byName),
    routines: [...c.routines].sort(byName),
    triggers: [...c.triggers].sort(byName),
    events: [...c.events].sort(byName),
  };
}

/** " CHARACTER SET x COLLATE y" of the backed-up database, for creating the restore target like it. */
function charsetClause(info: DumpInfo): string {
  const cs = (info.extra?.databases as Record<string, { charset?: string; collation?: string }> | undefined)?.[info.contents?.[0] ?? ''];
  const charset = cs?.charset && /^\w+$/.test(cs.charset) ? ` CHARACTER SET ${cs.charset}` : '';
  return charset && cs?.collation && /^\w+$/.test(cs.collation) ? `${charset} COLLATE ${cs.collation}` : charset;
}

export function layoutOf(info: DumpInfo): Layout {
  const l = info.extra?.layout;
  if (l === 'single-database' || l === 'multi-database') return l;
  return (info.contents?.length ?? 0) === 1 ? 'single-database' : 'multi-database';
}

function refuseSwitch(line: LineKind, target: string): void {
  if (line.kind === 'use' || line.kind === 'create-database') {
    throw new BkError('USAGE', `the dump switches databases (${line.kind === 'use' ? `USE ${line.name}` : line.name}); it cannot be restored under another name`, {
      target,
      step: 'restore',
      hint: 'restore it without --to',
    });
  }
}

/**
 * Passes the dump through while the scanner reads it, and appends `suffix` (users and grants) once
 * the tool has succeeded; fails instead of ending when it did not.
 */
class DumpTap extends Transform {
  /** Resolves once every byte went through the scanner; rejects if the stream closed before. */
  readonly scanned: Promise<void>;
  private markScanned!: () => void;

  constructor(
    private readonly scanner: DumpScanner,
    private readonly suffix: () => Promise<string>,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.scanned = new Promise<void>((resolve, reject) => {
      this.markScanned = resolve;
      this.once('close', () => reject(new Error('the dump stream was closed before its end')));
    });
    this.scanned.catch(() => undefined);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.scanner.feed(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.markScanned();
    this.suffix().then(
      (s) => cb(null, s ? Buffer.from(s) : undefined),
      (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
    );
  }
}

/**
 * Copies `source` into `sink` with backpressure; resolves true when all of it was written, false
 * when `sink` went away first (the client exited). Unlike pipeline(), it leaves `source` alone
 * then, so the caller reports the client's error rather than a broken pipe. When `source` (or
 * `onChunk`) fails, `beforeAbort` runs before `sink` is closed.
 */
async function pump(source: Readable, sink: Writable, onChunk: (chunk: Buffer) => void, beforeAbort: () => void): Promise<boolean> {
  let sinkFailed = false;
  sink.on('error', () => {
    sinkFailed = true;
  });
  const gone = () => sinkFailed || sink.destroyed;
  try {
    for await (const chunk of source.iterator({ destroyOnReturn: false })) {
      if (gone()) return false;
      const buf = chunk as Buffer;
      onChunk(buf);
      if (!sink.write(buf)) await settled(sink, 'drain');
    }
  } catch (e) {
    beforeAbort();
    sink.destroy();
    throw e;
  }
  if (gone()) return false;
  sink.end();
  await settled(sink, 'finish');
  return !sinkFailed;
}

/** Resolves on `event`, or when the stream closes or fails instead. */
function settled(stream: Writable, event: 'drain' | 'finish'): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off(event, done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on(event, done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

// -----------------------------------------------------------------------------------------------
// URLs and ad-hoc use

export interface MysqlUrl {
  host?: string;
  port?: number;
  socket?: string;
  user?: string;
  password?: string;
  database?: string;
}

/** mysql://user:pass@host:port/db?socket=/path (also mariadb://). */
export function parseMysqlUrl(s: string): MysqlUrl {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new BkError('USAGE', `not a valid URL: ${s.replace(/:[^@/:]*@/, ':***@')}`, { hint: 'mysql://user@host:3306/database' });
  }
  const dec = (v: string) => (v === '' ? undefined : decodeURIComponent(v));
  const path = dec(u.pathname.replace(/^\//, ''));
  const database = path?.replace(/\/$/, '') || undefined;
  const host = u.hostname === '' ? undefined : u.hostname.replace(/^\[(.*)\]$/, '$1');
  const password = dec(u.password);
  registerSecret(password);
  return {
    host,
    port: u.port ? Number(u.port) : undefined,
    socket: u.searchParams.get('socket') ?? undefined,
    user: dec(u.username),
    password,
    database,
  };
}

/** Describes a server for messages: host:port or the socket, never credentials. */
export function describeServer(c: Pick<Connection, 'host' | 'port' | 'socket'>): string {
  if (c.socket) return `socket ${c.socket}`;
  if (c.host || c.port) return `${c.host ?? 'localhost'}${c.port ? `:${c.port}` : ''}`;
  return 'the default server';
}

/**
 * `bk backup mysql --source mysql://user@host:port/db` (no database: all databases), or
 * `--source dbname` with the client's defaults for the rest. The password comes from
 * BK_MYSQL_PASSWORD (or MYSQL_PWD); bk moves it into its option file either way.
 */
export function mysqlAdHoc(driver: 'mysql' | 'mariadb') {
  return (flags: { source?: string; exclude?: string[] }, env: NodeJS.ProcessEnv): Record<string, unknown> | string => {
    const source = flags.source;
    if (!source) return `bk backup ${driver} needs --source mysql://user@host:port/database (or a database name); the password comes from BK_MYSQL_PASSWORD`;
    const envPassword = env.BK_MYSQL_PASSWORD ?? env.MYSQL_PWD;
    const common = { driver, ...(flags.exclude?.length ? { exclude_tables: flags.exclude } : {}) };
    if (/^(?:mysql|mariadb):\/\//i.test(source)) {
      const u = parseMysqlUrl(source);
      const password = u.password ?? envPassword;
      return {
        ...common,
        ...(u.host !== undefined ? { host: u.host } : {}),
        ...(u.port !== undefined ? { port: u.port } : {}),
        ...(u.socket !== undefined ? { socket: u.socket } : {}),
        ...(u.user !== undefined ? { user: u.user } : {}),
        ...(password !== undefined ? { password } : {}),
        ...(u.database !== undefined ? { database: u.database } : { all: true }),
      };
    }
    return { ...common, database: source, ...(envPassword !== undefined ? { password: envPassword } : {}) };
  };
}
