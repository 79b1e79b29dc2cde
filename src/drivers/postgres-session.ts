/**
 * One long-lived psql connection that bk talks to over stdin/stdout: used to hold the transaction
 * whose snapshot pg_dump imports (`--snapshot`), so the row counts recorded in the manifest come
 * from exactly the data in the dump. psql flushes each result as it is produced; every request is
 * followed by an `\echo` of a random marker, so its output is the lines before the marker.
 * With ON_ERROR_STOP a failing statement ends psql, which rejects the request with psql's stderr.
 */
import { randomBytes } from 'node:crypto';
import { execa, type ResultPromise } from 'execa';
import type { BkError } from '../errors.js';
import { toolError, type ToolSpec } from '../util/exec.js';

interface Pending {
  lines: string[];
  resolve(lines: string[]): void;
  reject(e: BkError): void;
}

export class PsqlSession {
  private readonly marker = `__bk_${randomBytes(8).toString('hex')}__`;
  private readonly pending: Pending[] = [];
  private buffered = '';
  private failure: BkError | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ResultPromise,
    tool: ToolSpec,
    where: { target?: string; step: string },
  ) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onOutput(chunk));
    // stdin closes under us when psql stops on an error; its exit status is what matters.
    child.stdin!.on('error', () => undefined);
    this.exited = child.then(
      () => this.failAll(toolError(tool, new Error('psql session ended'), where)),
      (e: unknown) => this.failAll(toolError(tool, e, where)),
    );
  }

  static open(tool: ToolSpec, conninfo: string, opts: { env: NodeJS.ProcessEnv; signal?: AbortSignal; target?: string; step: string }): PsqlSession {
    const child = execa(tool.bin, ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', `--dbname=${conninfo}`], {
      env: opts.env,
      extendEnv: false,
      stdin: 'pipe',
      buffer: { stdout: false, stderr: true },
      cancelSignal: opts.signal,
      forceKillAfterDelay: 2000,
    });
    return new PsqlSession(child, tool, { target: opts.target, step: opts.step });
  }

  /** Runs SQL (and psql meta-commands), returns the output lines. */
  query(sql: string): Promise<string[]> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<string[]>((resolve, reject) => {
      this.pending.push({ lines: [], resolve, reject });
      this.child.stdin!.write(`${sql}\n\\echo ${this.marker}\n`);
    });
  }

  /** Ends the session: sends `final` (e.g. COMMIT), closes stdin and waits for psql to exit. */
  async close(final = ''): Promise<void> {
    if (!this.child.stdin!.destroyed) this.child.stdin!.end(final ? `${final}\n` : undefined);
    await this.exited;
  }

  /** Stops psql at once (its transaction is rolled back by the server). */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  private onOutput(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const head = this.pending[0];
      if (!head) continue;
      if (line === this.marker) {
        this.pending.shift();
        head.resolve(head.lines);
      } else {
        head.lines.push(line);
      }
    }
  }

  private failAll(e: BkError): void {
    this.failure ??= e;
    for (const p of this.pending.splice(0)) p.reject(this.failure);
  }
}
