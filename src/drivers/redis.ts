/**
 * Redis driver. The payload is a plain RDB file, so `cat > dump.rdb` restores it without bk.
 *
 * Backup, two ways:
 * - `mode: replication` (default): `redis-cli --rdb -` asks the server for a snapshot over the
 *   replication protocol (the server forks, like BGSAVE) and streams it; works remotely, needs the
 *   SYNC permission. Managed services that block SYNC need `mode: file` on the server host.
 * - `mode: file`: BGSAVE, wait until LASTSAVE moves past the value from before, then read
 *   `dir/dbfilename` from the local data directory.
 * Either way the RDB is checked as it streams (magic, CRC64 trailer), and the manifest records the
 * key counts per database from INFO keyspace at dump time.
 *
 * Restore, two ways (`--mode`):
 * - `live` (default): the RDB is loaded into a throwaway redis-server on a private unix socket,
 *   then every key is copied into the destination with DUMP / RESTORE … REPLACE and its TTL,
 *   database by database. The destination is flushed first (FLUSHALL) so it equals the backup,
 *   unless `flush_before_restore: false`. Works for any server bk can log in to, remote or managed.
 * - `file`: the RDB is written atomically as `dir/dbfilename`; a running server would overwrite it
 *   at shutdown, so bk refuses unless stop_command/start_command are configured, and runs them.
 *
 * Passwords reach redis-cli only through REDISCLI_AUTH in the child's environment, and the RESP
 * client sends them inside the protocol (AUTH); never on a command line.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, chmod, chown, constants, link, mkdir, open, realpath, rename, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { z } from 'zod';
import { shellQuote } from '../codecs/compression.js';
import { BkError } from '../errors.js';
import { Coalesce } from '../util/coalesce.js';
import { makeOwnedDir } from '../util/owned-dir.js';
import type { Logger } from '../log.js';
import { redact, registerSecret } from '../secrets.js';
import { runTool, toolError, toolVersion, type ToolSpec } from '../util/exec.js';
import type { AdHocFlags } from './registry.js';
import type { BackupContext, CheckResult, DrillCapable, Driver, DumpInfo, DumpSession, RestoreContext, RestoreDrill } from './driver.js';
import { copyKeyspace } from './redis-copy.js';
import { cliArgs, cliEnv, describeEndpoint, endpointUrl, isLocal, parseRedisUrl, redisTlsSchema, resolveEndpoint, respOptions, type RedisEndpoint } from './redis-endpoint.js';
import { RDB_EOF_MARK_SIZE, RdbCheck, reportedRdbLength, type RdbFacts } from './redis-rdb.js';
import { asText, parseInfo, RespClient, RespConnectionError, RespError, type RespValue } from './redis-resp.js';
import { REDIS_SERVER, startTempRedis } from './redis-temp-server.js';

const command = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

export const redisOptionsSchema = z.object({
  driver: z.literal('redis'),
  /** redis://[user[:password]@]host[:port], rediss:// for TLS, or unix:///path/to/socket. */
  url: z.string().min(1).optional(),
  host: z.string().min(1).optional(),
  port: z.coerce.number().int().min(1).max(65535).optional(),
  /** Unix socket path instead of host and port. */
  socket: z.string().min(1).optional(),
  /** ACL user; the default user when unset. */
  user: z.string().min(1).optional(),
  password: z.string().optional(),
  /** true, or redis-cli's TLS settings: cacert, cert, key, sni, insecure. rediss:// implies true. */
  tls: z.union([z.boolean(), redisTlsSchema]).optional(),
  /** replication: redis-cli --rdb over the network (default). file: BGSAVE and copy dump.rdb from data_dir. */
  mode: z.enum(['replication', 'file']).default('replication'),
  /** The server's data directory (CONFIG GET dir when unset and the server is local). */
  data_dir: z.string().min(1).optional(),
  /** The RDB file name in data_dir (CONFIG GET dbfilename when unset, else dump.rdb). */
  dbfilename: z.string().min(1).optional(),
  /** restore --mode file: commands that stop and start the server around replacing dump.rdb. */
  stop_command: command.optional(),
  start_command: command.optional(),
  /** restore --mode live: FLUSHALL the destination first, so it equals the backup (default true). */
  flush_before_restore: z.boolean().default(true),
  /** mode file: how long to wait for BGSAVE, in seconds. */
  bgsave_timeout: z.coerce.number().int().positive().default(3600),
});
export type RedisOptions = z.infer<typeof redisOptionsSchema>;

export const REDIS_CLI: ToolSpec = { bin: 'redis-cli', install: 'install redis-cli (apt-get install redis-tools)' };

/** Key counts per database ("db0" → {keys, expires}), as INFO keyspace reports them. */
export type Keyspace = Record<string, { keys: number; expires: number }>;

/** What a restore test can check: the shape of DumpInfo.checks and of a drill's inspect(). */
export interface RedisChecks {
  keyspace: Keyspace;
  /** Keys in all databases. */
  keys: number;
  [k: string]: unknown;
}

interface ServerFacts {
  version: string;
  keyspace: Keyspace;
  role: string;
  cluster: boolean;
}

type RestoreMode = 'live' | 'file';

export class RedisDriver implements Driver, DrillCapable {
  readonly kind = 'redis';
  readonly payloadExt = 'rdb';
  private readonly source: RedisEndpoint;

  constructor(
    private readonly target: string,
    private readonly options: RedisOptions,
  ) {
    this.source = resolveEndpoint({ ...options, password: options.password || undefined }, `targets.${target}`);
  }

  /** The dataset's size in memory: an RDB is smaller (compact encodings, LZF strings). */
  async estimateSize(ctx: BackupContext): Promise<number | undefined> {
    const c = await this.open(this.source, 'source', 'estimate size', ctx.signal);
    try {
      const info = parseInfo(asText(await c.call('INFO', 'memory')));
      return Number(info.used_memory_dataset ?? info.used_memory) || undefined;
    } finally {
      await c.close();
    }
  }

  async check(): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    const cli = await toolVersion(REDIS_CLI.bin);
    const tooOld = cli !== undefined && this.source.password !== undefined && !atLeast(cli, REDISCLI_AUTH_SINCE);
    results.push(
      !cli
        ? { name: 'redis-cli', ok: false, detail: 'redis-cli not found', hint: REDIS_CLI.install }
        : tooOld
          ? { name: 'redis-cli', ok: false, detail: `${cli} does not read REDISCLI_AUTH`, hint: 'install redis-cli 5.0.3 or newer (bk never puts a password on a command line)' }
          : { name: 'redis-cli', ok: true, detail: cli },
    );
    const where = describeEndpoint(this.source);
    if (cli) {
      try {
        // -e: exit non-zero when the command fails (NOAUTH), not only when the connection does.
        const out = await runTool(REDIS_CLI, [...cliArgs(this.source), '-e', 'PING'], { target: this.target, step: 'check', env: cliEnv(this.source) }, { timeout: 15_000 });
        results.push(
          out.trim() === 'PONG'
            ? { name: 'login', ok: true, detail: `redis-cli PING ${where}: PONG` }
            : { name: 'login', ok: false, detail: `redis-cli PING ${where}: ${out.trim()}`, hint: 'check the password and user' },
        );
      } catch (e) {
        const err = this.cliFailure(e, 'check');
        results.push({ name: 'login', ok: false, detail: err.describe(), hint: err.hint });
      }
    }
    let client: RespClient | undefined;
    try {
      client = await this.open(this.source, 'source', 'check');
      const facts = await serverFacts(client);
      results.push({ name: 'server', ok: true, detail: `redis ${facts.version} at ${where}, role ${facts.role}, ${totalKeys(facts.keyspace)} keys` });
      if (this.options.mode === 'file') {
        const { dir, dbfilename } = await this.dataFile(client);
        const path = join(dir, dbfilename);
        const readable = await access(dir, constants.R_OK | constants.X_OK).then(
          () => true,
          () => false,
        );
        results.push(
          readable
            ? { name: 'data_dir', ok: true, detail: `${path} (BGSAVE, then read)` }
            : { name: 'data_dir', ok: false, detail: `cannot read ${dir}`, hint: 'run bk as the redis user or a member of its group, or use mode: replication' },
        );
      }
    } catch (e) {
      const err = e instanceof BkError ? e : new BkError('SOURCE', String(e));
      results.push({ name: 'server', ok: false, detail: err.message, hint: err.hint });
    } finally {
      await client?.close();
    }
    const server = await toolVersion(REDIS_SERVER.bin);
    results.push({
      name: 'redis-server',
      ok: true,
      detail: server ? `${server} (live restores and restore tests)` : 'not found: live restores and restore tests need it on this machine',
      ...(server ? {} : { hint: REDIS_SERVER.install }),
    });
    return results;
  }

  async backup(ctx: BackupContext): Promise<DumpSession> {
    // redis-cli's version is asked while bk reads the server's facts: each costs a round of waiting.
    const cliVersion = this.options.mode === 'file' ? undefined : toolVersion(REDIS_CLI.bin);
    const client = await this.open(this.source, 'source', 'connect', ctx.signal);
    try {
      const before = await serverFacts(client);
      if (this.options.mode === 'file') return await this.backupFile(ctx, client, before);
      await client.close();
      return await this.backupReplication(ctx, before, await cliVersion);
    } catch (e) {
      await client.close();
      throw e;
    }
  }

  private async backupReplication(ctx: BackupContext, before: ServerFacts, version: string | undefined): Promise<DumpSession> {
    if (!version) throw new BkError('TOOL_MISSING', 'redis-cli not found', { target: this.target, step: 'dump', hint: REDIS_CLI.install });
    if (this.source.password !== undefined && !atLeast(version, REDISCLI_AUTH_SINCE)) {
      throw new BkError('TOOL_MISSING', `${version} does not read REDISCLI_AUTH`, { target: this.target, step: 'dump', hint: 'install redis-cli 5.0.3 or newer (bk never puts a password on a command line)' });
    }
    ctx.logger.info('streaming an RDB snapshot over the replication protocol', { step: 'dump', source: describeEndpoint(this.source) });
    const child = execa(REDIS_CLI.bin, [...cliArgs(this.source), '--rdb', '-'], {
      env: cliEnv(this.source),
      stdin: 'ignore',
      buffer: { stdout: false },
      cancelSignal: ctx.signal,
      forceKillAfterDelay: 5000,
    });
    const exited = child.then(
      (r) => String(r.stderr),
      (e: unknown) => {
        throw this.cliFailure(e, 'dump');
      },
    );
    exited.catch(() => undefined);
    const check = new RdbCheck({
      what: 'the RDB from redis-cli --rdb',
      target: this.target,
      step: 'dump',
      // redis-cli 7.0 leaves the diskless transfer's EOF marker on stdout; stderr says where the RDB ends.
      holdBack: RDB_EOF_MARK_SIZE,
      length: async () => reportedRdbLength(await exited),
    });
    // redis-cli writes the RDB in 4 KiB pieces (bench: 20,000 writes for 81 MB); joined first,
    // the check and every stage after it see 512 KiB chunks.
    pipeline(child.stdout!, new Coalesce(), check).catch(() => undefined);
    const done = (async (): Promise<DumpInfo> => {
      await finished(check);
      await exited;
      return this.dumpInfo(ctx, before, check.facts!, [{ name: 'redis-cli', version: version.replace(/^redis-cli\s+/, '') }]);
    })();
    done.catch(() => undefined);
    return { stream: check, done };
  }

  private async backupFile(ctx: BackupContext, client: RespClient, before: ServerFacts): Promise<DumpSession> {
    const { dir, dbfilename } = await this.dataFile(client);
    const path = join(dir, dbfilename);
    ctx.logger.info('BGSAVE, then reading the snapshot', { step: 'dump', file: path });
    await bgsaveAndWait(client, { signal: ctx.signal, timeoutMs: this.options.bgsave_timeout * 1000, target: this.target });
    await client.close();
    let fh;
    try {
      // Opened before anything else can happen: a later save renames a new file over the name,
      // but this descriptor keeps reading the snapshot just made.
      fh = await open(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new BkError('SOURCE', `cannot read ${path}: ${code ?? (e as Error).message}`, {
        target: this.target,
        step: 'dump',
        hint:
          code === 'EACCES'
            ? 'run bk as the redis user or a member of its group (the data dir is usually 0750 redis:redis), or use mode: replication'
            : 'check data_dir and dbfilename; they must name the file the server writes',
      });
    }
    const check = new RdbCheck({ what: path, target: this.target, step: 'dump' });
    pipeline(fh.createReadStream({ highWaterMark: 1 << 20 }), check).catch(() => undefined);
    const done = (async (): Promise<DumpInfo> => {
      await finished(check);
      return this.dumpInfo(ctx, before, check.facts!, [{ name: 'redis-server BGSAVE', version: before.version }], path);
    })();
    done.catch(() => undefined);
    return { stream: check, done };
  }

  /**
   * The manifest's facts. Key counts come from INFO keyspace just before the snapshot; a server
   * taking writes may differ at the instant of the fork, so the counts are read again afterwards
   * and `keyspaceStable` records whether anything moved in between.
   */
  private async dumpInfo(ctx: BackupContext, before: ServerFacts, rdb: RdbFacts, tools: DumpInfo['tools'], file?: string): Promise<DumpInfo> {
    let stable: boolean | null = null;
    try {
      const c = await this.open(this.source, 'source', 'dump', ctx.signal);
      try {
        stable = JSON.stringify((await serverFacts(c)).keyspace) === JSON.stringify(before.keyspace);
      } finally {
        await c.close();
      }
    } catch (e) {
      ctx.logger.warn(`could not read the key counts again after the dump: ${(e as Error).message}`, { step: 'dump' });
    }
    if (stable === false) ctx.logger.info('keys changed during the dump; the recorded key counts are from just before it', { step: 'dump' });
    const checks: RedisChecks = { keyspace: before.keyspace, keys: totalKeys(before.keyspace) };
    return {
      tools,
      serverVersion: before.version,
      contents: [endpointUrl(this.source)],
      checks,
      extra: { mode: this.options.mode, rdbVersion: rdb.version, rdbChecksum: rdb.checksum, keyspaceStable: stable, ...(file ? { file } : {}) },
    };
  }

  async restore(stream: Readable, ctx: RestoreContext): Promise<void> {
    if (restoreMode(ctx.options) === 'file') return this.restoreFile(stream, ctx);
    return this.restoreLive(stream, ctx);
  }

  /**
   * Live mode receives the whole RDB into a temp file before touching the destination. File mode
   * stops the server first, so it is checked in full before that.
   */
  restoreIsAtomic(_dumpInfo: DumpInfo, options: Record<string, unknown>): boolean {
    return restoreMode(options) === 'live';
  }

  private async restoreLive(stream: Readable, ctx: RestoreContext): Promise<void> {
    const dest = this.destination(ctx.to);
    const where = describeEndpoint(dest);
    // A destination bk cannot log in to, or must not write to, fails before the backup is read.
    const probe = await this.open(dest, 'destination', 'restore', ctx.signal);
    try {
      const facts = await serverFacts(probe);
      if (facts.cluster) {
        throw new BkError('USAGE', `${where} is a Redis Cluster node; a live restore needs a standalone server`, { target: this.target, step: 'restore', hint: 'restore into a standalone server, or per node with --mode file' });
      }
      if (facts.role !== 'master') {
        throw new BkError('USAGE', `${where} is a replica (read-only)`, { target: this.target, step: 'restore', hint: 'restore into its primary' });
      }
    } finally {
      await probe.close();
    }

    const tmp = await makeOwnedDir(tmpdir(), 'bk-redis-restore', (dir) => ctx.logger.warn('removed the temp directory of an interrupted restore', { step: 'restore', dir }));
    try {
      const file = join(tmp, 'dump.rdb');
      ctx.logger.info('receiving the RDB', { step: 'restore' });
      await pipeline(stream, new RdbCheck({ what: 'the backup', target: this.target, step: 'restore' }), createWriteStream(file, { mode: 0o600 }), { signal: ctx.signal });
      ctx.logger.info('loading it into a temporary redis-server', { step: 'load' });
      const loader = await startTempRedis({ dir: tmp, databases: databasesFor(ctx.dumpInfo), signal: ctx.signal, target: this.target });
      let src: RespClient | undefined;
      let dst: RespClient | undefined;
      let touched = false;
      try {
        src = await loader.connect();
        const loaded = await serverFacts(src);
        dst = await this.open(dest, 'destination', 'restore', ctx.signal);
        touched = true;
        if (this.options.flush_before_restore) {
          ctx.logger.info(`FLUSHALL on ${where}`, { step: 'restore' });
          await dst.call('FLUSHALL');
        }
        const databases = Object.keys(loaded.keyspace).map((db) => Number(db.slice(2))).sort((a, b) => a - b);
        const result = await copyKeyspace(src, dst, { databases, signal: ctx.signal, logger: ctx.logger, target: this.target });
        ctx.logger.info(`restored ${result.total} keys into ${where}`, { step: 'restore', keys: result.keys, expiredDuringCopy: result.skipped, functions: result.functions });
      } catch (e) {
        const state = touched ? `${where} is partly restored` : `${where} was not changed`;
        if (ctx.signal.aborted) throw new BkError('INTERRUPTED', `interrupted; ${state}`, { target: this.target, step: 'restore', cause: e });
        if (e instanceof RespConnectionError) throw this.destinationError(`connection lost during the restore; ${state}`, e);
        if (e instanceof RespError) throw this.destinationError(`the restore failed; ${state}`, e);
        throw e;
      } finally {
        await src?.close();
        await dst?.close();
        await loader.stop();
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private async restoreFile(stream: Readable, ctx: RestoreContext): Promise<void> {
    const log = ctx.logger;
    if (ctx.to !== undefined && (/^[a-z][a-z0-9+.-]*:\/\//i.test(ctx.to) || /^[^/]+:\d+$/.test(ctx.to))) {
      throw new BkError('USAGE', '--mode file writes dump.rdb into a directory', { target: this.target, step: 'restore', hint: 'pass --to DIR, or --mode live for a server URL' });
    }
    const toDir = ctx.to !== undefined ? resolve(ctx.to) : undefined;
    const server = await this.probeSource(ctx.signal);
    const dir = toDir ?? this.options.data_dir ?? server.dir;
    if (!dir) {
      throw new BkError('USAGE', '--mode file needs the server\'s data directory', {
        target: this.target,
        step: 'restore',
        hint: server.running ? 'set data_dir in the target (CONFIG GET dir is not allowed)' : 'the server is down, so bk cannot ask it: set data_dir in the target, or pass --to DIR',
      });
    }
    const owns = server.running && (toDir === undefined || (server.dir !== undefined && (await samePath(server.dir, dir))));
    const dbfilename = this.options.dbfilename ?? (owns || toDir === undefined ? server.dbfilename : undefined) ?? 'dump.rdb';
    const where = describeEndpoint(this.source);
    if (owns) {
      if (!this.options.stop_command) {
        throw new BkError('REFUSED', `redis at ${where} is running from ${dir}; it would overwrite the restored ${dbfilename} at shutdown`, {
          target: this.target,
          step: 'restore',
          hint: 'stop it first (systemctl stop redis-server), or set stop_command and start_command in the target, or restore with --mode live',
        });
      }
      if (server.appendonly) {
        throw new BkError('REFUSED', `redis at ${where} runs with appendonly yes and would load its AOF instead of ${dbfilename}`, {
          target: this.target,
          step: 'restore',
          hint: 'restore with --mode live; or set appendonly no in redis.conf, restore, start, then CONFIG SET appendonly yes (rewrites the AOF from the restored data)',
        });
      }
    } else {
      const aof = await firstExisting([join(dir, 'appendonlydir'), join(dir, 'appendonly.aof')]);
      if (aof) log.warn(`${aof} exists: a server with appendonly yes loads the AOF instead of ${dbfilename}; set appendonly no for the first start after the restore`, { step: 'restore' });
    }
    await mkdir(dir, { recursive: true, mode: 0o750 });

    let stopped = false;
    let failure: unknown;
    try {
      if (owns) {
        log.info('stopping redis', { step: 'stop' });
        await this.runHook('stop_command', ctx.signal);
        await this.waitUntil('down', ctx.signal);
        stopped = true;
      }
      const path = await writeRdbInto(stream, dir, dbfilename, { signal: ctx.signal, target: this.target });
      log.info(`wrote ${path}`, { step: 'restore' });
    } catch (e) {
      failure = e;
    }
    if (stopped && this.options.start_command) {
      // Started again whatever happened (with the old file if the write failed), even when bk
      // was interrupted: a restore must not leave the server down.
      const unstoppable = new AbortController().signal;
      try {
        log.info('starting redis', { step: 'start' });
        await this.runHook('start_command', unstoppable);
        await this.waitUntil('up', unstoppable);
      } catch (e) {
        if (failure === undefined) failure = e;
        else log.error(`starting redis again failed too: ${(e as Error).message}`, { step: 'start' });
      }
    }
    if (failure !== undefined) throw failure;
    if (stopped && !this.options.start_command) log.warn('redis was stopped and no start_command is set: start it to load the restored data', { step: 'restore' });
    if (!owns) log.info(`start redis with dir ${dir} and dbfilename ${dbfilename} to load the restored data`, { step: 'restore' });
  }

  describeRestoreTarget(to?: string, options: Record<string, unknown> = {}): string {
    if (restoreMode(options) === 'file') {
      const name = this.options.dbfilename ?? 'dump.rdb';
      const dir = to ?? this.options.data_dir;
      const where = dir ? join(dir, name) : `${name} in the data dir of ${describeEndpoint(this.source)}`;
      const hooks = this.options.stop_command ? 'stop_command, replace the file, start_command' : 'the server must not be running';
      return `${where} (file: ${hooks})`;
    }
    let dest: string;
    try {
      dest = describeEndpoint(this.destination(to));
    } catch {
      dest = to ?? describeEndpoint(this.source);
    }
    return this.options.flush_before_restore
      ? `redis ${dest} (live: FLUSHALL, then every key of the backup with its TTL)`
      : `redis ${dest} (live: keys of the backup replace keys of the same name; other keys stay)`;
  }

  manualRestoreCommand(to?: string, options: Record<string, unknown> = {}): string {
    const dir = (restoreMode(options) === 'file' ? to : undefined) ?? this.options.data_dir ?? '/var/lib/redis';
    const file = shellQuote(join(dir, this.options.dbfilename ?? 'dump.rdb'));
    const hook = (c: RedisOptions['stop_command'], fallback: string) => (c === undefined ? fallback : typeof c === 'string' ? c : c.map(shellQuote).join(' '));
    return `{ ${hook(this.options.stop_command, 'systemctl stop redis-server')}; cat > ${file}.new && chown redis:redis ${file}.new && mv ${file}.new ${file} && ${hook(this.options.start_command, 'systemctl start redis-server')}; }`;
  }

  async prepareDrill(ctx: { signal: AbortSignal; logger: Logger; options: Record<string, unknown> }): Promise<RestoreDrill> {
    const dir = await makeOwnedDir(tmpdir(), 'bk-redis-drill');
    let server;
    try {
      // Many databases, because the drill does not know yet which numbers the backup uses.
      server = await startTempRedis({ dir, dbfilename: 'drill.rdb', databases: DRILL_DATABASES, signal: ctx.signal, target: this.target });
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    const drillServer = server;
    ctx.logger.debug('restore drill server started', { socket: server.socket });
    return {
      to: `unix://${server.socket}`,
      inspect: async () => {
        const c = await drillServer.connect();
        try {
          const keyspace = (await serverFacts(c)).keyspace;
          const checks: RedisChecks = { keyspace, keys: totalKeys(keyspace) };
          return checks;
        } finally {
          await c.close();
        }
      },
      dispose: async () => {
        await drillServer.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  /**
   * The endpoint `--to` names. Its credentials come from the URL, else from REDISCLI_AUTH; the
   * target's own password is never sent to another server.
   */
  private destination(to?: string): RedisEndpoint {
    if (to === undefined) return this.source;
    let parts;
    try {
      parts = parseDestination(to);
    } catch (e) {
      throw e instanceof BkError ? new BkError('USAGE', e.message.replace(/^--to: /, `--to ${to}: `), { hint: e.hint }) : e;
    }
    const envPassword = process.env.REDISCLI_AUTH || undefined;
    registerSecret(envPassword);
    const password = parts.password ?? envPassword;
    return {
      host: parts.host ?? '127.0.0.1',
      port: parts.port ?? 6379,
      ...(parts.socket ? { socket: parts.socket } : {}),
      ...(parts.user ? { user: parts.user } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(parts.tls ? { tls: this.source.tls ?? {} } : {}),
    };
  }

  /** Connects and logs in; failures become BkErrors that say what to check. */
  private async open(ep: RedisEndpoint, role: 'source' | 'destination', step: string, signal?: AbortSignal): Promise<RespClient> {
    const where = describeEndpoint(ep);
    const code = role === 'source' ? 'SOURCE' : 'FAILED';
    let client: RespClient;
    try {
      client = await RespClient.connect(respOptions(ep, signal));
    } catch (e) {
      throw connectionError(e, code, `${role} ${where}`, this.target, step);
    }
    try {
      if (ep.password !== undefined || ep.user !== undefined) {
        try {
          // An ACL user without a password is a `nopass` user: any password logs it in.
          await client.call('AUTH', ...(ep.user ? [ep.user] : []), ep.password ?? '');
        } catch (e) {
          // A password given for a server that has none: log in works without it.
          if (!(e instanceof RespError && /without any password configured/i.test(e.message))) throw e;
        }
      }
      await client.call('PING');
      return client;
    } catch (e) {
      await client.close();
      if (e instanceof RespError && /WRONGPASS|NOAUTH|invalid password|invalid username/i.test(e.message)) {
        throw new BkError(code, `cannot log in to ${role} ${where}: ${redact(e.message)}`, {
          target: this.target,
          step,
          hint:
            role === 'source'
              ? 'check password (or password_file, or REDISCLI_AUTH for ad-hoc use) and user of the target'
              : 'give the destination\'s password in REDISCLI_AUTH (or in the --to URL)',
        });
      }
      throw connectionError(e, code, `${role} ${where}`, this.target, step);
    }
  }

  /** Whether the configured server answers, and what it says about its files (when it lets us ask). */
  private async probeSource(signal: AbortSignal): Promise<{ running: boolean; dir?: string; dbfilename?: string; appendonly?: boolean }> {
    let client: RespClient;
    try {
      client = await this.open(this.source, 'source', 'restore', signal);
    } catch (e) {
      const cause = (e as BkError).cause;
      if (cause instanceof RespConnectionError) return { running: false };
      throw e;
    }
    try {
      const get = async (name: string) => configGet(client, name).catch(() => undefined);
      const dir = await get('dir');
      const dbfilename = await get('dbfilename');
      const appendonly = await get('appendonly');
      return { running: true, ...(dir ? { dir } : {}), ...(dbfilename ? { dbfilename } : {}), appendonly: appendonly === 'yes' };
    } finally {
      await client.close();
    }
  }

  private async waitUntil(state: 'up' | 'down', signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + (state === 'up' ? 600_000 : 120_000);
    for (;;) {
      if (signal.aborted) throw new BkError('INTERRUPTED', 'interrupted', { target: this.target, step: state === 'up' ? 'start' : 'stop' });
      let answer: 'up' | 'down' | 'loading';
      try {
        const c = await RespClient.connect({ ...respOptions(this.source), connectTimeoutMs: 2000 });
        try {
          if (this.source.password !== undefined) await c.call('AUTH', ...(this.source.user ? [this.source.user] : []), this.source.password).catch(() => undefined);
          answer = (await c.call('PING')) === 'PONG' ? 'up' : 'loading';
        } catch (e) {
          answer = e instanceof RespError ? 'loading' : 'down';
        } finally {
          await c.close();
        }
      } catch {
        answer = 'down';
      }
      if (answer === state) return;
      if (Date.now() > deadline) {
        throw new BkError('FAILED', state === 'up' ? 'redis did not come back after start_command' : 'redis still answers after stop_command', {
          target: this.target,
          step: state === 'up' ? 'start' : 'stop',
          hint: state === 'up' ? 'check the redis log; the restored dump.rdb is in place' : 'check stop_command; nothing was written',
        });
      }
      await sleep(200);
    }
  }

  private async runHook(which: 'stop_command' | 'start_command', signal: AbortSignal): Promise<void> {
    const cmd = this.options[which]!;
    const [bin, args] = typeof cmd === 'string' ? ['/bin/sh', ['-c', cmd]] : [cmd[0]!, cmd.slice(1)];
    try {
      // The password is offered as REDISCLI_AUTH, so `redis-cli shutdown` works as a stop_command.
      await runTool({ bin, install: `check ${which} in the target` }, args, { target: this.target, step: which, env: cliEnv(this.source), signal }, { timeout: 300_000 });
    } catch (e) {
      const err = e as BkError;
      throw new BkError(err.code === 'INTERRUPTED' ? 'INTERRUPTED' : 'TOOL_FAILED', `${which} failed: ${err.message}`, {
        target: this.target,
        step: which,
        toolOutput: err.toolOutput,
        hint: which === 'stop_command' ? 'run it by hand to see why; nothing was written' : 'start redis by hand; the restored dump.rdb is in place',
        cause: e,
      });
    }
  }

  /** Where the server keeps its RDB: data_dir, or CONFIG GET dir when the server is on this machine. */
  private async dataFile(client: RespClient): Promise<{ dir: string; dbfilename: string }> {
    let dir = this.options.data_dir;
    if (dir === undefined) {
      if (!isLocal(this.source)) {
        throw new BkError('CONFIG', `targets.${this.target}.data_dir: needed for mode: file with a remote server`, {
          step: 'config',
          hint: 'mode: file reads dump.rdb on this machine: run bk on the redis host, set data_dir, or use mode: replication',
        });
      }
      dir = await configGet(client, 'dir').catch((e: unknown) => {
        throw new BkError('SOURCE', `CONFIG GET dir failed: ${(e as Error).message}`, { target: this.target, step: 'dump', hint: `set targets.${this.target}.data_dir (and dbfilename)` });
      });
    }
    const dbfilename = this.options.dbfilename ?? (await configGet(client, 'dbfilename').catch(() => undefined)) ?? 'dump.rdb';
    return { dir, dbfilename };
  }

  /** A redis-cli failure with the fix for the usual causes. */
  private cliFailure(e: unknown, step: string): BkError {
    const err = toolError(REDIS_CLI, e, { target: this.target, step });
    const out = err.toolOutput ?? '';
    const hint = CLI_HINTS.find(([pattern]) => pattern.test(out))?.[1] ?? err.hint;
    return new BkError(err.code, err.message, { target: this.target, step, toolOutput: err.toolOutput, hint, cause: e });
  }

  private destinationError(message: string, e: unknown): BkError {
    return new BkError('FAILED', message, { target: this.target, step: 'restore', toolOutput: e instanceof Error ? redact(e.message) : undefined, hint: 'fix the cause and run the restore again (it replaces every key of the backup)', cause: e });
  }
}

/** What redis-cli's stderr says → what to do about it. First match wins. */
const CLI_HINTS: [RegExp, string][] = [
  [/WRONGPASS|NOAUTH|AUTH failed|invalid password/i, 'check password and user of the target (redis-cli gets them through REDISCLI_AUTH and --user)'],
  [/NOPERM/, 'the ACL user needs the SYNC permission for mode: replication (ACL SETUSER … +sync +replconf), or use mode: file'],
  [/unknown command|SYNC with master failed|Can't SYNC/i, "this server does not allow SYNC (managed services often block it): use mode: file on the server host, or the provider's snapshots"],
  [/fsync/i, 'this redis-cli cannot write the RDB to a pipe (redis/redis#9135): install a newer redis-cli'],
  [/Could not connect|Connection refused/i, 'is redis running there? check host and port'],
  [/I\/O Error|Error reading|Connection reset/i, 'the connection broke during the transfer; nothing was stored, run the backup again'],
];

const DRILL_DATABASES = 1024;
/** redis-cli reads REDISCLI_AUTH since 5.0.3. */
const REDISCLI_AUTH_SINCE = [5, 0, 3];

/** Whether a version string ("redis-cli 7.0.15") is at least `min`. */
export function atLeast(version: string, min: number[]): boolean {
  const got = (/(\d+)\.(\d+)(?:\.(\d+))?/.exec(version) ?? []).slice(1).map((n) => Number(n ?? 0));
  if (got.length === 0) return true; // unknown format: let the tool itself decide
  for (let i = 0; i < min.length; i++) {
    if ((got[i] ?? 0) !== min[i]) return (got[i] ?? 0) > min[i]!;
  }
  return true;
}

export function restoreMode(options: Record<string, unknown>): RestoreMode {
  const mode = options.mode ?? 'live';
  if (mode !== 'live' && mode !== 'file') throw new BkError('USAGE', `--mode ${String(mode)}: use live or file`, { step: 'restore' });
  return mode;
}

/** host, host:port, [v6]:port */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/;

/** `--to` for a live restore: a redis:// rediss:// unix:// URL, a socket path, or host[:port]. */
function parseDestination(to: string): ReturnType<typeof parseRedisUrl> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(to)) return parseRedisUrl(to, '--to');
  if (to.startsWith('/')) return { socket: to };
  const m = HOST_PORT.exec(to);
  if (!m) throw new BkError('USAGE', `--to ${to}: not a redis address`, { hint: 'use redis://host:port, rediss://host:port, unix:///path or host:port' });
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), ...(m[2] ? { port: Number(m[2]) } : {}) };
}

/** Ad-hoc target from flags: `bk backup redis [--source redis://…|host:port|/socket]`, password from REDISCLI_AUTH. */
export function redisAdHoc(flags: AdHocFlags, env: NodeJS.ProcessEnv): Record<string, unknown> | string {
  const envPassword = env.REDISCLI_AUTH || undefined;
  const source = flags.source;
  if (source === undefined) return { driver: 'redis', host: '127.0.0.1', port: 6379, ...(envPassword ? { password: envPassword } : {}) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    let hasPassword = false;
    try {
      hasPassword = new URL(source).password !== '';
    } catch {
      return `--source ${source}: not a URL (use redis://[user@]host:port, rediss://… or unix:///path)`;
    }
    return { driver: 'redis', url: source, ...(envPassword && !hasPassword ? { password: envPassword } : {}) };
  }
  if (source.startsWith('/')) return { driver: 'redis', socket: source, ...(envPassword ? { password: envPassword } : {}) };
  const m = HOST_PORT.exec(source);
  if (!m) return `--source ${source}: use redis://host:port, host:port or a unix socket path`;
  return { driver: 'redis', host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: m[2] ? Number(m[2]) : 6379, ...(envPassword ? { password: envPassword } : {}) };
}

/** INFO in one round trip: version, keyspace, role, cluster mode. */
async function serverFacts(c: RespClient): Promise<ServerFacts> {
  const info = parseInfo(asText(await c.call('INFO')));
  return {
    version: info.redis_version ?? 'unknown',
    keyspace: parseKeyspace(info),
    role: info.role ?? 'master',
    cluster: info.cluster_enabled === '1',
  };
}

export function parseKeyspace(info: Record<string, string>): Keyspace {
  const out: Keyspace = {};
  for (const [k, v] of Object.entries(info)) {
    if (!/^db\d+$/.test(k)) continue;
    const fields = Object.fromEntries(v.split(',').map((kv) => kv.split('=') as [string, string]));
    out[k] = { keys: Number(fields.keys ?? 0), expires: Number(fields.expires ?? 0) };
  }
  return out;
}

const totalKeys = (ks: Keyspace): number => Object.values(ks).reduce((n, d) => n + d.keys, 0);

/** Enough databases for every db number the backup recorded. */
function databasesFor(info: DumpInfo): number {
  const ks = (info.checks as RedisChecks | undefined)?.keyspace ?? {};
  const highest = Math.max(-1, ...Object.keys(ks).map((k) => Number(k.slice(2))));
  return Math.max(DRILL_DATABASES, highest + 1);
}

async function configGet(c: RespClient, name: string): Promise<string> {
  const reply = (await c.call('CONFIG', 'GET', name)) as RespValue[];
  if (!Array.isArray(reply) || reply.length < 2) throw new Error(`CONFIG GET ${name}: no such setting`);
  return asText(reply[1]!);
}

/**
 * BGSAVE and wait for it. LASTSAVE has one-second resolution, so the save is started in a later
 * second than the last one: then a LASTSAVE above the old value can only be this save or a later one.
 */
export async function bgsaveAndWait(c: RespClient, opts: { signal: AbortSignal; timeoutMs: number; target?: string }): Promise<void> {
  const fail = (message: string, hint?: string, e?: unknown) => new BkError('SOURCE', message, { target: opts.target, step: 'bgsave', hint, toolOutput: e instanceof Error ? e.message : undefined });
  const deadline = Date.now() + opts.timeoutMs;
  const persistence = async () => parseInfo(asText(await c.call('INFO', 'persistence')));
  const lastBefore = Number(await c.call('LASTSAVE'));
  while (Number(asText(((await c.call('TIME')) as RespValue[])[0]!)) <= lastBefore) await sleep(100);
  let startedNow = false;
  for (;;) {
    try {
      startedNow = /started/i.test(asText(await c.call('BGSAVE', 'SCHEDULE')));
      break;
    } catch (e) {
      if (!(e instanceof RespError && /in progress/i.test(e.message))) throw fail(`BGSAVE failed: ${e instanceof Error ? e.message : String(e)}`, 'check that the ACL user may run BGSAVE, LASTSAVE and INFO', e);
      // Someone else's save is running: it may hold older data, so wait for it and ask again.
      while ((await persistence()).rdb_bgsave_in_progress === '1') await sleep(200);
    }
  }
  let sawRunning = false;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    if (opts.signal.aborted) throw new BkError('INTERRUPTED', 'interrupted while waiting for BGSAVE', { target: opts.target, step: 'bgsave' });
    const info = await persistence();
    const running = info.rdb_bgsave_in_progress === '1';
    sawRunning ||= running;
    const last = Number(await c.call('LASTSAVE'));
    if (!running && last > lastBefore) return;
    if (!running && (startedNow || sawRunning) && info.rdb_last_bgsave_status === 'err') {
      throw fail('BGSAVE failed on the server', 'see the redis log: disk full, or no write permission on its dir?');
    }
    if (Date.now() > deadline) throw fail(`BGSAVE did not finish within ${Math.round(opts.timeoutMs / 1000)} s`, 'raise bgsave_timeout, or check the redis log');
    await sleep(delay);
  }
}

/**
 * Writes the RDB as dir/name atomically: a temp file beside it, checked and fsynced, then renamed
 * over the old one, which stays as <name>.before-restore. Mode and owner follow the old file (or
 * the directory), so the server can read it.
 */
async function writeRdbInto(stream: Readable, dir: string, name: string, opts: { signal: AbortSignal; target: string }): Promise<string> {
  const final = join(dir, name);
  const tmp = join(dir, `.${name}.bk-${randomBytes(4).toString('hex')}`);
  const old = await stat(final).catch(() => undefined);
  const mode = old ? old.mode & 0o777 : 0o640;
  try {
    await pipeline(stream, new RdbCheck({ what: 'the backup', target: opts.target, step: 'restore' }), createWriteStream(tmp, { mode, flags: 'wx', flush: true }), { signal: opts.signal });
    await chmod(tmp, mode);
    if (process.getuid?.() === 0) {
      const owner = old ?? (await stat(dir));
      await chown(tmp, owner.uid, owner.gid);
    }
    if (old) {
      const kept = `${final}.before-restore`;
      await unlink(kept).catch(() => undefined);
      await link(final, kept);
    }
    await rename(tmp, final);
    const d = await open(dir, 'r');
    await d.sync().finally(() => d.close());
    return final;
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    if (e instanceof BkError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new BkError(code === 'ABORT_ERR' ? 'INTERRUPTED' : 'FAILED', `writing ${final} failed: ${(e as Error).message}`, {
      target: opts.target,
      step: 'restore',
      hint: code === 'EACCES' ? 'run bk as root or the redis user' : code === 'ENOSPC' ? 'free disk space' : undefined,
      cause: e,
    });
  }
}

async function samePath(a: string, b: string): Promise<boolean> {
  const real = async (p: string) => realpath(p).catch(() => resolve(p));
  return (await real(a)) === (await real(b));
}

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await stat(p).then(() => true, () => false)) return p;
  return undefined;
}

function connectionError(e: unknown, code: 'SOURCE' | 'FAILED', what: string, target: string, step: string): BkError {
  if (e instanceof BkError) return e;
  const c = (e as RespConnectionError).code;
  const msg = e instanceof Error ? e.message : String(e);
  if (c === 'ABORT_ERR') return new BkError('INTERRUPTED', 'interrupted', { target, step, cause: e });
  const reason: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOENT: 'no such socket',
    ETIMEDOUT: 'timed out',
    ENOTFOUND: 'host not found',
    EHOSTUNREACH: 'host unreachable',
  };
  const hint =
    c === 'ECONNREFUSED' || c === 'ENOENT'
      ? 'is redis running there? check host and port (or socket)'
      : c === 'ETIMEDOUT' || c === 'EHOSTUNREACH' || c === 'ENOTFOUND'
        ? 'check the host name, the port and firewalls'
        : /certificate|TLS|SSL|ssl3|EPROTO/i.test(`${c ?? ''} ${msg}`)
          ? 'check tls: (cacert, sni, cert/key), and that the server speaks TLS on that port'
          : undefined;
  const problem = c && reason[c] && /^cannot connect/.test(msg) ? `cannot connect to ${what}: ${reason[c]}` : `${what}: ${redact(msg)}`;
  return new BkError(code, problem, { target, step, hint, cause: e });
}
