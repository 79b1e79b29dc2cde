/**
 * The `verify:` key of a target (or of `defaults:`): when the daemon checks the target's latest
 * backup, and whether that check is a restore drill (restore into a throwaway destination and
 * compare it with what the manifest recorded) or an integrity read.
 */
import cron from 'node-cron';
import { z } from 'zod';

export const verifySchema = z
  .object({
    /** Cron expression (in the target's time zone) for the daemon's verify runs. */
    schedule: z
      .string()
      .refine((v) => cron.validate(v), 'not a cron expression; write one like "0 4 * * 0" (Sundays 04:00)')
      .optional(),
    /** true: each run is a restore drill; false (default): an integrity read of the archive. */
    restore_test: z.boolean().optional(),
    /** Database drivers: the server to create the throwaway database on (default: the source's). */
    url: z.string().min(1).optional(),
  })
  .strict();

export type VerifySetting = z.infer<typeof verifySchema>;

export interface VerifyConfig {
  schedule?: string;
  restoreTest: boolean;
  url?: string;
}

/** The target's keys over the default's, key by key. */
export function resolveVerify(target: VerifySetting | undefined, defaults: VerifySetting | undefined): VerifyConfig | undefined {
  if (!target && !defaults) return undefined;
  const schedule = target?.schedule ?? defaults?.schedule;
  const url = target?.url ?? defaults?.url;
  return {
    ...(schedule !== undefined ? { schedule } : {}),
    restoreTest: target?.restore_test ?? defaults?.restore_test ?? false,
    ...(url !== undefined ? { url } : {}),
  };
}
