/**
 * Running external tools: always an argument array (never a shell string), secrets only in the
 * environment or 0600 files, a missing binary turned into an install instruction, a failure turned
 * into a BkError that carries the tool's stderr.
 */
import { execa, ExecaError, type Options } from 'execa';
import { BkError } from '../errors.js';
import { knownSecrets, redact } from '../secrets.js';

export interface ToolSpec {
  /** Binary name or path. */
  bin: string;
  /** What to install when it is missing, e.g. "apt-get install rsync". */
  install: string;
}

/** Runs a tool to completion and returns its stdout; a failure becomes a BkError. */
export async function runTool(
  tool: ToolSpec,
  args: readonly string[],
  ctx: { target?: string; step: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal; input?: string },
  options: Options = {},
): Promise<string> {
  try {
    const res = await execa(tool.bin, args, {
      // A caller passing extendEnv: false built the whole environment itself.
      env: options.extendEnv === false ? ctx.env : childEnv(ctx.env),
      extendEnv: false,
      cancelSignal: ctx.signal,
      input: ctx.input,
      stripFinalNewline: true,
      maxBuffer: 64 * 1024 * 1024,
      ...options,
    });
    return String(res.stdout ?? '');
  } catch (e) {
    throw toolError(tool, e, ctx);
  }
}

/** Translates an execa failure of `tool` into a BkError naming the target, step and fix. */
export function toolError(tool: ToolSpec, e: unknown, ctx: { target?: string; step: string }): BkError {
  if (e instanceof BkError) return e;
  const err = e as ExecaError & { code?: string };
  if (err.code === 'ENOENT' || /ENOENT/.test(String(err.message)) && err.exitCode === undefined) {
    return new BkError('TOOL_MISSING', `${tool.bin} not found`, { target: ctx.target, step: ctx.step, hint: tool.install, cause: e });
  }
  if (err instanceof ExecaError) {
    if (err.isCanceled || err.isForcefullyTerminated) {
      return new BkError('INTERRUPTED', `${tool.bin} was stopped`, { target: ctx.target, step: ctx.step, cause: e });
    }
    const how = err.exitCode !== undefined ? `exited with code ${err.exitCode}` : `was killed by ${err.signal ?? 'a signal'}`;
    const stderr = typeof err.stderr === 'string' ? redact(err.stderr) : '';
    return new BkError('TOOL_FAILED', `${tool.bin} ${how}`, { target: ctx.target, step: ctx.step, toolOutput: stderr || undefined, cause: e });
  }
  return new BkError('TOOL_FAILED', `${tool.bin}: ${(e as Error).message}`, { target: ctx.target, step: ctx.step, cause: e });
}

/** First line of `bin --version`, or undefined when the tool is missing. */
export async function toolVersion(bin: string, args: readonly string[] = ['--version']): Promise<string | undefined> {
  try {
    const res = await execa(bin, args, { timeout: 10_000, reject: false, stdin: 'ignore', env: childEnv(), extendEnv: false });
    if (res.failed && res.exitCode === undefined) return undefined;
    const line = `${res.stdout || res.stderr}`.split('\n')[0]?.trim();
    return line || undefined;
  } catch {
    return undefined;
  }
}

/** Variables that carry credentials for ad-hoc use; a tool gets them only when a driver passes them. */
const CREDENTIAL_VARS = /^(MYSQL_PWD|BK_MYSQL_PASSWORD|PGPASSWORD|REDISCLI_AUTH|BK_AGE_IDENTITY)$/;

/**
 * bk's environment without the secrets it knows (a `${VAR}` the config read a password from, ad-hoc
 * credential variables), plus what the caller passes explicitly. Tools inherit nothing secret by
 * accident; /proc/<pid>/environ of a dump tool shows only what its driver chose to give it.
 */
export function childEnv(explicit?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const secrets = new Set(knownSecrets());
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !secrets.has(v) && !CREDENTIAL_VARS.test(k)) env[k] = v;
  }
  return { ...env, ...explicit };
}
