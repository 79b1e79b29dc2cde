/**
 * Looks at a pg_dump/pg_dumpall stream as it passes, so an empty or cut-short dump fails the backup
 * even when the tool exited 0: a custom archive starts with the "PGDMP" magic, and SQL output ends
 * with pg_dump's own completion comment (followed at most by `\unrestrict` and blank lines).
 */
import { Transform, type TransformCallback } from 'node:stream';

export type DumpShape = 'custom' | 'plain' | 'globals';

const TAIL = 1024;
const COMPLETE: Record<Exclude<DumpShape, 'custom'>, string> = {
  plain: '-- PostgreSQL database dump complete',
  globals: '-- PostgreSQL database cluster dump complete',
};

export class DumpOutputCheck extends Transform {
  bytes = 0;
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);
  /** Resolves once the whole dump went through; rejects if the stream was closed before its end. */
  readonly passed: Promise<void>;

  constructor(private readonly shape: DumpShape) {
    super({ highWaterMark: 1 << 20 });
    let flushed = false;
    this.passed = new Promise<void>((resolve, reject) => {
      this.once('flushed', () => {
        flushed = true;
        resolve();
      });
      this.once('close', () => {
        if (!flushed) reject(new Error('the dump stream was closed before its end'));
      });
    });
    this.passed.catch(() => undefined);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.head.length < 8) this.head = Buffer.concat([this.head, chunk.subarray(0, 8)]);
    this.tail = Buffer.concat([this.tail, chunk.subarray(-TAIL)]).subarray(-TAIL);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.emit('flushed');
    cb();
  }

  /** What is wrong with the dump that passed, or undefined when it looks complete. */
  problem(): string | undefined {
    if (this.bytes === 0) return 'the dump is empty';
    if (this.shape === 'custom') return this.head.subarray(0, 5).toString('latin1') === 'PGDMP' ? undefined : 'the output is not a pg_dump custom archive (no PGDMP header)';
    return this.tail.toString('utf8').includes(COMPLETE[this.shape]) ? undefined : 'the SQL dump is truncated (no "dump complete" line at its end)';
  }
}
