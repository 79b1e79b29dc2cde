/**
 * The drivers bk knows, listed explicitly (no registration by import side effect). Each entry holds
 * the zod schema of its target options, a factory, and how ad-hoc flags become options.
 */
import { resolve } from 'node:path';
import type { z } from 'zod';
import type { Driver } from './driver.js';
import { FilesDriver, filesOptionsSchema, isRemotePath } from './files.js';
import { isPostgresUrl } from './postgres-conn.js';
import { PostgresDriver, postgresOptionsSchema } from './postgres.js';
import { RedisDriver, redisAdHoc, redisOptionsSchema } from './redis.js';
import { mysqlAdHoc, MysqlDriver, mysqlOptionsSchemaFor } from './mysql.js';

/** Flags of `bk backup <driver>` without a config file. */
export interface AdHocFlags {
  source?: string;
  exclude?: string[];
}

export interface DriverEntry {
  /** Options schema; must have `driver: z.literal(<name>)`. */
  schema: z.ZodObject;
  create(target: string, options: Record<string, unknown>): Driver;
  /** Target options from flags for ad-hoc use, or a message saying what is missing. */
  adHoc(flags: AdHocFlags, env: NodeJS.ProcessEnv): Record<string, unknown> | string;
  /** Options with relative paths made absolute against the config file's directory. */
  resolvePaths?(options: Record<string, unknown>, baseDir: string): Record<string, unknown>;
  /** One-line example for `bk init` and messages. */
  summary: string;
}

/** `postgresql` is an alias of `postgres`; a driver records the name its target used. */
function postgresEntry(name: 'postgres' | 'postgresql'): DriverEntry {
  return {
    schema: postgresOptionsSchema,
    create: (target, options) => new PostgresDriver(target, postgresOptionsSchema.parse(options)),
    // Without flags, libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD) decides.
    adHoc: (flags) =>
      flags.source === undefined
        ? { driver: name }
        : isPostgresUrl(flags.source)
          ? { driver: name, url: flags.source }
          : { driver: name, database: flags.source },
    summary: 'one PostgreSQL database (pg_dump), or the server\'s roles (globals: true)',
  };
}

export const drivers: Record<string, DriverEntry> = {
  files: {
    schema: filesOptionsSchema,
    create: (target, options) => new FilesDriver(target, filesOptionsSchema.parse(options)),
    adHoc: (flags) =>
      flags.source
        ? { driver: 'files', source: flags.source, exclude: flags.exclude ?? [] }
        : 'bk backup files needs --source DIR (or a target in backup.config.yaml)',
    resolvePaths: (options, baseDir) =>
      isRemotePath(String(options.source)) ? options : { ...options, source: resolve(baseDir, String(options.source)) },
    summary: 'a directory, local or user@host:/path via rsync',
  },
  postgres: postgresEntry('postgres'),
  postgresql: postgresEntry('postgresql'),
  redis: {
    schema: redisOptionsSchema,
    create: (target, options) => new RedisDriver(target, redisOptionsSchema.parse(options)),
    adHoc: redisAdHoc,
    summary: 'a Redis server: RDB snapshot over the replication protocol (or BGSAVE + dump.rdb); default 127.0.0.1:6379',
  },
  mysql: {
    schema: mysqlOptionsSchemaFor.mysql,
    create: (target, options) => new MysqlDriver(target, mysqlOptionsSchemaFor.mysql.parse(options)),
    adHoc: mysqlAdHoc('mysql'),
    summary: 'MySQL or MariaDB: one database, a list, or all, with mariadb-dump/mysqldump',
  },
  /** The same driver under its other name. */
  mariadb: {
    schema: mysqlOptionsSchemaFor.mariadb,
    create: (target, options) => new MysqlDriver(target, mysqlOptionsSchemaFor.mariadb.parse(options)),
    adHoc: mysqlAdHoc('mariadb'),
    summary: 'alias of mysql',
  },
};

export const driverNames = (): string[] => Object.keys(drivers);
