/**
 * Retention settings as written in backup.config.yaml and on the command line, and how they become
 * a RetentionPolicy. Keys and values follow restic `forget`: counts are non-negative integers or
 * `unlimited`; durations use restic's `1y6m2d3h` syntax.
 */
import { z } from 'zod';
import { parseDuration, type CalendarDuration } from './duration.js';
import { UNLIMITED, type RetentionPolicy } from './policy.js';

const count = z.union([z.number().int().min(0, 'use a count ≥ 0 or unlimited'), z.literal('unlimited')]);

/** A restic duration string, checked at config load. */
export const durationString = z.string().superRefine((s, ctx) => {
  const d = parseDuration(s);
  if (typeof d === 'string') ctx.addIssue({ code: 'custom', message: d });
});

export const retentionConfigSchema = z
  .object({
    keep_last: count.optional(),
    keep_hourly: count.optional(),
    keep_daily: count.optional(),
    keep_weekly: count.optional(),
    keep_monthly: count.optional(),
    keep_yearly: count.optional(),
    keep_within: durationString.optional(),
    keep_within_hourly: durationString.optional(),
    keep_within_daily: durationString.optional(),
    keep_within_weekly: durationString.optional(),
    keep_within_monthly: durationString.optional(),
    keep_within_yearly: durationString.optional(),
  })
  .strict();

export type RetentionConfig = z.infer<typeof retentionConfigSchema>;

export const RETENTION_KEYS = Object.keys(retentionConfigSchema.shape) as (keyof RetentionConfig)[];

const toCount = (v: number | 'unlimited' | undefined): number | undefined => (v === 'unlimited' ? UNLIMITED : v);
const toDuration = (v: string | undefined): CalendarDuration | undefined => {
  if (v === undefined) return undefined;
  const d = parseDuration(v);
  if (typeof d === 'string') throw new Error(d); // unreachable after schema validation
  return d;
};

export function policyFromConfig(c: RetentionConfig): RetentionPolicy {
  return {
    last: toCount(c.keep_last),
    hourly: toCount(c.keep_hourly),
    daily: toCount(c.keep_daily),
    weekly: toCount(c.keep_weekly),
    monthly: toCount(c.keep_monthly),
    yearly: toCount(c.keep_yearly),
    within: toDuration(c.keep_within),
    withinHourly: toDuration(c.keep_within_hourly),
    withinDaily: toDuration(c.keep_within_daily),
    withinWeekly: toDuration(c.keep_within_weekly),
    withinMonthly: toDuration(c.keep_within_monthly),
    withinYearly: toDuration(c.keep_within_yearly),
  };
}

/** Config keys for policy, in their YAML form, dropping unset ones (for JSON output). */
export function policyToConfig(c: RetentionConfig): RetentionConfig {
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as RetentionConfig;
}
