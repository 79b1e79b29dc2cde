/**
 * `bk cron [--systemd [--daemon]] [--supervisord]`: ready-to-install entries for the configured
 * schedules — crontab lines, systemd service+timer units (or a `bk schedule` service), or a
 * supervisord program — with absolute paths to node, bk and the config. `--out DIR` writes the files.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { configuredTargets, type Context } from '../app/context.js';
import { BkError, ExitCode } from '../errors.js';
import { INSTALLATION } from '../install-root.js';
import { render } from '../output/render.js';
import { crontab, supervisord, systemdDaemon, systemdUnits, type Entries, type Invocation } from '../ops/service-entries.js';
import { DURATION_HINT, parseDuration } from '../time/duration.js';
import { systemTimeZone } from '../time/zoned.js';
import { DEFAULT_GRACE } from './schedule.js';

export interface CronFlags {
  systemd?: boolean;
  supervisord?: boolean;
  daemon?: boolean;
  grace?: string;
  listen?: string;
  logFile?: string;
  out?: string;
}

export async function cronCommand(ctx: Context, flags: CronFlags): Promise<number> {
  if (flags.systemd && flags.supervisord) throw new BkError('USAGE', 'use one of --systemd and --supervisord');
  if (flags.daemon && !flags.systemd) throw new BkError('USAGE', '--daemon goes with --systemd (supervisord always runs bk schedule)');
  if (!ctx.config.path) {
    throw new BkError('USAGE', 'bk cron needs a config file with scheduled targets', { hint: 'pass --config FILE, with schedule: "0 2 * * *" on a target' });
  }
  const graceMs = parseDuration(flags.grace ?? DEFAULT_GRACE);
  if (graceMs === undefined) throw new BkError('USAGE', `--grace ${flags.grace}: not ${DURATION_HINT}`);
  const targets = configuredTargets(ctx)
    .map((n) => ctx.config.targets[n]!)
    .filter((t) => t.schedule !== undefined || t.verify?.schedule !== undefined);
  if (targets.length === 0) {
    throw new BkError('USAGE', `no target in ${ctx.config.path} has a schedule`, {
      hint: 'add schedule: "0 2 * * *" (cron expression) to a target or to defaults:, or verify: { schedule: "0 4 * * 0" }',
    });
  }
  const inv: Invocation = {
    node: process.execPath,
    bk: bkScript(),
    config: resolve(ctx.config.path),
    ...(ctx.repo !== undefined && !/^[a-z][a-z0-9+.-]*:\/\//i.test(ctx.repo) ? { repo: resolve(ctx.cwd, ctx.repo) } : ctx.repo !== undefined ? { repo: ctx.repo } : {}),
  };
  const daemon = { graceMs, listen: flags.listen, logFile: flags.logFile ?? (flags.supervisord ? '/var/log/bk/schedule.log' : '/var/log/bk.log') };
  let entries: Entries;
  if (flags.supervisord) entries = supervisord(inv, daemon);
  else if (flags.systemd) entries = flags.daemon ? systemdDaemon(inv, daemon) : systemdUnits(inv, targets, daemon);
  else entries = crontab(inv, targets, { logFile: daemon.logFile, systemTimeZone: systemTimeZone() });

  for (const n of entries.notes) ctx.logger.warn(n, { step: 'cron' });
  if (flags.out) {
    const dir = resolve(ctx.cwd, flags.out);
    await mkdir(dir, { recursive: true });
    for (const f of entries.files) await writeFile(join(dir, f.name), f.content, { mode: 0o644 });
  }
  render(ctx, 'cron', { files: entries.files.map((f) => ({ ...f, path: flags.out ? join(resolve(ctx.cwd, flags.out), f.name) : null })), notes: entries.notes }, () => {
    if (flags.out) return [...entries.files.map((f) => `wrote ${join(resolve(ctx.cwd, flags.out!), f.name)}`), ...installHint(flags, entries)].join('\n');
    if (entries.files.length === 1) return entries.files[0]!.content.trimEnd();
    return entries.files.map((f) => `# ==> ${f.name} <==\n${f.content.trimEnd()}`).join('\n\n');
  });
  return ExitCode.ok;
}

function installHint(flags: CronFlags, entries: Entries): string[] {
  if (!flags.systemd) return [];
  const units = entries.files.map((f) => f.name).filter((n) => n.endsWith('.timer') || n === 'bk-schedule.service');
  return [`then: systemctl daemon-reload && systemctl enable --now ${units.join(' ')}`];
}

/** bin/bk.js of this installation. */
function bkScript(): string {
  const script = INSTALLATION ? join(INSTALLATION.root, 'bin', 'bk.js') : undefined;
  return script && existsSync(script) ? script : resolve(process.argv[1] ?? 'bk');
}
