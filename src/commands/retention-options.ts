/**
 * The `--keep-*` options on commander commands. Kept apart from their parsing (retention-flags.ts)
 * so declaring them loads no schema library: `bk --help` stays fast.
 */
import { Option, type Command } from 'commander';

export const COUNT_FLAGS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export const DURATION_FLAGS = ['within', 'within-hourly', 'within-daily', 'within-weekly', 'within-monthly', 'within-yearly'] as const;


const PERIOD = { hourly: 'hour', daily: 'day', weekly: 'ISO week', monthly: 'month', yearly: 'year' } as const;

export function addRetentionOptions(cmd: Command): Command {
  cmd.addOption(new Option('--keep-last <n>', 'keep the n newest backups (n or unlimited)'));
  for (const f of COUNT_FLAGS.slice(1) as (keyof typeof PERIOD)[]) {
    cmd.addOption(new Option(`--keep-${f} <n>`, `keep the newest backup of each of the last n ${PERIOD[f]}s that have one (n or unlimited)`));
  }
  cmd.addOption(new Option('--keep-within <duration>', 'keep every backup within a duration (1y6m2d3h) of the newest'));
  for (const f of COUNT_FLAGS.slice(1) as (keyof typeof PERIOD)[]) {
    cmd.addOption(new Option(`--keep-within-${f} <duration>`, `keep the newest backup of each ${PERIOD[f]} within a duration of the newest`));
  }
  return cmd;
}

