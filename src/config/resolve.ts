/**
 * Turns a parsed config file (or ad-hoc flags) into resolved targets and storages: defaults
 * applied, driver and storage options checked against their own schemas, every error naming its
 * key path.
 */
import { dirname } from 'node:path';
import { z } from 'zod';
import { BkError } from '../errors.js';
import type { Compression } from '../codecs/compression.js';
import { drivers } from '../drivers/registry.js';
import { storages as storageTypes } from '../storage/registry.js';
import { systemTimeZone } from '../time/zoned.js';
import { commonTargetShape, configFileSchema, type ConfigFile } from './schema.js';
import { retentionConfigSchema, type RetentionConfig } from '../retention/config.js';
import type { Hooks } from '../hooks/schema.js';
import type { NotificationConfig } from '../notify/schema.js';
import { resolveEncryption, type EncryptionConfig } from './encryption.js';
import { resolveVerify, type VerifyConfig } from './verify.js';

export interface TargetConfig {
  name: string;
  driver: string;
  /** Driver options, validated by the driver's schema. */
  options: Record<string, unknown>;
  compression: Compression;
  compressionLevel?: number;
  storages: string[];
  tags: string[];
  timezone: string;
  /** Retention policy (target's, else defaults') and the config path it came from. */
  retention?: { policy: RetentionConfig; source: string };
  retentionByStorage: Record<string, RetentionConfig>;
  /** Prune after every successful backup. */
  prune: boolean;
  /** restic duration; orphans younger than this are left alone. */
  garbageGrace?: string;
  /** Cron expression for `bk schedule` / `bk cron`. */
  schedule?: string;
  jitterMs?: number;
  timeoutMs?: number;
  maxAgeMs?: number;
  hooks?: Hooks;
  /** Absent: backups of this target are not encrypted. */
  encryption?: EncryptionConfig;
  verify?: VerifyConfig;
}

export interface StorageConfig {
  name: string;
  type: string;
  options: Record<string, unknown>;
  /** `storages.<name>.retention`: the policy of every target on this storage. */
  retention?: RetentionConfig;
}

export interface ResolvedConfig {
  /** The file it came from; undefined for ad-hoc use. */
  path?: string;
  targets: Record<string, TargetConfig>;
  storages: Record<string, StorageConfig>;
  timezone: string;
  notifications?: NotificationConfig[];
  metrics?: { textfile?: string };
}

export function configError(path: string, problem: string, hint?: string): BkError {
  return new BkError('CONFIG', `${path}: ${problem}`, { step: 'config', hint });
}

/** Up to this many problems are named in one message; a config with more has bigger trouble. */
const MAX_ISSUES = 5;

export function zodIssueToError(error: z.ZodError, prefix: string, file?: string): BkError {
  const problems = error.issues.slice(0, MAX_ISSUES).map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    let problem = issue.message;
    if (issue.code === 'unrecognized_keys') problem = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    // A record key (target or storage name) that breaks the name rule: zod only says "Invalid key in record".
    if (issue.code === 'invalid_key') problem = `invalid name ${JSON.stringify(String(issue.path.at(-1)))}: ${issue.issues[0]?.message ?? problem}`;
    if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) problem = `missing (expected ${issue.expected})`;
    return `${path || '(root)'}: ${problem}`;
  });
  // Every problem, not just the first: a misspelt key shows up as "unknown key" and "missing" at once.
  const more = error.issues.length > MAX_ISSUES ? `; and ${error.issues.length - MAX_ISSUES} more` : '';
  return new BkError('CONFIG', `${file ? `${file}: ` : ''}${problems.join('; ')}${more}`, { step: 'config' });
}

export function resolveConfig(raw: unknown, file?: string): ResolvedConfig {
  const parsed = configFileSchema.safeParse(raw ?? {});
  if (!parsed.success) throw zodIssueToError(parsed.error, '', file);
  return resolveParsed(parsed.data, file);
}

function resolveParsed(cfg: ConfigFile, file?: string): ResolvedConfig {
  const where = (p: string) => (file ? `${file}: ${p}` : p);
  const storages: Record<string, StorageConfig> = {};
  for (const [name, options] of Object.entries(cfg.storages ?? {})) {
    const entry = storageTypes[options.type];
    if (!entry) {
      throw configError(where(`storages.${name}.type`), `unknown storage type "${options.type}"`, `use one of: ${Object.keys(storageTypes).join(', ')}`);
    }
    // `retention` is bk's, not the storage type's: checked here, passed on without it.
    const { retention: rawRetention, ...storageOptions } = options;
    const res = entry.schema.strict().safeParse(storageOptions);
    if (!res.success) throw zodIssueToError(res.error, `storages.${name}`, file);
    const retention = rawRetention === undefined ? undefined : retentionConfigSchema.safeParse(rawRetention);
    if (retention && !retention.success) throw zodIssueToError(retention.error, `storages.${name}.retention`, file);
    storages[name] = { name, type: options.type, options: relativeTo(entry.resolvePaths, res.data as Record<string, unknown>, file), ...(retention ? { retention: retention.data } : {}) };
  }
  const defaults = cfg.defaults ?? {};
  const timezone = defaults.timezone ?? systemTimeZone();
  const targets: Record<string, TargetConfig> = {};
  for (const [name, rawTarget] of Object.entries(cfg.targets)) {
    targets[name] = resolveTarget(name, rawTarget, defaults, storages, file);
  }
  return { path: file, targets, storages, timezone, notifications: cfg.notifications ?? [], metrics: cfg.metrics };
}

const commonKeys = new Set(Object.keys(commonTargetShape));

export function resolveTarget(
  name: string,
  raw: Record<string, unknown> & { driver: string },
  defaults: NonNullable<ConfigFile['defaults']>,
  storages: Record<string, StorageConfig>,
  file?: string,
  /** Ad hoc (flags, no config): storages come from --repo, not from names. */
  adHoc = false,
): TargetConfig {
  const at = `targets.${name}`;
  const entry = drivers[raw.driver];
  if (!entry) {
    throw configError(`${file ? `${file}: ` : ''}${at}.driver`, `unknown driver "${raw.driver}"`, `use one of: ${Object.keys(drivers).join(', ')}`);
  }
  const common = z.object(commonTargetShape).safeParse(Object.fromEntries(Object.entries(raw).filter(([k]) => commonKeys.has(k))));
  if (!common.success) throw zodIssueToError(common.error, at, file);
  const driverRaw = Object.fromEntries(Object.entries(raw).filter(([k]) => !commonKeys.has(k)));
  const options = entry.schema.strict().safeParse(driverRaw);
  if (!options.success) throw zodIssueToError(options.error, at, file);

  const c = common.data;
  const storageNames = adHoc ? [] : (c.storages ?? defaults.storages ?? Object.keys(storages));
  for (const [i, s] of storageNames.entries()) {
    if (!storages[s]) {
      const known = Object.keys(storages);
      throw configError(
        `${file ? `${file}: ` : ''}${c.storages ? `${at}.storages[${i}]` : 'defaults.storages'}`,
        `no storage named "${s}"`,
        known.length ? `configured storages: ${known.join(', ')}` : 'add it under storages:',
      );
    }
  }
  const retentionByStorage = c.retention_by_storage ?? defaults.retention_by_storage ?? {};
  for (const s of Object.keys(retentionByStorage)) {
    if (!adHoc && !storages[s]) {
      throw configError(`${file ? `${file}: ` : ''}${c.retention_by_storage ? at : 'defaults'}.retention_by_storage.${s}`, `no storage named "${s}"`, `configured storages: ${Object.keys(storages).join(', ')}`);
    }
  }
  const retention = c.retention
    ? { policy: c.retention, source: `${at}.retention` }
    : defaults.retention
      ? { policy: defaults.retention, source: 'defaults.retention' }
      : undefined;
  return {
    name,
    driver: raw.driver,
    options: relativeTo(entry.resolvePaths, options.data as Record<string, unknown>, file),
    compression: c.compression ?? defaults.compression ?? 'zstd',
    compressionLevel: c.compression_level ?? defaults.compression_level,
    storages: storageNames,
    tags: c.tags ?? defaults.tags ?? [],
    timezone: c.timezone ?? defaults.timezone ?? systemTimeZone(),
    ...(retention ? { retention } : {}),
    retentionByStorage,
    prune: c.prune ?? defaults.prune ?? true,
    garbageGrace: c.garbage_grace ?? defaults.garbage_grace,
    ...operationsOf(c, defaults),
    ...optional('encryption', resolveEncryption(c.encryption, defaults.encryption)),
    ...optional('verify', resolveVerify(c.verify, defaults.verify)),
  };
}

const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

/** Relative paths in a config file mean relative to that file, not to wherever bk runs from. */
function relativeTo(
  resolvePaths: ((o: Record<string, unknown>, baseDir: string) => Record<string, unknown>) | undefined,
  options: Record<string, unknown>,
  file: string | undefined,
): Record<string, unknown> {
  return resolvePaths && file ? resolvePaths(options, dirname(file)) : options;
}

/** The scheduling, timeout and hook settings of a target, each falling back to `defaults:`. */
function operationsOf(c: NonNullable<ConfigFile['defaults']>, d: NonNullable<ConfigFile['defaults']>): Partial<TargetConfig> {
  const hooks = c.hooks ?? d.hooks;
  const out: Partial<TargetConfig> = {};
  const schedule = c.schedule ?? d.schedule;
  if (schedule !== undefined) out.schedule = schedule;
  const jitter = c.jitter ?? d.jitter;
  if (jitter !== undefined) out.jitterMs = jitter;
  const timeout = c.timeout ?? d.timeout;
  if (timeout !== undefined) out.timeoutMs = timeout;
  const maxAge = c.max_age ?? d.max_age;
  if (maxAge !== undefined) out.maxAgeMs = maxAge;
  if (hooks) out.hooks = { before: hooks.before ?? [], after: hooks.after ?? [] };
  return out;
}
