/**
 * Running hook commands around a backup: argument arrays run directly, `shell:` strings with
 * /bin/sh -c; each with its timeout, its output logged, and a failure turned into a BkError that
 * names the target, the phase and the command. Hooks see BK_TARGET, BK_HOOK (before/after) and,
 * after the backup, BK_STATUS (success/failure) and BK_BACKUP_ID.
 */
import { execa, ExecaError } from 'execa';
import { shellQuote } from '../codecs/compression.js';
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatDurationMs } from '../time/duration.js';
import type { Hook } from './schema.js';

export type HookPhase = 'before' | 'after';
export type RunOutcome = 'success' | 'failure';

export interface HookRun {
  target: string;
  logger: Logger;
  env: NodeJS.ProcessEnv;
  /** Cancels a running hook (before hooks only: after hooks must get to undo what before hooks did). */
  signal?: AbortSignal;
}

const OUTPUT_LINES = 40;

export const describeHook = (h: Hook): string => (h.run ? h.run.map(shellQuote).join(' ') : `sh -c ${shellQuote(h.shell ?? '')}`);

export async function runHook(hook: Hook, phase: HookPhase, run: HookRun, vars: Record<string, string> = {}): Promise<void> {
  const step = `${phase} hook`;
  const command = describeHook(hook);
  const log = run.logger.child({ target: run.target, step });
  const options = {
    env: { ...run.env, BK_TARGET: run.target, BK_HOOK: phase, ...vars },
    extendEnv: false,
    stdin: 'ignore' as const,
    all: true,
    reject: false,
    timeout: hook.timeoutMs,
    cancelSignal: run.signal,
    forceKillAfterDelay: 5_000,
    stripFinalNewline: true,
    maxBuffer: 1024 * 1024,
  };
  const started = Date.now();
  log.info('running hook', { command });
  const res = hook.run ? await execa(hook.run[0]!, hook.run.slice(1), options) : await execa(hook.shell!, { ...options, shell: '/bin/sh' });
  const output = String(res.all ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-OUTPUT_LINES);
  for (const line of output) log.info(line, { command, stream: 'output' });
  const duration = (Date.now() - started) / 1000;
  if (!res.failed) {
    log.info('hook finished', { command, duration });
    return;
  }
  const toolOutput = output.join('\n') || undefined;
  const err = res as unknown as ExecaError & { code?: string };
  if (err.timedOut) {
    throw new BkError('FAILED', `\`${command}\` timed out after ${formatDurationMs(hook.timeoutMs)}`, {
      target: run.target,
      step,
      toolOutput,
      hint: 'raise the hook\'s timeout: in the config, or find out why it hangs',
    });
  }
  if (err.isCanceled) throw new BkError('INTERRUPTED', `\`${command}\` was stopped`, { target: run.target, step });
  if (err.code === 'ENOENT' || (err.exitCode === undefined && /ENOENT/.test(String(err.message)))) {
    throw new BkError('FAILED', `\`${command}\`: command not found`, { target: run.target, step, hint: 'use an absolute path, or check PATH of the bk process' });
  }
  const how = err.exitCode !== undefined ? `exited with code ${err.exitCode}` : `was killed by ${err.signal ?? 'a signal'}`;
  throw new BkError('FAILED', `\`${command}\` ${how}`, { target: run.target, step, toolOutput });
}

/** Before hooks in order; the first failure is thrown and the rest do not run. */
export async function runBeforeHooks(hooks: readonly Hook[], run: HookRun): Promise<void> {
  for (const h of hooks) await runHook(h, 'before', run);
}

/**
 * After hooks whose `on:` fits the outcome, in order. Every one runs even when an earlier one
 * failed; failures are logged and returned, never thrown: the backup's own result stands.
 */
export async function runAfterHooks(hooks: readonly Hook[], outcome: RunOutcome, run: HookRun, vars: Record<string, string> = {}): Promise<BkError[]> {
  const errors: BkError[] = [];
  for (const h of hooks) {
    if (h.on !== 'always' && h.on !== outcome) continue;
    try {
      await runHook(h, 'after', { ...run, signal: undefined }, { BK_STATUS: outcome, ...vars });
    } catch (e) {
      const error = e instanceof BkError ? e : new BkError('FAILED', String(e), { target: run.target, step: 'after hook' });
      run.logger.error(error.describe(), { target: run.target, step: 'after hook' });
      errors.push(error);
    }
  }
  return errors;
}
