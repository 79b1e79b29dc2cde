/**
 * What every command works with: the resolved config (or an ad-hoc one built from flags), the
 * logger, the clock, the abort signal, and how to build storages and drivers for a target.
 * Commands get a Context; the engine gets only the pieces it needs.
 */
import { resolve } from 'node:path';
import { BkError } from '../errors.js';
import { findConfigFile, loadConfigFile } from '../config/load.js';
import { resolveTarget, type ResolvedConfig, type StorageConfig, type TargetConfig } from '../config/resolve.js';
import { NAME } from '../config/schema.js';
import { drivers, type AdHocFlags } from '../drivers/registry.js';
import type { Driver } from '../drivers/driver.js';
import { storageOptionsFromRepo, storages as storageTypes } from '../storage/registry.js';
import type { Storage } from '../storage/storage.js';
import { createLogger, type LogFormat, type Logger, type LogLevel } from '../log.js';
import { systemTimeZone } from '../time/zoned.js';
import { BK_VERSION } from '../version.js';

export interface GlobalOptions {
  config?: string;
  repo?: string;
  json?: boolean;
  quiet?: boolean;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
}

export interface Context {
  env: NodeJS.ProcessEnv;
  cwd: string;
  config: ResolvedConfig;
  /** Where the storages come from: a `--repo`/`BK_REPO` value, or the config. */
  repo?: string;
  logger: Logger;
  clock: () => Date;
  signal: AbortSignal;
  /** stdout and stdin are a terminal: spinners and prompts allowed. */
  interactive: boolean;
  json: boolean;
  quiet: boolean;
  bkVersion: string;
}

export const DEFAULT_REPO = './backups';
const REPO_STORAGE = 'repo';

export interface ContextInputs {
  options: GlobalOptions;
  env: NodeJS.ProcessEnv;
  cwd: string;
  signal: AbortSignal;
  interactive: boolean;
  stderrIsTTY: boolean;
}

export async function createContext(inp: ContextInputs): Promise<Context> {
  const { options, env } = inp;
  const level: LogLevel = options.logLevel ?? (env.BK_LOG_LEVEL as LogLevel | undefined) ?? (options.quiet ? 'warn' : inp.stderrIsTTY ? 'info' : 'warn');
  const format: LogFormat = options.logFormat ?? (env.BK_LOG_FORMAT as LogFormat | undefined) ?? (inp.stderrIsTTY ? 'pretty' : 'json');
  const logger = createLogger({ level, format });
  const file = await findConfigFile(options.config, env, inp.cwd);
  const config: ResolvedConfig = file
    ? await loadConfigFile(file, env, logger)
    : { targets: {}, storages: {}, timezone: env.TZ && env.TZ !== '' ? env.TZ : systemTimeZone() };
  const repo = options.repo ?? env.BK_REPO ?? (file && Object.keys(config.storages).length > 0 ? undefined : DEFAULT_REPO);
  return {
    env,
    cwd: inp.cwd,
    config,
    repo,
    logger,
    clock: () => new Date(),
    signal: inp.signal,
    interactive: inp.interactive && !options.json,
    json: options.json ?? false,
    quiet: options.quiet ?? false,
    bkVersion: BK_VERSION,
  };
}

/** The storage configs a target writes to (or that `list`/`restore` read from). */
export function storageConfigsFor(ctx: Context, target?: TargetConfig): StorageConfig[] {
  if (ctx.repo !== undefined) {
    const options = storageOptionsFromRepo(ctx.repo.startsWith('/') || /^[a-z][a-z0-9+.-]*:\/\//i.test(ctx.repo) ? ctx.repo : resolve(ctx.cwd, ctx.repo), ctx.env);
    if (!options) throw new BkError('USAGE', `cannot use --repo ${ctx.repo}`, { hint: 'give a directory or s3://bucket/prefix' });
    return [{ name: REPO_STORAGE, type: String(options.type), options }];
  }
  const names = target ? target.storages : Object.keys(ctx.config.storages);
  return names.map((n) => ctx.config.storages[n]!);
}

export function createStorage(cfg: StorageConfig, ctx?: Pick<Context, 'env' | 'logger'>): Storage {
  const entry = storageTypes[cfg.type];
  if (!entry) throw new BkError('CONFIG', `storages.${cfg.name}.type: unknown storage type "${cfg.type}"`, { step: 'config' });
  return entry.create(cfg.name, cfg.options, ctx ? { env: ctx.env, logger: ctx.logger } : undefined);
}

export function storagesFor(ctx: Context, target?: TargetConfig): Storage[] {
  return storageConfigsFor(ctx, target).map((cfg) => createStorage(cfg, ctx));
}

/**
 * A configured target, or — when the name is a driver's and no such target is configured — an
 * ad-hoc one built from flags (`bk backup files --source DIR`).
 */
export function targetFor(ctx: Context, name: string, flags: AdHocFlags = {}): TargetConfig {
  if (!NAME.test(name)) throw new BkError('USAGE', `${JSON.stringify(name)} is not a target name`, { hint: 'target names use letters, digits, ".", "_" and "-"' });
  const configured = ctx.config.targets[name];
  if (configured) return configured;
  const entry = drivers[name];
  if (!entry) {
    const known = Object.keys(ctx.config.targets);
    throw new BkError('USAGE', `no target named "${name}"`, {
      hint: known.length
        ? `configured targets: ${known.join(', ')}`
        : `use a driver name for ad-hoc use (${Object.keys(drivers).join(', ')}) or add the target to backup.config.yaml (bk init)`,
    });
  }
  const options = entry.adHoc(flags, ctx.env);
  if (typeof options === 'string') throw new BkError('USAGE', options, { target: name });
  return resolveTarget(name, options as Record<string, unknown> & { driver: string }, { timezone: ctx.config.timezone }, {}, undefined, true);
}

export function driverFor(target: TargetConfig): Driver {
  return drivers[target.driver]!.create(target.name, target.options);
}

/** Every configured target name, in config order. */
export const configuredTargets = (ctx: Context): string[] => Object.keys(ctx.config.targets);
