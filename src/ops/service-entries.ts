/**
 * What `bk cron` prints: crontab lines, systemd service+timer units, or a unit / supervisord
 * program for the `bk schedule` daemon. Pure text from the scheduled targets and absolute paths,
 * so it can be installed as is and tested by parsing it back. A target's `verify.schedule` gets a
 * line (or service+timer) of its own running `bk verify <target> [--restore-test] --quiet`.
 */
import type { TargetConfig } from '../config/resolve.js';
import { shellQuote } from '../codecs/compression.js';
import { cronFields } from '../time/cron.js';
import { formatDurationMs } from '../time/duration.js';
import { cronToOnCalendar } from './systemd-calendar.js';

/** How bk is started: absolute paths, so cron's and systemd's empty PATH does not matter. */
export interface Invocation {
  node: string;
  bk: string;
  config: string;
  /** A --repo to pass along (absolute), when storages come from it rather than the config. */
  repo?: string;
}

export interface DaemonOptions {
  graceMs: number;
  listen?: string;
  logFile: string;
}

export interface EntryFile {
  /** File name (systemd unit name, or a suggested name). */
  name: string;
  content: string;
}

export interface Entries {
  files: EntryFile[];
  /** Targets left out, and why. */
  notes: string[];
}

const globalArgs = (inv: Invocation): string[] => ['--config', inv.config, ...(inv.repo ? ['--repo', inv.repo] : [])];
export const backupArgv = (inv: Invocation, target: string): string[] => [inv.node, inv.bk, ...globalArgs(inv), 'backup', target, '--quiet'];
export const verifyArgv = (inv: Invocation, target: string, restoreTest: boolean): string[] => [
  inv.node,
  inv.bk,
  ...globalArgs(inv),
  'verify',
  target,
  ...(restoreTest ? ['--restore-test'] : []),
  '--quiet',
];
export const scheduleArgv = (inv: Invocation, o: DaemonOptions): string[] => [
  inv.node,
  inv.bk,
  ...globalArgs(inv),
  'schedule',
  '--grace',
  formatDurationMs(o.graceMs),
  ...(o.listen ? ['--listen', o.listen] : []),
];

/** One scheduled command of a target: its backup, or the verification of its latest backup. */
interface Job {
  target: TargetConfig;
  schedule: string;
  /** How notes and comments name it: "db", "db (verify)". */
  label: string;
  argv: string[];
  /** systemd unit name without suffix. */
  unit: string;
  description: string;
}

/** The jobs of these targets, backups first: each target with a schedule, then each with verify.schedule. */
export function scheduledJobs(inv: Invocation, targets: readonly TargetConfig[]): Job[] {
  const backups = targets
    .filter((t) => t.schedule !== undefined)
    .map((t) => ({ target: t, schedule: t.schedule!, label: t.name, argv: backupArgv(inv, t.name), unit: unitName(t.name), description: `bk backup of ${t.name}` }));
  const verifies = targets
    .filter((t) => t.verify?.schedule !== undefined)
    .map((t) => ({
      target: t,
      schedule: t.verify!.schedule!,
      label: `${t.name} (verify)`,
      argv: verifyArgv(inv, t.name, t.verify!.restoreTest),
      unit: `${unitName(t.name)}-verify`,
      description: `bk ${t.verify!.restoreTest ? 'restore drill' : 'integrity check'} of ${t.name}`,
    }));
  return [...backups, ...verifies];
}

/** A daemon stopping gracefully may take the grace period plus time to abort and clean up. */
const stopWaitSeconds = (o: DaemonOptions): number => Math.ceil(o.graceMs / 1000) + 60;

// ---- crontab ----------------------------------------------------------------------------------

/** The expression as crontab can take it, or why it cannot. */
export function cronLineSchedule(expr: string): { ok: true; schedule: string } | { ok: false; reason: string } {
  const e = expr.trim().replace(/\s+/g, ' ');
  if (e.startsWith('@')) return { ok: true, schedule: e.toLowerCase() };
  let fields = e.split(' ');
  if (fields.length === 6) {
    if (!/^0+$/.test(fields[0]!)) return { ok: false, reason: `"${expr}" runs at seconds granularity; cron runs at most once a minute` };
    fields = fields.slice(1);
  }
  fields = fields.map((f, i) => (f === '?' && (i === 2 || i === 4) ? '*' : f));
  const f = cronFields(expr);
  if ([...f.dayOfMonth, ...f.dayOfWeek].some((v) => typeof v !== 'number')) {
    return { ok: false, reason: `"${expr}" uses L, W or # day tokens, which cron does not know` };
  }
  const domRestricted = new Set(f.dayOfMonth).size < 31;
  const dowRestricted = new Set(f.dayOfWeek).size < 7;
  if (domRestricted && dowRestricted) {
    return { ok: false, reason: `"${expr}" restricts both day of month and day of week: cron runs when EITHER matches, bk schedule when both do` };
  }
  return { ok: true, schedule: fields.join(' ') };
}

/** `%` ends a crontab command (the rest becomes stdin) unless escaped. */
const cronCommand = (argv: string[]): string => argv.map(shellQuote).join(' ').replace(/%/g, '\\%');

export function crontab(inv: Invocation, targets: readonly TargetConfig[], o: { logFile: string; systemTimeZone: string }): Entries {
  const notes: string[] = [];
  const lines = [
    `# bk backups, generated by \`bk cron\` from ${inv.config}`,
    '# Install: (crontab -l 2>/dev/null; bk cron) | crontab -',
    `# Silent on success; on failure bk exits non-zero, logs to ${o.logFile} and sends the configured notifications.`,
    '# cron starts jobs with an almost empty environment: set here what the config reads with ${VAR}, or use *_file keys.',
    '',
  ];
  let zone = o.systemTimeZone;
  for (const job of scheduledJobs(inv, targets)) {
    const t = job.target;
    const s = cronLineSchedule(job.schedule);
    if (!s.ok) {
      notes.push(`${job.label}: ${s.reason}; run it with bk schedule (bk cron --systemd --daemon or --supervisord)`);
      lines.push(`# ${job.label}: not installable in cron: ${s.reason}`);
      continue;
    }
    if (t.timezone !== zone) {
      lines.push(`# ${t.name} runs in ${t.timezone} (CRON_TZ is honoured by cronie and systemd-cron; Debian's cron ignores it)`, `CRON_TZ=${t.timezone}`);
      zone = t.timezone;
    }
    if (t.jitterMs) lines.push(`# ${job.label}: jitter ${formatDurationMs(t.jitterMs)} is applied by bk schedule and systemd timers, not by cron`);
    lines.push(`${s.schedule} ${cronCommand(job.argv)} >> ${shellQuote(o.logFile)} 2>&1`);
  }
  return { files: [{ name: 'crontab', content: `${lines.join('\n')}\n` }], notes };
}

// ---- systemd ----------------------------------------------------------------------------------

/** ExecStart= quoting: double quotes around words with specials; `%` and `$` escaped. */
function systemdExec(argv: string[]): string {
  return argv
    .map((a) => {
      const escaped = a.replace(/%/g, '%%').replace(/\$/g, '$$$$');
      return /^[\w@+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    })
    .join(' ');
}

export const unitName = (target: string): string => `bk-${target.replace(/[^A-Za-z0-9:_.\\-]/g, '_')}`;

const ENVIRONMENT_FILE = 'EnvironmentFile=-/etc/bk/bk.env';

/** A oneshot service and a timer per scheduled job; a daemon unit when a schedule cannot convert. */
export function systemdUnits(inv: Invocation, targets: readonly TargetConfig[], daemon: DaemonOptions): Entries {
  const jobs = scheduledJobs(inv, targets);
  const calendars = jobs.map((j) => ({ j, c: cronToOnCalendar(j.schedule, j.target.timezone) }));
  const notes = calendars.filter((x) => !x.c.ok).map(({ j, c }) => `${j.label}: ${(c as { reason: string }).reason}`);
  // Target "db-verify" and the verification of target "db" would share a unit name.
  const units = jobs.map((j) => j.unit);
  for (const j of jobs) if (units.indexOf(j.unit) !== units.lastIndexOf(j.unit)) notes.push(`${j.label}: unit name ${j.unit} is taken twice`);
  if (notes.length > 0) return { files: systemdDaemon(inv, daemon).files, notes: [...new Set(notes)].map((n) => `${n}; using one bk schedule service for every target instead of timers`) };
  const files: EntryFile[] = [];
  for (const { j, c } of calendars) {
    const t = j.target;
    const name = j.unit;
    files.push({
      name: `${name}.service`,
      content: [
        '[Unit]',
        `Description=${j.description}`,
        'Wants=network-online.target',
        'After=network-online.target',
        '',
        '[Service]',
        'Type=oneshot',
        `ExecStart=${systemdExec(j.argv)}`,
        ENVIRONMENT_FILE,
        '# User=bk',
        'Nice=10',
        'IOSchedulingClass=best-effort',
        'IOSchedulingPriority=7',
        ...(t.timeoutMs ? [`TimeoutStartSec=${Math.ceil(t.timeoutMs / 1000) + 300}`] : []),
        '',
      ].join('\n'),
    });
    files.push({
      name: `${name}.timer`,
      content: [
        '[Unit]',
        `Description=${j.description} (schedule "${j.schedule}")`,
        '',
        '[Timer]',
        `OnCalendar=${(c as { calendar: string }).calendar}`,
        'Persistent=true',
        'AccuracySec=1s',
        ...(t.jitterMs ? [`RandomizedDelaySec=${Math.ceil(t.jitterMs / 1000)}`] : []),
        '',
        '[Install]',
        'WantedBy=timers.target',
        '',
      ].join('\n'),
    });
  }
  return { files, notes: [] };
}

export function systemdDaemon(inv: Invocation, o: DaemonOptions): Entries {
  return {
    files: [
      {
        name: 'bk-schedule.service',
        content: [
          '[Unit]',
          'Description=bk scheduler (bk schedule)',
          'Wants=network-online.target',
          'After=network-online.target',
          '',
          '[Service]',
          'Type=simple',
          `ExecStart=${systemdExec(scheduleArgv(inv, o))}`,
          'ExecReload=/bin/kill -HUP $MAINPID',
          ENVIRONMENT_FILE,
          '# User=bk',
          '# SIGTERM goes to bk only, so running dump tools are not killed under it; it finishes or aborts them.',
          'KillMode=mixed',
          `TimeoutStopSec=${stopWaitSeconds(o)}`,
          'Restart=on-failure',
          'RestartSec=30',
          '',
          '[Install]',
          'WantedBy=multi-user.target',
          '',
        ].join('\n'),
      },
    ],
    notes: [],
  };
}

// ---- supervisord ------------------------------------------------------------------------------

export function supervisord(inv: Invocation, o: DaemonOptions): Entries {
  const command = scheduleArgv(inv, o).map(shellQuote).join(' ').replace(/%/g, '%%');
  return {
    files: [
      {
        name: 'bk.conf',
        content: [
          '; bk scheduler, generated by `bk cron --supervisord`. Reload the config with: supervisorctl signal HUP bk',
          '[program:bk]',
          `command=${command}`,
          'autostart=true',
          'autorestart=true',
          'startsecs=5',
          'stopsignal=TERM',
          `stopwaitsecs=${stopWaitSeconds(o)}`,
          '; TERM to bk only: it lets running backups finish (or aborts them cleanly) before it exits',
          'stopasgroup=false',
          'killasgroup=true',
          'redirect_stderr=true',
          `stdout_logfile=${o.logFile.replace(/%/g, '%%')}`,
          '',
        ].join('\n'),
      },
    ],
    notes: [],
  };
}
