/**
 * PostgreSQL driver: one database per target, dumped by pg_dump in one consistent snapshot, or —
 * with `globals: true` — the server's roles and tablespaces (`pg_dumpall --globals-only`) as a
 * target of their own. A server with several databases is several targets; `bk restore --at T`
 * brings them all back to the same instant.
 *
 * Backup: a psql session opens a REPEATABLE READ transaction and exports its snapshot; pg_dump
 * imports it (`--snapshot`) while the session counts every table's rows, so the counts recorded in
 * the manifest (what a restore test checks) describe exactly the data in the dump. The payload is a
 * pg_dump custom archive, uncompressed (`--compress=0`: bk compresses once), or plain SQL.
 *
 * Restore: `pg_restore --clean --if-exists --exit-on-error --single-transaction` (custom) or psql
 * with ON_ERROR_STOP inside BEGIN … COMMIT, where the COMMIT is sent only after the whole verified
 * payload went in (plain) — so a failed restore changes nothing. The destination database is created
 * when missing; restoring elsewhere leaves owners and privileges out (the roles may not exist there).
 *
 * Passwords reach the tools only through a 0600 passfile (postgres-conn.ts), never argv.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { z } from 'zod';
import { shellQuote } from '../codecs/compression.js';
import { BkError } from '../errors.js';
import { makeOwnedDir } from '../util/owned-dir.js';
import { redactUrl, registerSecret } from '../secrets.js';
import { feedChild } from '../util/feed-child.js';
import { runTool, toolError, toolVersion, type ToolSpec } from '../util/exec.js';
import { withStdoutBuffer } from '../util/stdout-buffer.js';
import { withDatabase } from '../util/url.js';
import type {
  BackupContext,
  CheckResult,
  DrillCapable,
  Driver,
  DumpInfo,
  DumpSession,
  RestoreCheckData,
  RestoreContext,
  RestoreDrill,
} from './driver.js';
import {
  childCredentials,
  conninfoFor,
  describeServer,
  isPostgresUrl,
  parsePostgresUrl,
  type ChildCredentials,
  type ConnParams,
  type PgConnection,
} from './postgres-conn.js';
import { IdempotentRoles } from './postgres-globals.js';
import { DumpOutputCheck } from './postgres-output-check.js';
import { PsqlSession } from './postgres-session.js';
import { COUNT_ROWS, CREATE_DATABASE, DATABASE_SIZE, DROP_DATABASE, GLOBALS_FACTS, OPEN_SNAPSHOT, PREFLIGHT } from './postgres-sql.js';

export const POSTGRES_FORMATS = ['custom', 'plain'] as const;
export type PostgresFormat = (typeof POSTGRES_FORMATS)[number];
const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

/** pg_dump/pg_dumpall flags bk sets itself: connection, output, format, snapshot, password prompts. */
const RESERVED_LONG = new Set(['--dbname', '--host', '--port', '--username', '--password', '--no-password', '--file', '--format', '--compress', '--snapshot', '--jobs', '--database']);
const RESERVED_SHORT = new Set(['d', 'h', 'p', 'U', 'W', 'w', 'f', 'F', 'Z', 'j', 'l']);
/** Flags that leave tables or rows out: the dump then no longer matches a count of every table. */
const FILTERS_LONG = /^--(table|exclude-table|exclude-table-and-children|table-and-children|exclude-table-data|exclude-table-data-and-children|schema|exclude-schema|schema-only|data-only|extension|exclude-extension)(=|$)/;
const FILTERS_SHORT = new Set(['t', 'T', 'n', 'N', 's', 'a', 'e']);

function reservedArgProblem(arg: string): string | undefined {
  if (/password\s*=/i.test(arg)) return 'a password must never be on a command line; use password (or password_file)';
  if (arg === '-W' || arg === '--password') return `${arg} prompts for a password, which bk never does; use password (or password_file)`;
  if (arg.startsWith('--')) {
    const name = arg.split('=')[0]!;
    return RESERVED_LONG.has(name) ? `${name} is set by bk` : undefined;
  }
  if (/^-[A-Za-z]/.test(arg) && RESERVED_SHORT.has(arg[1]!)) return `${arg.slice(0, 2)} is set by bk`;
  return undefined;
}

const isObjectFilter = (arg: string): boolean => FILTERS_LONG.test(arg) || (/^-[A-Za-z]/.test(arg) && FILTERS_SHORT.has(arg[1]!));

export const postgresOptionsSchema = z
  .object({
    driver: z.enum(['postgres', 'postgresql']),
    /** postgres://user@host:5432/db?sslmode=require — a password in it is accepted but better kept in `password`. */
    url: z.string().refine(isPostgresUrl, 'expected a postgres:// or postgresql:// URL').optional(),
    host: z.string().min(1).optional(),
    port: z.coerce.number().int().min(1).max(65535).optional(),
    user: z.string().min(1).optional(),
    password: z.string().optional(),
    /** The one database this target dumps; default: the URL's, then PGDATABASE, then libpq's default. */
    database: z.string().min(1).optional(),
    /** Database to connect to when creating or dropping others (restore --to, restore tests). */
    maintenance_db: z.string().min(1).default('postgres'),
    /** custom (default): pg_restore, parallel restore; plain: SQL for psql. */
    format: z.enum(POSTGRES_FORMATS).optional(),
    /** Back up the server's roles and tablespaces (pg_dumpall --globals-only) instead of a database. */
    globals: z.boolean().default(false),
    sslmode: z.enum(SSL_MODES).optional(),
    sslrootcert: z.string().min(1).optional(),
    sslcert: z.string().min(1).optional(),
    sslkey: z.string().min(1).optional(),
    /** Seconds to wait for a connection (default 10). */
    connect_timeout: z.coerce.number().int().min(1).optional(),
    /** Count every table's rows in the dump's snapshot, for restore tests (a full read of each table). */
    count_rows: z.boolean().default(true),
    /** Directory of the client tools, e.g. /usr/lib/postgresql/16/bin; default: PATH. */
    bin_dir: z.string().min(1).optional(),
    /** Extra pg_dump (pg_dumpall for globals) arguments, e.g. ["--exclude-table-data=audit.*"]. */
    extra_args: z
      .array(z.string())
      .default([])
      .superRefine((args, ctx) => {
        for (const [i, arg] of args.entries()) {
          const problem = reservedArgProblem(arg);
          if (problem) ctx.addIssue({ code: 'custom', path: [i], message: problem });
        }
      }),
  })
  .superRefine((o, ctx) => {
    if (o.globals && o.format === 'custom') {
      ctx.addIssue({ code: 'custom', path: ['format'], message: 'globals are SQL (pg_dumpall): leave format out or set plain' });
    }
  });
export type PostgresOptions = z.infer<typeof postgresOptionsSchema>;

const INSTALL = 'install the PostgreSQL client tools, at least the server\'s major version (apt-get install postgresql-client), or set bin_dir';
const VERSION_HINT = 'use client tools at least as new as the server: install postgresql-client-<server major> and set bin_dir (e.g. /usr/lib/postgresql/16/bin)';

type ToolName = 'pg_dump' | 'pg_dumpall' | 'pg_restore' | 'psql';

/** Where a restore goes: a database on a server. */
interface Destination {
  conn: PgConnection;
  database: string;
  /** Not the backed-up database: owners and privileges are left out. */
  elsewhere: boolean;
}

export class PostgresDriver implements Driver, DrillCapable {
  readonly kind: string;
  readonly payloadExt: string;
  private readonly format: PostgresFormat;
  private readonly conn: PgConnection;
  private readonly database: string | undefined;
  private readonly tools: Record<ToolName, ToolSpec>;

  constructor(
    private readonly target: string,
    private readonly options: PostgresOptions,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    // The manifest records the name the config used, so `bk restore` matches it (postgresql is an alias).
    this.kind = options.driver;
    this.format = options.globals ? 'plain' : (options.format ?? 'custom');
    this.payloadExt = this.format === 'custom' ? 'pgdump' : 'sql';
    const fromUrl = options.url ? parsePostgresUrl(options.url) : { params: {} as ConnParams, password: undefined };
    const { dbname: urlDatabase, ...urlParams } = fromUrl.params;
    const explicit: ConnParams = {};
    for (const key of ['host', 'port', 'user', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'connect_timeout'] as const) {
      const v = options[key];
      if (v !== undefined) explicit[key] = String(v);
    }
    this.conn = {
      params: { fallback_application_name: 'bk', connect_timeout: '10', ...urlParams, ...explicit },
      // PGPASSWORD too goes into the passfile, so no tool's environment shows it.
      password: options.password ?? fromUrl.password ?? nonEmpty(env.PGPASSWORD),
    };
    this.database = options.database ?? urlDatabase;
    registerSecret(this.conn.password);
    const spec = (bin: ToolName): ToolSpec => ({ bin: options.bin_dir ? join(options.bin_dir, bin) : bin, install: INSTALL });
    this.tools = { pg_dump: spec('pg_dump'), pg_dumpall: spec('pg_dumpall'), pg_restore: spec('pg_restore'), psql: spec('psql') };
  }

  private get server(): string {
    return describeServer(this.conn.params);
  }

  async estimateSize(ctx: BackupContext): Promise<number | undefined> {
    if (this.options.globals) return undefined;
    const facts = await this.withCredentials(this.conn.password, (env) => this.psqlJson(this.conn, this.database, DATABASE_SIZE, env, 'estimate size', ctx.signal));
    return Number(facts.bytes) || undefined;
  }

  async check(): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    const needed: ToolName[] = this.options.globals ? ['pg_dumpall', 'psql'] : ['pg_dump', this.format === 'custom' ? 'pg_restore' : 'psql', 'psql'];
    const versions: Partial<Record<ToolName, string>> = {};
    for (const name of [...new Set(needed)]) {
      const v = await toolVersion(this.tools[name].bin);
      if (v) versions[name] = v;
      results.push(v ? { name, ok: true, detail: v } : { name, ok: false, detail: `${this.tools[name].bin} not found`, hint: INSTALL });
    }
    if (!versions.psql) return results;
    let facts: Record<string, unknown>;
    try {
      facts = await this.withCredentials(this.conn.password, (env) =>
        this.psqlJson(this.conn, this.options.globals ? this.options.maintenance_db : this.database, this.options.globals ? GLOBALS_FACTS : PREFLIGHT, env, 'check'),
      );
    } catch (e) {
      const err = this.explain(e, 'check');
      results.push({ name: 'connection', ok: false, detail: err.message + (err.toolOutput ? `: ${err.toolOutput.trim().split('\n')[0]}` : ''), hint: err.hint });
      return results;
    }
    const serverNum = Number(facts.serverVersionNum);
    results.push({
      name: 'connection',
      ok: true,
      detail: `${this.server}${facts.database ? ` database ${String(facts.database)}` : ''}${facts.user ? ` as ${String(facts.user)}` : ''}: PostgreSQL ${String(facts.serverVersion)}`,
    });
    const dumpTool = this.options.globals ? 'pg_dumpall' : 'pg_dump';
    const dumpVersion = versions[dumpTool];
    if (dumpVersion) {
      const older = versionRank(dumpVersion) < serverRank(serverNum);
      results.push(
        older
          ? { name: 'versions', ok: false, detail: `${dumpTool} ${versionNumber(dumpVersion)} is older than the server (${String(facts.serverVersion)}); it refuses to dump it`, hint: VERSION_HINT }
          : { name: 'versions', ok: true, detail: `${dumpTool} ${versionNumber(dumpVersion)} can dump PostgreSQL ${String(facts.serverVersion)}` },
      );
    }
    if (Array.isArray(facts.unreadable)) {
      const unreadable = facts.unreadable as string[];
      results.push(
        unreadable.length === 0
          ? { name: 'permissions', ok: true, detail: 'every table, view and sequence is readable' }
          : {
              name: 'permissions',
              ok: false,
              detail: `cannot read ${unreadable.length} object(s): ${unreadable.slice(0, 5).join(', ')}${unreadable.length > 5 ? ', …' : ''}`,
              hint: `GRANT pg_read_all_data TO ${String(facts.user)} (PostgreSQL 14+), or grant SELECT on them`,
            },
      );
    }
    return results;
  }

  async backup(ctx: BackupContext): Promise<DumpSession> {
    const creds = await childCredentials(this.conn.password);
    try {
      return this.options.globals ? await this.dumpGlobals(ctx, creds) : await this.dumpDatabase(ctx, creds);
    } catch (e) {
      await creds.dispose();
      throw e;
    }
  }

  private async dumpDatabase(ctx: BackupContext, creds: ChildCredentials): Promise<DumpSession> {
    // The version check and the snapshot session start together: each costs a process start.
    const versionCheck = this.requireTool('pg_dump', 'dump');
    versionCheck.catch(() => undefined);
    const session = PsqlSession.open(this.tools.psql, conninfoFor(this.conn, this.database), { env: creds.env, signal: ctx.signal, target: this.target, step: 'connect' });
    let pgDumpVersion: string;
    let facts: { snapshot: string; database: string; serverVersion: string; serverVersionNum: number; encoding: string };
    try {
      const opening = session.query(OPEN_SNAPSHOT);
      opening.catch(() => undefined);
      // A missing pg_dump is reported before any connection problem.
      pgDumpVersion = await versionCheck;
      facts = parseJsonLine(await opening) as typeof facts;
      if (versionRank(pgDumpVersion) < serverRank(facts.serverVersionNum)) {
        throw new BkError('TOOL_FAILED', `pg_dump ${versionNumber(pgDumpVersion)} cannot dump PostgreSQL ${facts.serverVersion}`, {
          target: this.target,
          step: 'dump',
          hint: VERSION_HINT,
        });
      }
    } catch (e) {
      await session.kill();
      throw this.explain(e, 'connect');
    }

    const filtered = this.options.extra_args.some(isObjectFilter);
    const args = [
      `--format=${this.format}`,
      // custom: uncompressed inside, bk compresses once. plain: DROP … IF EXISTS first, so the SQL
      // can be restored over the original database.
      ...(this.format === 'custom' ? ['--compress=0'] : ['--clean', '--if-exists']),
      '--no-password',
      `--snapshot=${facts.snapshot}`,
      ...this.options.extra_args,
      `--dbname=${conninfoFor(this.conn, facts.database)}`,
    ];
    ctx.logger.info('dumping database', { step: 'dump', database: facts.database, server: this.server, format: this.format });
    const command = withStdoutBuffer(this.tools.pg_dump.bin, args, creds.env);
    const dump = execa(command.file, command.args, {
      env: creds.env,
      extendEnv: false,
      stdin: 'ignore',
      buffer: { stdout: false, stderr: true },
      cancelSignal: ctx.signal,
      forceKillAfterDelay: 5000,
    });
    dump.catch(() => undefined);
    const check = new DumpOutputCheck(this.format);
    // If bk stops reading (a storage failed), pg_dump gets SIGPIPE and stops too.
    pipeline(dump.stdout!, check).catch(() => undefined);
    // Counted in the same snapshot while pg_dump runs; a table filter in extra_args would make the
    // counts describe tables the dump does not hold, so then there are none.
    const counting = this.options.count_rows && !filtered ? session.query(COUNT_ROWS) : undefined;
    counting?.catch(() => undefined);
    if (filtered) ctx.logger.info('extra_args filter tables: no row counts recorded', { step: 'dump' });

    const done = (async (): Promise<DumpInfo> => {
      try {
        await this.dumpFinished(dump, check, this.tools.pg_dump);
        // The dump is good whatever happened to the counts; without them a restore test checks less.
        const tables = counting
          ? await counting.then(parseCounts, (e: unknown) => {
              ctx.logger.warn(`row counts failed, the backup records none: ${this.explain(e, 'count rows').describe()}`, { step: 'count rows' });
              return undefined;
            })
          : undefined;
        const problem = check.problem();
        if (problem) throw new BkError('SOURCE', `pg_dump exited 0 but ${problem}`, { target: this.target, step: 'dump', hint: 'run pg_dump by hand to see what it writes' });
        await session.close('COMMIT;');
        return {
          tools: [{ name: 'pg_dump', version: versionNumber(pgDumpVersion) }],
          serverVersion: facts.serverVersion,
          contents: [facts.database],
          ...(tables ? { checks: { tables } } : {}),
          extra: { kind: 'database', format: this.format, encoding: facts.encoding, serverVersionNum: facts.serverVersionNum },
        };
      } finally {
        await session.kill();
        await creds.dispose();
      }
    })();
    done.catch(() => undefined);
    return { stream: check, done };
  }

  private async dumpGlobals(ctx: BackupContext, creds: ChildCredentials): Promise<DumpSession> {
    const version = await this.requireTool('pg_dumpall', 'dump');
    const connectDb = this.database ?? this.options.maintenance_db;
    let facts: { serverVersion: string; serverVersionNum: number; roles: string[] };
    try {
      facts = (await this.psqlJson(this.conn, connectDb, GLOBALS_FACTS, creds.env, 'connect', ctx.signal)) as typeof facts;
    } catch (e) {
      throw this.explain(e, 'connect');
    }
    if (versionRank(version) < serverRank(facts.serverVersionNum)) {
      throw new BkError('TOOL_FAILED', `pg_dumpall ${versionNumber(version)} cannot dump PostgreSQL ${facts.serverVersion}`, { target: this.target, step: 'dump', hint: VERSION_HINT });
    }
    ctx.logger.info('dumping roles and tablespaces', { step: 'dump', server: this.server });
    const dump = execa(
      this.tools.pg_dumpall.bin,
      ['--globals-only', '--no-password', ...this.options.extra_args, `--database=${connectDb}`, `--dbname=${conninfoFor(this.conn, connectDb)}`],
      { env: creds.env, extendEnv: false, stdin: 'ignore', buffer: { stdout: false, stderr: true }, cancelSignal: ctx.signal, forceKillAfterDelay: 5000 },
    );
    dump.catch(() => undefined);
    const check = new DumpOutputCheck('globals');
    pipeline(dump.stdout!, check).catch(() => undefined);
    const done = (async (): Promise<DumpInfo> => {
      try {
        await this.dumpFinished(dump, check, this.tools.pg_dumpall);
        const problem = check.problem();
        if (problem) throw new BkError('SOURCE', `pg_dumpall exited 0 but ${problem}`, { target: this.target, step: 'dump' });
        return {
          tools: [{ name: 'pg_dumpall', version: versionNumber(version) }],
          serverVersion: facts.serverVersion,
          contents: ['globals'],
          checks: { roles: facts.roles },
          extra: { kind: 'globals', format: 'plain', serverVersionNum: facts.serverVersionNum },
        };
      } finally {
        await creds.dispose();
      }
    })();
    done.catch(() => undefined);
    return { stream: check, done };
  }

  /**
   * Waits for the dump tool and its output stream. When bk stopped reading (a storage or the
   * compressor failed), the tool dies of a broken pipe: that is reported as the consequence it is,
   * not as a pg_dump failure.
   */
  private async dumpFinished(dump: Promise<unknown>, output: DumpOutputCheck, tool: ToolSpec): Promise<void> {
    const failure = await dump.then(
      () => undefined,
      (e: unknown) => e ?? new Error('failed'),
    );
    const cutOff = await output.passed.then(
      () => false,
      () => true,
    );
    if (cutOff) {
      throw new BkError('FAILED', `${tool.bin} stopped because bk stopped reading the dump (see the storage or compression error)`, { target: this.target, step: 'dump' });
    }
    if (failure !== undefined) throw this.explain(toolError(tool, failure, { target: this.target, step: 'dump' }), 'dump');
  }

  async restore(stream: Readable, ctx: RestoreContext): Promise<void> {
    // The backup's own format and kind decide how it is applied, whatever the config says now.
    const extra = ctx.dumpInfo.extra ?? {};
    const globals = extra.kind === undefined ? this.options.globals : extra.kind === 'globals';
    const format: PostgresFormat = extra.format === 'plain' || extra.format === 'custom' ? extra.format : this.format;
    const jobs = parseJobs(ctx.options.jobs);
    if (jobs > 1 && (format !== 'custom' || globals)) {
      throw new BkError('USAGE', '--jobs needs a custom-format backup (pg_restore); this one is SQL for psql', { target: this.target, step: 'restore', hint: 'leave out --jobs' });
    }
    const dest = this.destination(ctx.to, ctx.dumpInfo);
    const creds = await childCredentials(dest.conn.password);
    let created = false;
    try {
      if (globals) return await this.restoreGlobals(stream, dest, creds.env, ctx);
      created = await this.ensureDatabase(dest, creds.env, ctx);
      const where = { database: dest.database, server: describeServer(dest.conn.params), format, elsewhere: dest.elsewhere };
      if (format === 'plain') {
        ctx.logger.info('restoring with psql', { step: 'restore', ...where });
        // BEGIN … COMMIT around the dump, the COMMIT only after the source ended cleanly (verified):
        // an error or a cut-short input leaves the database as it was. (Large objects in a plain
        // dump come with their own BEGIN/COMMIT, which ends this transaction early: prefer custom.)
        await this.applyStream(
          this.tools.psql,
          ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', `--dbname=${conninfoFor(dest.conn, dest.database)}`],
          stream,
          creds.env,
          ctx,
          { prefix: 'BEGIN;\n', suffix: '\nCOMMIT;\n' },
        );
        return;
      }
      const args = [
        '--clean',
        '--if-exists',
        '--exit-on-error',
        '--no-password',
        // Elsewhere the backed-up roles may not exist; objects then belong to the restoring user.
        ...(dest.elsewhere ? ['--no-owner', '--no-privileges'] : []),
        `--dbname=${conninfoFor(dest.conn, dest.database)}`,
      ];
      if (jobs <= 1) {
        ctx.logger.info('restoring with pg_restore', { step: 'restore', ...where });
        // One transaction: all or nothing. pg_restore reads the archive from stdin as it arrives.
        await this.applyStream(this.tools.pg_restore, ['--single-transaction', ...args], stream, creds.env, ctx);
        return;
      }
      await this.restoreParallel(stream, [`--jobs=${jobs}`, ...args], creds.env, ctx, where);
    } catch (e) {
      // A failed restore leaves nothing behind, not even the empty database it made.
      if (created) await this.dropCreatedDatabase(dest, creds.env, ctx.logger);
      throw e;
    } finally {
      await creds.dispose();
    }
  }

  /**
   * A custom archive restored by pg_restore is atomic: in one transaction that commits only after
   * the last data block, which ends at the archive's last byte (the engine's checksum holds that
   * byte back until the archive is verified), or staged whole to a file first (--jobs). Sequence
   * values (setval, not transactional) are set after the table data, so after that last block too,
   * and --clean recreates each sequence inside the transaction. Plain SQL is not atomic: large
   * objects bring their own BEGIN/COMMIT. Nor are globals.
   */
  restoreIsAtomic(dumpInfo: DumpInfo): boolean {
    const extra = dumpInfo.extra ?? {};
    const globals = extra.kind === undefined ? this.options.globals : extra.kind === 'globals';
    const format = extra.format === 'plain' || extra.format === 'custom' ? extra.format : this.format;
    return !globals && format === 'custom';
  }

  /**
   * pg_restore --jobs needs random access to the archive (each worker seeks to its tables' data),
   * which stdin cannot give — pg_restore refuses "parallel restore from standard input". So only
   * here the payload is staged: to a 0600 file in a private directory under $TMPDIR (it needs the
   * archive's uncompressed size free), removed afterwards. Parallel restore cannot run in a single
   * transaction: a failure stops it (--exit-on-error) and bk fails, but what was restored stays.
   */
  private async restoreParallel(stream: Readable, args: string[], env: NodeJS.ProcessEnv, ctx: RestoreContext, where: Record<string, unknown>): Promise<void> {
    const dir = await makeOwnedDir(tmpdir(), 'bk-pgrestore');
    try {
      const file = join(dir, 'archive.pgdump');
      ctx.logger.info('staging the archive for a parallel restore', { step: 'restore', file });
      await pipeline(stream, createWriteStream(file, { mode: 0o600, flags: 'wx' }), { signal: ctx.signal });
      ctx.logger.info('restoring with pg_restore in parallel (not one transaction)', { step: 'restore', ...where });
      await runTool(this.tools.pg_restore, [...args, file], { target: this.target, step: 'restore', env, signal: ctx.signal }, { extendEnv: false }).catch((e: unknown) =>
        Promise.reject(this.explain(e, 'restore')),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async restoreGlobals(stream: Readable, dest: Destination, env: NodeJS.ProcessEnv, ctx: RestoreContext): Promise<void> {
    ctx.logger.info('restoring roles and tablespaces with psql', { step: 'restore', server: describeServer(dest.conn.params) });
    const rewritten = new IdempotentRoles();
    const feeding = pipeline(stream, rewritten).catch(() => undefined);
    // No wrapping transaction: CREATE TABLESPACE cannot run inside one. ON_ERROR_STOP still stops
    // at the first error and bk fails.
    await this.applyStream(this.tools.psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', `--dbname=${conninfoFor(dest.conn, dest.database)}`], rewritten, env, ctx);
    await feeding;
  }

  /**
   * Runs a restore tool with `source` on its stdin; rejects on the tool's failure or the source's.
   * psql exits 0 at a `\q` in its input, leaving the rest (and a wrapping COMMIT) unread: so its
   * input ends with an `\echo` of a word made for this run, and only psql printing it last proves it
   * read everything. (pg_restore reads an archive that says itself where it ends.)
   */
  private async applyStream(
    tool: ToolSpec,
    args: string[],
    source: Readable,
    env: NodeJS.ProcessEnv,
    ctx: RestoreContext,
    framing: { prefix?: string; suffix?: string } = {},
  ): Promise<void> {
    const endMark = tool === this.tools.psql ? `bk-input-end-${randomBytes(8).toString('hex')}` : undefined;
    const child = execa(tool.bin, args, {
      env,
      extendEnv: false,
      stdin: 'pipe',
      stdout: 'pipe',
      buffer: { stdout: false, stderr: true },
      cancelSignal: ctx.signal,
      forceKillAfterDelay: 5000,
    });
    // Query results a dump prints (set_config, setval) are dropped; only the last bytes matter.
    let printedTail = '';
    child.stdout!.on('data', (d: Buffer) => {
      printedTail = (printedTail + d.toString('utf8')).slice(-256);
    });
    let sourceError: unknown;
    const suffix = endMark ? `${framing.suffix ?? ''}\n\\echo ${endMark}\n` : framing.suffix;
    const fed = feedChild(source, child.stdin!, { ...framing, suffix, kill: () => child.kill('SIGKILL') }).catch((e: unknown) => {
      sourceError = e;
    });
    try {
      await child;
    } catch (e) {
      if (sourceError !== undefined) throw sourceError;
      throw this.explain(toolError(tool, e, { target: this.target, step: 'restore' }), 'restore');
    }
    // The tool finished; the source is read to its end so its checksum check still runs.
    await fed;
    if (sourceError !== undefined) throw sourceError;
    if (endMark && !printedTail.trimEnd().endsWith(endMark)) {
      throw new BkError('TOOL_FAILED', `${tool.bin} exited 0 before it had read the whole dump, so the restore is incomplete`, {
        target: this.target,
        step: 'restore',
        hint: framing.suffix
          ? 'nothing was committed (the transaction bk wraps around the dump ended with the session); look for a \\q in the dump'
          : 'only the statements before that point ran; look for a \\q in the dump',
      });
    }
  }

  /** Connects to the destination database, creating it from the maintenance database when missing; true when it did. */
  private async ensureDatabase(dest: Destination, env: NodeJS.ProcessEnv, ctx: { signal: AbortSignal; logger: BackupContext['logger'] }): Promise<boolean> {
    try {
      await runTool(this.tools.psql, ['-X', '-A', '-t', '-q', '--no-password', `--dbname=${conninfoFor(dest.conn, dest.database)}`, '-c', 'SELECT 1'], { target: this.target, step: 'connect', env, signal: ctx.signal }, { extendEnv: false });
      return false;
    } catch (e) {
      if (!(e instanceof BkError) || !/database ".*" does not exist/.test(e.toolOutput ?? '')) throw this.explain(e, 'connect', dest.conn);
    }
    try {
      await runTool(
        this.tools.psql,
        ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', '-v', `db=${dest.database}`, `--dbname=${conninfoFor(dest.conn, this.options.maintenance_db)}`],
        { target: this.target, step: 'create database', env, signal: ctx.signal, input: CREATE_DATABASE },
        { extendEnv: false },
      );
    } catch (e) {
      const err = this.explain(e, 'create database', dest.conn);
      if (err.hint) throw err;
      throw new BkError(err.code, `cannot create database ${dest.database}: ${err.message}`, {
        target: this.target,
        step: 'create database',
        toolOutput: err.toolOutput,
        hint: `create it first (createdb ${dest.database}) or give the role CREATEDB`,
        cause: e,
      });
    }
    ctx.logger.info('created database', { step: 'create database', database: dest.database, server: describeServer(dest.conn.params) });
    return true;
  }

  /** Drops `database` through the maintenance database, ending its sessions (no signal: cleanup runs even when interrupted). */
  private async dropDatabase(conn: PgConnection, database: string, env: NodeJS.ProcessEnv, step: string): Promise<void> {
    await runTool(
      this.tools.psql,
      ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', '-v', `db=${database}`, `--dbname=${conninfoFor(conn, this.options.maintenance_db)}`],
      { target: this.target, step, env, input: DROP_DATABASE },
      { extendEnv: false },
    );
  }

  /** Drops the database this restore created; a failure to do so is reported, not thrown over the restore's own error. */
  private async dropCreatedDatabase(dest: Destination, env: NodeJS.ProcessEnv, logger: BackupContext['logger']): Promise<void> {
    try {
      // An interrupted restore still takes back its empty database.
      await this.dropDatabase(dest.conn, dest.database, env, 'drop created database');
      logger.info('dropped the database this restore created', { step: 'restore', database: dest.database });
    } catch (e) {
      logger.warn(`the restore failed and the database it created was left behind: ${this.explain(e, 'drop created database', dest.conn).describe()}`, { step: 'restore', database: dest.database });
    }
  }

  async prepareDrill(ctx: { signal: AbortSignal; logger: BackupContext['logger']; options: Record<string, unknown> }): Promise<RestoreDrill> {
    if (this.options.globals) {
      throw new BkError('USAGE', 'a restore test of roles and tablespaces would change the server itself', {
        target: this.target,
        step: 'restore test',
        hint: 'test the database targets; restore globals by hand on a scratch server',
      });
    }
    const name = `bk_drill_${randomBytes(6).toString('hex')}`;
    // verify.url: a scratch server, so the drill puts no load and no database on the source.
    const scratch = typeof ctx.options.url === 'string' ? ctx.options.url : undefined;
    if (scratch !== undefined && !isPostgresUrl(scratch)) {
      throw new BkError('CONFIG', `verify.url ${redactUrl(scratch)}: not a postgres:// URL`, { target: this.target, step: 'restore test', hint: 'use postgres://user@host:port/' });
    }
    const to = scratch ? withDatabase(scratch, name) : name;
    const { conn } = this.destination(to, {});
    const dest: Destination = { conn, database: name, elsewhere: true };
    await this.withCredentials(conn.password, (env) => this.ensureDatabase(dest, env, ctx));
    return {
      to,
      inspect: async () =>
        this.withCredentials(conn.password, async (env): Promise<RestoreCheckData> => {
          const out = await runTool(this.tools.psql, ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', `--dbname=${conninfoFor(conn, name)}`], {
            target: this.target,
            step: 'restore test',
            env,
            signal: ctx.signal,
            input: COUNT_ROWS,
          }, { extendEnv: false });
          return { tables: parseCounts(out.split('\n')) };
        }),
      dispose: async () =>
        this.withCredentials(conn.password, (env) => this.dropDatabase(conn, name, env, 'restore test cleanup')),
    };
  }

  describeRestoreTarget(to?: string): string {
    if (this.options.globals) return `roles and tablespaces of PostgreSQL ${to && isPostgresUrl(to) ? describeServer(parsePostgresUrl(to).params) : this.server}`;
    const dest = this.destination(to, {});
    const how = dest.elsewhere
      ? `created if missing; objects in the backup replaced${this.format === 'custom' ? ', owners and privileges not restored' : ''}`
      : 'objects in the backup dropped and recreated';
    return `PostgreSQL database ${dest.database} on ${describeServer(dest.conn.params)} (${how})`;
  }

  manualRestoreCommand(to?: string): string {
    const dest = this.options.globals ? undefined : this.destination(to, {});
    const conn = dest?.conn ?? (to && isPostgresUrl(to) ? parsePostgresUrl(to) : this.conn);
    // Only what names the server and database; libpq's defaults and environment do the rest.
    const { fallback_application_name: _app, connect_timeout: _timeout, ...params } = conn.params;
    const db = shellQuote(conninfoFor({ params }, dest?.database ?? this.options.maintenance_db));
    const password = '(password: PGPASSWORD or ~/.pgpass)';
    if (this.options.globals) return `psql -X -d ${db}  ${password}; CREATE ROLE errors for existing roles are expected`;
    if (this.format === 'plain') return `psql -X -v ON_ERROR_STOP=1 --single-transaction -f - -d ${db}  ${password}`;
    const elsewhere = dest!.elsewhere ? ' --no-owner --no-privileges' : '';
    return `pg_restore --clean --if-exists --exit-on-error --single-transaction${elsewhere} -d ${db}  ${password}`;
  }

  /** --to: a postgres:// URL (a server of its own), or a database name on the configured server. */
  private destination(to: string | undefined, info: Partial<DumpInfo>): Destination {
    const original = this.database ?? info.contents?.[0];
    if (to !== undefined && isPostgresUrl(to)) {
      const { params, password } = parsePostgresUrl(to);
      const { dbname, ...rest } = params;
      const database = dbname ?? original;
      if (!database) throw new BkError('USAGE', `--to ${to} names no database`, { target: this.target, step: 'restore', hint: 'add it: postgres://host/dbname' });
      return { conn: { params: { fallback_application_name: 'bk', connect_timeout: '10', ...rest }, password: password ?? nonEmpty(process.env.PGPASSWORD) }, database, elsewhere: true };
    }
    const database = to ?? original;
    if (!database) throw new BkError('USAGE', 'which database should the restore go to?', { target: this.target, step: 'restore', hint: 'pass --to <database>' });
    return { conn: this.conn, database, elsewhere: to !== undefined && to !== original };
  }

  private async withCredentials<T>(password: string | undefined, fn: (env: NodeJS.ProcessEnv) => Promise<T>): Promise<T> {
    const creds = await childCredentials(password);
    try {
      return await fn(creds.env);
    } finally {
      await creds.dispose();
    }
  }

  /** Runs one query that returns a JSON line. */
  private async psqlJson(conn: PgConnection, database: string | undefined, sql: string, env: NodeJS.ProcessEnv, step: string, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const out = await runTool(
      this.tools.psql,
      ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', `--dbname=${conninfoFor(conn, database)}`],
      { target: this.target, step, env, signal, input: sql },
      { extendEnv: false },
    );
    return parseJsonLine(out.split('\n'));
  }

  private async requireTool(name: ToolName, step: string): Promise<string> {
    const v = await toolVersion(this.tools[name].bin);
    if (!v) throw new BkError('TOOL_MISSING', `${this.tools[name].bin} not found`, { target: this.target, step, hint: INSTALL });
    return v;
  }

  /** Adds the fix to a tool failure, recognised from what libpq and the tools say. */
  private explain(e: unknown, step: string, conn: PgConnection = this.conn): BkError {
    const err = e instanceof BkError ? e.at(this.target, step) : toolError({ bin: 'psql', install: INSTALL }, e, { target: this.target, step });
    if (err.hint) return err;
    const out = err.toolOutput ?? '';
    const server = describeServer(conn.params);
    let hint: string | undefined;
    let message = err.message;
    if (/password authentication failed|no password supplied|authentication failed|password is required/i.test(out)) {
      hint = 'check user and password (password / password_file in the config, or PGPASSWORD / ~/.pgpass)';
      message = `cannot log in to PostgreSQL at ${server}: ${err.message}`;
    } else if (/server closed the connection|terminating connection|connection to server was lost/i.test(out)) {
      hint = 'the server went away (crash, restart or network); run it again once the server is back';
      message = `lost the connection to PostgreSQL at ${server}: ${err.message}`;
    } else if (/could not connect|connection refused|could not translate host name|timeout expired|no such file or directory/i.test(out)) {
      hint = `is PostgreSQL running and reachable at ${server}? check host and port`;
      message = `cannot connect to PostgreSQL at ${server}: ${err.message}`;
    } else if (/database ".*" does not exist/.test(out)) {
      hint = 'check database (or create it)';
    } else if (/server version mismatch/.test(out)) {
      hint = VERSION_HINT;
    } else if (/unsupported version .* in file header/.test(out)) {
      hint = 'this pg_restore is older than the pg_dump that wrote the archive (see the manifest\'s tools): install a newer postgresql-client and set bin_dir';
    } else if (/permission denied to create database/i.test(out)) {
      hint = 'give the role CREATEDB, create the database first, or (restore tests) set verify.url to a scratch server';
    } else if (/permission denied/i.test(out)) {
      hint = 'the role needs SELECT on every table: GRANT pg_read_all_data TO <role> (PostgreSQL 14+), or use the owner';
    } else if (/role ".*" does not exist/.test(out)) {
      hint = 'restore the globals target first (roles), or use format: custom, which restores elsewhere without owners';
    }
    if (!hint) return err;
    return new BkError(err.code, message, { target: err.target, step: err.step, hint, toolOutput: err.toolOutput, cause: err.cause, exitCode: err.exitCode });
  }
}

const nonEmpty = (v: string | undefined): string | undefined => (v === '' ? undefined : v);

function parseJobs(v: unknown): number {
  if (v === undefined) return 1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new BkError('USAGE', `--jobs ${String(v)}: expected a whole number from 1 to 64`, { step: 'restore' });
  return n;
}

/** The last non-empty output line, parsed as JSON. */
function parseJsonLine(lines: string[]): Record<string, unknown> {
  const line = lines.filter((l) => l.trim() !== '').at(-1);
  if (line === undefined) throw new BkError('TOOL_FAILED', 'psql returned no result', { step: 'query' });
  return JSON.parse(line) as Record<string, unknown>;
}

function parseCounts(lines: string[]): Record<string, number> {
  const raw = parseJsonLine(lines);
  return Object.fromEntries(
    Object.keys(raw)
      .sort()
      .map((k) => [k, Number(raw[k])]),
  );
}

/** "pg_dump (PostgreSQL) 15.4 (Debian 15.4-1)" → "15.4 (Debian 15.4-1)". */
function versionNumber(line: string): string {
  return line.replace(/^\S+ \(PostgreSQL\) /, '');
}

/** Comparable major version: 1500 for 15.x, 906 for 9.6.x. */
function versionRank(line: string): number {
  const m = /(\d+)(?:\.(\d+))?/.exec(versionNumber(line));
  if (!m) return 0;
  const major = Number(m[1]);
  return major >= 10 ? major * 100 : major * 100 + Number(m[2] ?? 0);
}

function serverRank(versionNum: number): number {
  return versionNum >= 100000 ? Math.floor(versionNum / 10000) * 100 : Math.floor(versionNum / 100);
}
