/**
 * The command-line program: options parsed here and nowhere else, each command a function of a
 * Context, and one exit path that turns errors into messages and exit codes (DESIGN §5).
 * Command modules are imported when their command runs, so `bk --help` stays fast.
 */
import { Command, CommanderError, Option } from 'commander';
import type { GlobalOptions } from './app/context.js';
import { addRetentionOptions } from './commands/retention-options.js';
import { COMPRESSIONS } from './codecs/compression.js';
import { BkError, ExitCode, isBkError } from './errors.js';
import { redact } from './secrets.js';
import { BK_VERSION } from './version.js';

const collect = (v: string, acc: string[] = []) => [...acc, v];

export async function main(argv: string[]): Promise<number> {
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      process.stderr.write(`bk: ${sig} received, stopping (again to exit at once)\n`);
      abort.abort(new BkError('INTERRUPTED', `interrupted by ${sig}`));
    } else {
      process.exit(ExitCode.interrupted);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  /** `bk schedule` handles signals itself (graceful stop, reload). */
  const releaseSignals = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };

  let exitCode: number = ExitCode.ok;
  const program = new Command('bk')
    .description('Backups of databases and directories: compressed, checksummed, on local disk or S3, restorable with one command.')
    .version(BK_VERSION, '-V, --version')
    .option('-c, --config <file>', 'config file (default: backup.config.yaml found from here up, or $BK_CONFIG)')
    .option('-r, --repo <dir|s3://bucket/prefix>', 'storage to use instead of the configured ones (default without config: ./backups; $BK_REPO)')
    .option('--json', 'print one JSON document on stdout')
    .option('-q, --quiet', 'print nothing on success')
    .addOption(new Option('--log-level <level>', 'stderr log level (default: info on a terminal, warn otherwise)').choices(['debug', 'info', 'warn', 'error', 'silent']))
    .addOption(new Option('--log-format <format>', 'stderr log format (default: pretty on a terminal, json otherwise)').choices(['json', 'pretty']))
    .showHelpAfterError()
    .exitOverride();

  // Commands and the context load on demand: `bk --help` should not pay for every driver and SDK.
  const context = async (defaults: Partial<GlobalOptions> = {}) =>
    (await import('./app/context.js')).createContext({
      options: { ...program.opts<GlobalOptions>(), logLevel: program.opts<GlobalOptions>().logLevel ?? defaults.logLevel },
      env: process.env,
      cwd: process.cwd(),
      signal: abort.signal,
      // CI runners may attach a pseudo-terminal; CI=… still means nobody is there to answer.
      interactive: Boolean(process.stdout.isTTY && process.stdin.isTTY) && !isCI(process.env),
      stderrIsTTY: Boolean(process.stderr.isTTY),
    });

  const backup = program
    .command('backup')
    .description('back up targets (all configured targets when none is named)')
    .argument('[target...]', 'target names, or a driver name for ad-hoc use (files, postgres, mysql, mariadb, redis)')
    .option('--all', 'every configured target')
    .option('--source <path>', 'ad hoc: what to back up (files: a directory or user@host:/path; postgres/mysql: a URL or a database name; redis: redis://host:port, host:port or a socket)')
    .option('--url <url>', 'ad hoc: the server as a URL (postgres://…, mysql://…, redis://…); same as --source. Passwords come from PGPASSWORD, BK_MYSQL_PASSWORD, REDISCLI_AUTH')
    .option('--exclude <glob>', 'ad hoc (files): leave out matching paths; repeatable', collect)
    .addOption(new Option('--compression <kind>', 'override the compression').choices([...COMPRESSIONS]))
    .option('--tag <tag>', 'add a tag to the manifest; repeatable', collect)
    .option('--no-prune', 'do not apply the retention policy after the backup')
    .action(async (targets: string[], opts: { source?: string; url?: string }) => {
      if (opts.url !== undefined && opts.source !== undefined && opts.url !== opts.source) program.error('bk backup: give --source or --url, not both', { exitCode: 2 });
      exitCode = await (await import('./commands/backup.js')).backupCommand(await context(), targets, { ...opts, source: opts.source ?? opts.url });
    });
  addRetentionOptions(backup);

  addRetentionOptions(
    program
      .command('prune')
      .description('apply the retention policy: show what is kept and why, remove the rest and old crash leftovers')
      .argument('[target...]', 'target names (default: every configured target, or every target in --repo)')
      .option('-n, --dry-run', 'show the plan; remove nothing')
      .option('--storage <name>', 'only this storage')
      .option('--grace <duration>', 'leftovers (archives without manifest, temp files) younger than this are kept (default 24h)'),
  ).action(async (targets: string[], opts) => {
    exitCode = await (await import('./commands/prune.js')).pruneCommand(await context(), targets, opts);
  });

  program
    .command('import')
    .description('adopt existing dump files (e.g. app-202401010200.sql.gz) as backups of a target, with their original time')
    .argument('<target>')
    .argument('<file...>', 'dump files; gzip or zstd compressed files are recompressed like any backup')
    .option('--time <time>', 'backup time (default: each file\'s modification time): 2024-01-01T02:00 in the config time zone, or an instant')
    .option('--source <path>', 'ad hoc (files): the directory the target restores to by default')
    .action(async (target: string, files: string[], opts) => {
      exitCode = await (await import('./commands/import.js')).importCommand(await context(), target, files, opts);
    });

  program
    .command('list')
    .description('list backups, oldest first, from the storage listing')
    .argument('[target]')
    .action(async (target: string | undefined) => {
      exitCode = await (await import('./commands/list.js')).listCommand(await context(), target);
    });

  program
    .command('restore')
    .description('restore targets (every configured target when none is named) as of an instant')
    .argument('[target...]')
    .option('--at <time>', 'newest backup finished at or before: 2024-01-01, 2024-01-01T14:30 (config time zone) or an ISO instant')
    .option('--id <id>', 'a specific backup id')
    .option('--to <dest>', 'restore elsewhere (files: a directory or user@host:/path; redis: redis://host:port, password from REDISCLI_AUTH, or a directory with --mode file)')
    .option('--storage <name>', 'read from this storage only')
    .option('--source <path>', 'ad hoc (files): where the backup restores to by default')
    .option('--jobs <n>', 'postgres: parallel restore jobs (custom format)')
    .option('--mode <mode>', 'redis: live (load into a running server, default) or file (write dump.rdb)')
    .option('-i, --identity <file>', 'age identity file for encrypted backups (else $BK_AGE_IDENTITY or encryption.identity_file)')
    .option('-y, --yes', 'do not ask before overwriting (required without a terminal)')
    .option('--dry-run', 'print the plan and the equivalent shell pipeline; change nothing')
    .action(async (targets: string[], opts) => {
      exitCode = await (await import('./commands/restore.js')).restoreCommand(await context(), targets, opts);
    });

  program
    .command('verify')
    .description('check archives against their manifests (size and sha256), or restore-test them; exit 4 on a mismatch')
    .argument('[target]')
    .option('--id <id>', 'a specific backup')
    .option('--at <time>', 'the backup a restore --at would pick')
    .option('--latest', 'the latest backup of each target (default)')
    .option('--all', 'every backup')
    .option('--sample <n>', 'n random backups per target (reads and hashes them)')
    .option('--restore-test', 'restore into a throwaway destination and compare with what the manifest recorded')
    .option('--storage <name>', 'only this storage')
    .option('-i, --identity <file>', 'age identity file for encrypted backups (else $BK_AGE_IDENTITY or encryption.identity_file)')
    .action(async (target: string | undefined, opts) => {
      exitCode = await (await import('./commands/verify.js')).verifyCommand(await context(), target, opts);
    });

  const config = program.command('config').description('config tools');
  config
    .command('check')
    .description('validate the config and run every target and storage preflight')
    .action(async () => {
      exitCode = await (await import('./commands/config-check.js')).configCheckCommand(await context());
    });

  program
    .command('init')
    .description('write a commented starter backup.config.yaml')
    .argument('[path]', 'where to write it', 'backup.config.yaml')
    .option('--force', 'replace an existing file')
    .action(async (path: string, opts: { force?: boolean }) => {
      exitCode = await (await import('./commands/init.js')).initCommand({ json: Boolean(program.opts().json) }, path, Boolean(opts.force));
    });

  program
    .command('schedule')
    .description('run as a daemon in the foreground: every target with a schedule on its cron expression')
    .option('--listen <host:port>', 'serve /healthz and /metrics, e.g. 127.0.0.1:9464')
    .option('--grace <duration>', 'on SIGTERM/SIGINT, how long running backups may take to finish before they are aborted', '10m')
    .action(async (opts: { listen?: string; grace?: string }) => {
      // A daemon's log is its record: info by default even without a terminal.
      const logLevel = process.env.BK_LOG_LEVEL || program.opts().quiet ? undefined : 'info';
      exitCode = await (await import('./commands/schedule.js')).scheduleCommand(await context(logLevel ? { logLevel } : {}), opts, releaseSignals);
    });

  program
    .command('status')
    .description('the last backup of each target and whether it is overdue; exit 1 when anything is')
    .argument('[target...]')
    .option('--max-age <duration>', 'overdue when the last backup is older than this (overrides max_age)')
    .action(async (targets: string[], opts: { maxAge?: string }) => {
      exitCode = await (await import('./commands/status.js')).statusCommand(await context(), targets, opts);
    });

  program
    .command('cron')
    .description('print crontab lines (or systemd units, or a supervisord program) for the configured schedules')
    .option('--systemd', 'systemd service and timer units')
    .option('--daemon', 'with --systemd: one service running bk schedule instead of timers')
    .option('--supervisord', 'a supervisord program running bk schedule')
    .option('--grace <duration>', 'bk schedule: shutdown grace period', '10m')
    .option('--listen <host:port>', 'bk schedule: serve /healthz and /metrics')
    .option('--log-file <path>', 'where cron / supervisord append the output (default /var/log/bk.log, supervisord /var/log/bk/schedule.log)')
    .option('--out <dir>', 'write the files into this directory instead of printing them')
    .action(async (opts) => {
      exitCode = await (await import('./commands/cron.js')).cronCommand(await context(), opts);
    });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    exitCode = report(e, Boolean(program.opts().json));
  } finally {
    releaseSignals();
  }
  return exitCode;
}

/** CI=true / CI=1 (GitHub Actions, GitLab, most runners); CI=false or 0 means not. */
const isCI = (env: NodeJS.ProcessEnv): boolean => env.CI !== undefined && env.CI !== '' && env.CI !== '0' && env.CI.toLowerCase() !== 'false';

/** The one place errors become output and exit codes. Expected failures never show a stack. */
function report(e: unknown, json: boolean): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.ok;
    return ExitCode.usage; // commander already printed the message and usage
  }
  if (isBkError(e)) {
    if (json) process.stdout.write(`${redact(JSON.stringify({ schemaVersion: 1, error: { code: e.code, step: e.step ?? null, target: e.target ?? null, message: e.describe() } }, null, 2))}\n`);
    process.stderr.write(`bk: ${redact(e.describe())}\n`);
    return e.exitCode;
  }
  process.stderr.write(`bk: internal error (please report): ${redact(e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`);
  return ExitCode.failed;
}
