/**
 * The shape of backup.config.yaml. Common target settings live here; driver and storage options
 * live with their drivers and storages and are checked against the registry in config/resolve.ts.
 */
import { z } from 'zod';
import { COMPRESSIONS } from '../codecs/compression.js';
import { isValidTimeZone } from '../time/zoned.js';
import { durationString, retentionConfigSchema } from '../retention/config.js';
import { cronProblem } from '../time/cron.js';
import { durationSchema } from '../time/duration.js';
import { hooksSchema } from '../hooks/schema.js';
import { notificationSchema } from '../notify/schema.js';
import { encryptionSchema } from './encryption.js';
import { verifySchema } from './verify.js';

/** Target and storage names become object-key prefixes: nothing that could escape one. */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const nameSchema = z
  .string()
  .regex(NAME, 'use letters, digits, ".", "_" and "-" (at most 64, starting with a letter or digit)');

const timeZone = z.string().refine(isValidTimeZone, 'not a known IANA time zone (e.g. UTC, Europe/Berlin)');

const cronExpression = z.string().superRefine((v, ctx) => {
  const problem = cronProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: `${problem}; write a cron expression like "0 2 * * *" (02:00 daily) or "*/30 * * * * *" (seconds first)` });
});

/** Settings a target has that do not depend on its driver; `defaults:` holds the same keys. */
export const commonTargetShape = {
  compression: z.enum(COMPRESSIONS).optional(),
  compression_level: z.number().int().min(1).max(19).optional(),
  /** Names of storages to write to; default: every configured storage. */
  storages: z.array(nameSchema).min(1).optional(),
  tags: z.array(z.string().min(1)).optional(),
  /** Zone for --at dates and retention buckets; default: the system's. */
  timezone: timeZone.optional(),
  /** restic-style retention policy (docs/retention.md); replaces the one in `defaults:` whole. */
  retention: retentionConfigSchema.optional(),
  /** Per-storage policies for this target: `{offsite: {keep_monthly: 24}}`; beat every other. */
  retention_by_storage: z.record(nameSchema, retentionConfigSchema).optional(),
  /** Prune after every successful backup (default true). */
  prune: z.boolean().optional(),
  /** Orphan archives and temp files younger than this are never removed (default 24h). */
  garbage_grace: durationString.optional(),
  /** When `bk schedule` (and `bk cron`) run the target: a cron expression, in `timezone`. */
  schedule: cronExpression.optional(),
  /** Random delay before a scheduled run, so many hosts do not start at once. */
  jitter: durationSchema.optional(),
  /** A run still going after this long is stopped and fails. */
  timeout: durationSchema.optional(),
  /** `bk status` calls the target overdue when its last backup is older than this. */
  max_age: durationSchema.optional(),
  /** Commands before and after each backup. */
  hooks: hooksSchema.optional(),
  /** age encryption: recipients or passphrase, and the identity for restore (config/encryption.ts). */
  encryption: encryptionSchema.optional(),
  /** Scheduled verification and restore drills (config/verify.ts). */
  verify: verifySchema.optional(),
};

export const defaultsSchema = z.object(commonTargetShape).strict();

export const configFileSchema = z
  .object({
    version: z.literal(1).optional(),
    defaults: defaultsSchema.optional(),
    storages: z.record(nameSchema, z.looseObject({ type: z.string() })).optional(),
    targets: z.record(nameSchema, z.looseObject({ driver: z.string() })),
    /** Where to report failed (and optionally successful) runs. */
    notifications: z.array(notificationSchema).optional(),
    /** Prometheus metrics written for node_exporter's textfile collector after each run. */
    metrics: z.object({ textfile: z.string().min(1) }).strict().optional(),
  })
  .strict();

export type ConfigFile = z.infer<typeof configFileSchema>;
