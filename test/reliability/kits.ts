/**
 * Driver kits for the fault matrix: one per driver, each with a source big enough that a backup
 * or restore lasts long enough to be interrupted, a way to change the source (so each backup is a
 * new one), and a digest of what a restore produced, to compare with the source at backup time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary, postgresBinDirs } from '../harness/bin.js';
import { startMariadb, startPostgres, startRedis, type MariadbServer, type PostgresServer, type RedisServer } from '../harness/index.js';
import { descendants } from './proc-tree.js';
import type { Rng } from './seeded.js';
import { treeDigest } from './tree-digest.js';

export type Phase = 'backup' | 'restore' | 'prune';

export interface Kit {
  /** Driver name, also the target name in the config. */
  readonly driver: string;
  /** Child processes bk runs in each phase, by comm (what the kill-tool fault may hit). */
  readonly tools: Record<Phase, readonly string[]>;
  /**
   * Of those, the ones whose loss the run may survive with a good result (exit 0 or 1 then; a
   * listed backup is verified and restored like any other).
   */
  readonly helpers?: Partial<Record<Phase, readonly string[]>>;
  /** Restores write into a directory under the restore root (disk-full during restore applies). */
  readonly restoresToDisk: boolean;
  /**
   * The log line after which a restore may change its destination (files: the move out of the
   * staging directory; redis: the FLUSHALL). A restore struck before it must leave the
   * destination as it was. Undefined: the restore is all or nothing (one transaction).
   */
  readonly restoreTouchMarker?: RegExp;
  /** A server the dump reads from, which the server-stop fault crashes mid-run. */
  readonly server?: KitServer;
  /** YAML lines of the target (under `targets.<driver>:`). */
  targetLines(): string[];
  /** Makes the source differ from the last backup. */
  change(rng: Rng): Promise<void>;
  /** Digest of the source as it is now. */
  sourceDigest(): Promise<string>;
  /** Extra `bk restore` arguments that send the restore to a scratch destination. */
  restoreArgs(): string[];
  /** Digest of what the last restore produced (same scale as sourceDigest). */
  restoredDigest(): Promise<string>;
  /** Leftovers of interrupted restores beside the destination (staging directories). */
  restoreLeftovers(): Promise<string[]>;
  /** Directories besides the system temp dir where bk makes working directories for this kit. */
  workDirs(): string[];
  /** Secrets in this kit's config: no process may show them in its command line. */
  secrets(): string[];
  close(): Promise<void>;
}

export interface KitServer {
  /** SIGKILL the server the phase talks to (the dump's source, the restore's destination). */
  crash(phase: Phase): Promise<void>;
  /** A working server again, seeded with the same data (the config may point elsewhere now). */
  recover(): Promise<void>;
}

/** What the matrix needs to know of a kit before starting it (to draw cases at collection time). */
export interface KitSpec extends Pick<Kit, 'driver' | 'tools' | 'helpers' | 'restoresToDisk' | 'restoreTouchMarker'> {
  hasServer: boolean;
  /** Its server and tools are installed here. */
  available(): boolean;
  /** `work`: private scratch space; `restoreRoot`: where restores go (maybe a small filesystem). */
  start(work: string, restoreRoot: string): Promise<Kit>;
}

export const filesSpec: KitSpec = {
  driver: 'files',
  // GNU tar packs and unpacks; Node 20 has no built-in zstd, so bk pipes through the zstd binary;
  // restore moves files into place with rsync (or a rename into an empty destination).
  tools: { backup: ['tar', 'zstd'], restore: ['tar', 'zstd', 'rsync'], prune: [] },
  restoresToDisk: true,
  restoreTouchMarker: /"msg":"moving into place"/,
  hasServer: false,
  available: () => true,
  start: (work, restoreRoot) => filesKit(work, restoreRoot),
};

/**
 * The files driver over a directory of incompressible files (so zstd does real work and the
 * stored size is predictable) plus a few small ones.
 */
export async function filesKit(work: string, restoreRoot: string, sizeMiB = 8): Promise<Kit> {
  const source = join(work, 'files-source');
  const dest = join(restoreRoot, 'files-dest');
  await mkdir(join(source, 'sub'), { recursive: true });
  const pieces = 6;
  for (let i = 0; i < pieces; i++) await writeFile(join(source, `blob-${i}.bin`), randomBytes(Math.floor((sizeMiB << 20) / pieces)));
  await writeFile(join(source, 'sub', 'note.txt'), 'a small file\n');
  let generation = 0;
  return {
    driver: 'files',
    tools: filesSpec.tools,
    restoresToDisk: true,
    restoreTouchMarker: filesSpec.restoreTouchMarker,
    targetLines: () => ['driver: files', `source: ${JSON.stringify(source)}`],
    async change(rng) {
      generation++;
      await writeFile(join(source, 'sub', 'generation.txt'), `${generation}\n`);
      // Replace one blob now and then, so archives differ in more than a few bytes.
      if (rng.chance(0.5)) await writeFile(join(source, `blob-${rng.int(0, pieces - 1)}.bin`), randomBytes(Math.floor((sizeMiB << 20) / pieces)));
    },
    sourceDigest: () => treeDigest(source),
    restoreArgs: () => ['--to', dest],
    restoredDigest: () => treeDigest(dest),
    workDirs: () => [restoreRoot],
    secrets: () => [],
    async restoreLeftovers() {
      return (await readdir(restoreRoot).catch(() => [] as string[])).filter((n) => n.startsWith('.bk-restore-'));
    },
    async close() {
      await rm(source, { recursive: true, force: true });
    },
  };
}

/** The postgres driver over a database of incompressible blobs on a private server. */
export const postgresSpec: KitSpec = {
  driver: 'postgres',
  tools: { backup: ['pg_dump', 'psql', 'zstd'], restore: ['pg_restore', 'zstd'], prune: [] },
  // psql holds the exported snapshot and counts rows. Once pg_dump has imported the snapshot the
  // dump stays consistent without it, and lost row counts are a warning, not a failed backup.
  helpers: { backup: ['psql'] },
  restoresToDisk: false,
  hasServer: true,
  available: () => hasBinaries(['pg_dump', 'pg_restore', 'psql']) && postgresBinDirs().length > 0,
  start: (work) => postgresKit(work),
};

function hasBinaries(names: string[]): boolean {
  return names.every((n) => {
    try {
      findBinary([n]);
      return true;
    } catch {
      return false;
    }
  });
}

/** Kill the server and everything it started: a crash, not a shutdown (backends die too). */
async function crashTree(pid: number, kill: () => Promise<void>): Promise<void> {
  for (const p of await descendants(pid)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  await kill();
}

const PG_DB = 'app';
const PG_RESTORE_DB = 'app_restore';
/** Rows of 64 KiB, pseudo-random (md5 chains), the same on every server a kit starts. */
const PG_SEED = (rows: number) => `
CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL);
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
INSERT INTO blobs SELECT g, decode(string_agg(md5(g::text || ':' || i), '' ORDER BY i), 'hex') FROM generate_series(1, ${rows}) g, generate_series(1, 4096) i GROUP BY g;
CREATE TABLE generation (n int NOT NULL);
INSERT INTO generation VALUES (0);
CREATE TABLE "odd name; $(x) 'q'" (k text PRIMARY KEY);
INSERT INTO "odd name; $(x) 'q'" VALUES ('ünïcode ☃'), (E'new\\nline');
`;
const PG_DIGEST = `SELECT (SELECT count(*) || ':' || md5(string_agg(md5(data), '' ORDER BY id)) FROM blobs) || '/' || (SELECT n FROM generation) || '/' || (SELECT string_agg(k, ',' ORDER BY k) FROM "odd name; $(x) 'q'")`;

export async function postgresKit(work: string, sizeMiB = 6): Promise<Kit> {
  const rows = Math.max(1, Math.floor((sizeMiB << 20) / 65536));
  let generation = 0;
  const boot = async (): Promise<PostgresServer> => {
    const pg = await startPostgres();
    await pg.createDb(PG_DB);
    await pg.psql(PG_SEED(rows), PG_DB);
    if (generation > 0) await pg.psql(`UPDATE generation SET n = ${generation}`, PG_DB);
    return pg;
  };
  let pg = await boot();
  const digest = async (db: string) => (await pg.psql(PG_DIGEST, db)).trim();
  return {
    driver: 'postgres',
    tools: postgresSpec.tools,
    helpers: postgresSpec.helpers,
    restoresToDisk: false,
    server: {
      crash: () => crashTree(pg.pid, () => pg.kill()),
      async recover() {
        await pg.stop().catch(() => undefined);
        pg = await boot();
      },
    },
    targetLines: () => ['driver: postgres', 'host: 127.0.0.1', `port: ${pg.port}`, 'user: bk', `password: ${JSON.stringify(pg.bkPassword)}`, `database: ${PG_DB}`],
    async change(rng) {
      generation++;
      await pg.psql(`UPDATE generation SET n = ${generation}`, PG_DB);
      if (rng.chance(0.5)) await pg.psql(`UPDATE blobs SET data = decode(md5('${generation}') || substr(encode(data, 'hex'), 33), 'hex') WHERE id = ${rng.int(1, rows)}`, PG_DB);
    },
    sourceDigest: () => digest(PG_DB),
    restoreArgs: () => ['--to', PG_RESTORE_DB],
    restoredDigest: async () => {
      const exists = (await pg.psql(`SELECT count(*) FROM pg_database WHERE datname = '${PG_RESTORE_DB}'`)).trim() === '1';
      return exists ? digest(PG_RESTORE_DB).catch(() => 'unreadable') : 'absent';
    },
    restoreLeftovers: async () => [],
    workDirs: () => [],
    secrets: () => [pg.bkPassword],
    async close() {
      await pg.stop();
    },
  };
}

/** The redis driver: a source server with hex-string values, restored live into a second server. */
export const redisSpec: KitSpec = {
  driver: 'redis',
  // The live restore loads the RDB into a throwaway redis-server, then copies keys over.
  tools: { backup: ['redis-cli', 'zstd'], restore: ['redis-server', 'zstd'], prune: [] },
  restoresToDisk: false,
  restoreTouchMarker: /"msg":"FLUSHALL on/,
  hasServer: true,
  available: () => hasBinaries(['redis-server', 'redis-cli']),
  start: () => redisKit(),
};

const REDIS_SEED = `
local n, size = tonumber(ARGV[1]), tonumber(ARGV[2])
math.randomseed(42)
for i = 1, n do
  local t = {}
  for j = 1, size / 8 do t[j] = string.format('%08x', math.random(0, 2147483646)) end
  redis.call('SET', 'blob:' .. i, table.concat(t))
end
redis.call('SET', 'generation', '0')
redis.call('SET', "odd key; $(x) 'q'\\nünïcode", 'v')
return n`;
const REDIS_DIGEST = `
local keys = redis.call('KEYS', '*')
table.sort(keys)
local parts = {}
for i, k in ipairs(keys) do parts[i] = k .. '=' .. redis.sha1hex(redis.call('GET', k)) end
return #keys .. ':' .. redis.sha1hex(table.concat(parts, ','))`;

export async function redisKit(sizeMiB = 6): Promise<Kit> {
  const password = `pw ${randomBytes(6).toString('hex')} ;$(x)'"`;
  const size = 65536;
  const rows = Math.max(1, Math.floor((sizeMiB << 20) / size));
  let generation = 0;
  const bootSource = async (): Promise<RedisServer> => {
    const r = await startRedis({ password });
    await r.cli(['CONFIG', 'SET', 'repl-diskless-sync-delay', '0']);
    const seeded = await r.cli(['EVAL', REDIS_SEED, '0', String(rows), String(size)]);
    if (seeded.trim() !== String(rows)) throw new Error(`seeding redis failed: ${seeded}`);
    if (generation > 0) await r.cli(['SET', 'generation', String(generation)]);
    return r;
  };
  let src = await bootSource();
  let dst = await startRedis();
  const digest = async (r: RedisServer) => (await r.cli(['EVAL', REDIS_DIGEST, '0'])).trim();
  let crashed: 'src' | 'dst' | undefined;
  return {
    driver: 'redis',
    tools: redisSpec.tools,
    restoresToDisk: false,
    restoreTouchMarker: redisSpec.restoreTouchMarker,
    server: {
      async crash(phase) {
        crashed = phase === 'restore' ? 'dst' : 'src';
        await (crashed === 'dst' ? dst : src).kill();
      },
      async recover() {
        if (crashed === 'dst') {
          await dst.stop().catch(() => undefined);
          dst = await startRedis();
        } else {
          await src.stop().catch(() => undefined);
          src = await bootSource();
        }
        crashed = undefined;
      },
    },
    targetLines: () => ['driver: redis', 'host: 127.0.0.1', `port: ${src.port}`, `password: ${JSON.stringify(password)}`],
    async change(rng) {
      generation++;
      await src.cli(['SET', 'generation', String(generation)]);
      if (rng.chance(0.5)) await src.cli(['SETRANGE', `blob:${rng.int(1, rows)}`, '0', `g${generation}-`]);
    },
    sourceDigest: () => digest(src),
    restoreArgs: () => ['--to', `redis://127.0.0.1:${dst.port}`],
    restoredDigest: () => digest(dst),
    restoreLeftovers: async () => [],
    workDirs: () => [],
    secrets: () => [password],
    async close() {
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
}

/** The mysql driver on a private MariaDB server: pseudo-random blobs, restored into another database. */
export const mysqlSpec: KitSpec = {
  driver: 'mysql',
  tools: { backup: ['mariadb-dump', 'mysqldump', 'zstd'], restore: ['mariadb', 'mysql', 'zstd'], prune: [] },
  restoresToDisk: false,
  // The client applies statement after statement; the destination changes once it starts.
  restoreTouchMarker: /"msg":"applying the dump"/,
  hasServer: true,
  available: () => hasBinaries(['mariadbd']) || hasBinaries(['mysqld']),
  start: () => mysqlKit(),
};

const MY_DB = 'app';
const MY_RESTORE_DB = 'app_restore';
const MY_DIGEST = (db: string) =>
  `SELECT CONCAT((SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(MD5(data) ORDER BY id SEPARATOR ''))) FROM \`${db}\`.blobs), '/', (SELECT n FROM \`${db}\`.generation), '/', (SELECT GROUP_CONCAT(k ORDER BY k SEPARATOR ',') FROM \`${db}\`.\`odd name; $(x) 'q'\`))`;

/** Rows of `bytes` pseudo-random bytes, the same on every server (sha256 chains), as SQL. */
function mysqlSeed(rows: number, bytes: number): string {
  const out = [
    'CREATE TABLE blobs (id INT PRIMARY KEY, data LONGBLOB NOT NULL);',
    'CREATE TABLE generation (n INT NOT NULL);',
    'INSERT INTO generation VALUES (0);',
    "CREATE TABLE `odd name; $(x) 'q'` (k VARCHAR(64) PRIMARY KEY) DEFAULT CHARSET=utf8mb4;",
    "INSERT INTO `odd name; $(x) 'q'` VALUES ('ünïcode ☃'), ('new\\nline');",
  ];
  for (let g = 1; g <= rows; g++) {
    const parts: Buffer[] = [];
    for (let i = 0; i * 32 < bytes; i++) parts.push(createHash('sha256').update(`${g}:${i}`).digest());
    out.push(`INSERT INTO blobs VALUES (${g}, 0x${Buffer.concat(parts).subarray(0, bytes).toString('hex')});`);
  }
  return out.join('\n');
}

export async function mysqlKit(sizeMiB = 6): Promise<Kit> {
  const password = `pw ${randomBytes(6).toString('hex')} ;$(x)'"`;
  const bytes = 128 << 10;
  const rows = Math.max(1, Math.floor((sizeMiB << 20) / bytes));
  const seed = mysqlSeed(rows, bytes);
  let generation = 0;
  const boot = async (): Promise<MariadbServer> => {
    const db = await startMariadb({ bkPassword: password });
    await db.query(`CREATE DATABASE ${MY_DB}`);
    await db.query(seed, MY_DB);
    if (generation > 0) await db.query(`UPDATE generation SET n = ${generation}`, MY_DB);
    return db;
  };
  let db = await boot();
  const digest = async (name: string) => (await db.query(MY_DIGEST(name))).trim();
  return {
    driver: 'mysql',
    tools: mysqlSpec.tools,
    restoresToDisk: false,
    restoreTouchMarker: mysqlSpec.restoreTouchMarker,
    server: {
      crash: () => db.kill(),
      async recover() {
        await db.stop().catch(() => undefined);
        db = await boot();
      },
    },
    targetLines: () => ['driver: mysql', 'host: 127.0.0.1', `port: ${db.port}`, 'user: bk', `password: ${JSON.stringify(password)}`, `database: ${MY_DB}`],
    async change(rng) {
      generation++;
      await db.query(`UPDATE generation SET n = ${generation}`, MY_DB);
      if (rng.chance(0.5)) await db.query(`UPDATE blobs SET data = CONCAT(UNHEX(MD5('${generation}')), SUBSTRING(data, 17)) WHERE id = ${rng.int(1, rows)}`, MY_DB);
    },
    sourceDigest: () => digest(MY_DB),
    restoreArgs: () => ['--to', MY_RESTORE_DB],
    restoredDigest: async () => {
      const exists = (await db.query(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '${MY_RESTORE_DB}'`)).trim() === '1';
      return exists ? digest(MY_RESTORE_DB).catch(() => 'unreadable') : 'absent';
    },
    restoreLeftovers: async () => [],
    workDirs: () => ['/dev/shm'],
    secrets: () => [password],
    async close() {
      await db.stop();
    },
  };
}
