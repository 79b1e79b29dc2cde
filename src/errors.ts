/**
 * One error type for everything bk expects to go wrong. The CLI's single exit path turns a BkError
 * into a message and an exit code (DESIGN §5); anything else is a bug and gets a stack trace.
 */

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  partial: 3,
  integrity: 4,
  locked: 5,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | 'CONFIG'
  | 'USAGE'
  | 'NOT_FOUND'
  | 'TOOL_MISSING'
  | 'TOOL_FAILED'
  | 'SOURCE'
  | 'STORAGE'
  | 'INTEGRITY'
  | 'UNSAFE_ARCHIVE'
  | 'LOCKED'
  | 'INTERRUPTED'
  | 'REFUSED'
  | 'FAILED';

const exitFor: Record<ErrorCode, ExitCode> = {
  CONFIG: ExitCode.usage,
  USAGE: ExitCode.usage,
  NOT_FOUND: ExitCode.failed,
  TOOL_MISSING: ExitCode.failed,
  TOOL_FAILED: ExitCode.failed,
  SOURCE: ExitCode.failed,
  STORAGE: ExitCode.failed,
  INTEGRITY: ExitCode.integrity,
  UNSAFE_ARCHIVE: ExitCode.integrity,
  LOCKED: ExitCode.locked,
  INTERRUPTED: ExitCode.interrupted,
  REFUSED: ExitCode.failed,
  FAILED: ExitCode.failed,
};

export interface BkErrorDetails {
  /** The target (or storage) the error is about, when there is one. */
  target?: string;
  /** The step that failed: "dump", "compress", "upload", "restore", "config", … */
  step?: string;
  /** What to do about it, when known. */
  hint?: string;
  /** Output of the external tool, trimmed. */
  toolOutput?: string;
  cause?: unknown;
  exitCode?: ExitCode;
}

export class BkError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  readonly target?: string;
  readonly step?: string;
  readonly hint?: string;
  readonly toolOutput?: string;

  constructor(code: ErrorCode, message: string, details: BkErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'BkError';
    this.code = code;
    this.exitCode = details.exitCode ?? exitFor[code];
    this.target = details.target;
    this.step = details.step;
    this.hint = details.hint;
    this.toolOutput = details.toolOutput;
  }

  /** The same error, placed at a target and step if it was not already. */
  at(target: string | undefined, step: string | undefined): BkError {
    if ((this.target ?? target) === this.target && (this.step ?? step) === this.step) return this;
    return new BkError(this.code, this.message, {
      target: this.target ?? target,
      step: this.step ?? step,
      hint: this.hint,
      toolOutput: this.toolOutput,
      cause: this.cause,
      exitCode: this.exitCode,
    });
  }

  /** One line for humans: "target: step: message (hint)". */
  describe(): string {
    const where = [this.target, this.step].filter(Boolean).join(': ');
    const tool = this.toolOutput ? `\n  ${this.toolOutput.trim().split('\n').slice(-8).join('\n  ')}` : '';
    const hint = this.hint ? `\n  fix: ${this.hint}` : '';
    return `${where ? `${where}: ` : ''}${this.message}${tool}${hint}`;
  }
}

export const isBkError = (e: unknown): e is BkError => e instanceof BkError;

/** Wraps anything thrown into a BkError placed at a target and step; BkErrors keep their code. */
export function toBkError(e: unknown, target?: string, step?: string, code: ErrorCode = 'FAILED'): BkError {
  if (e instanceof BkError) return e.at(target, step);
  if (isAbortError(e)) return new BkError('INTERRUPTED', 'interrupted', { target, step, cause: e });
  const message = e instanceof Error ? e.message : String(e);
  // Errors from lower layers (StorageError) may carry the fix.
  const hint = (e as { hint?: unknown } | null)?.hint;
  return new BkError(code, message, { target, step, cause: e, ...(typeof hint === 'string' ? { hint } : {}) });
}

export function isAbortError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}
