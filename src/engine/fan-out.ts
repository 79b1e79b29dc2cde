/**
 * One writable feeding several branches (one per storage), at the pace of the slowest live branch.
 * A branch that fails is dropped and the rest keep going, so one broken storage does not cost the
 * others their backup; only when every branch has failed does the fan-out fail.
 */
import { PassThrough, Writable } from 'node:stream';

const BRANCH_BUFFER = 1 << 20;

export class FanOut extends Writable {
  readonly branches: PassThrough[];
  private readonly live = new Set<PassThrough>();
  private lastError?: Error;

  constructor(count: number) {
    super({ highWaterMark: BRANCH_BUFFER });
    this.branches = Array.from({ length: count }, () => new PassThrough({ highWaterMark: BRANCH_BUFFER }));
    for (const b of this.branches) {
      this.live.add(b);
      // A branch's failure reaches its storage's write(), which reports it. On abort the storage
      // may stop listening before _destroy below fails the branch: without this listener that
      // late 'error' would crash the process instead of ending with "interrupted". Likewise a dump
      // that fails at once, before a storage attached its pipeline (local storage first creates
      // the directory).
      b.on('error', () => undefined);
    }
  }

  /** Stops feeding branch `i` (its storage failed). */
  drop(i: number, error: Error): void {
    const b = this.branches[i]!;
    if (!this.live.delete(b)) return;
    this.lastError = error;
    b.emit('bk-dropped');
    if (!b.destroyed) b.destroy();
    if (this.live.size === 0) this.destroy(error);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.live.size === 0) return cb(this.lastError ?? new Error('no storage left to write to'));
    let waiting = 0;
    const release = () => {
      if (--waiting === 0) cb();
    };
    for (const b of this.live) {
      if (!b.write(chunk)) {
        waiting++;
        const done = () => {
          b.off('drain', done);
          b.off('bk-dropped', done);
          b.off('close', done);
          release();
        };
        b.on('drain', done);
        b.on('bk-dropped', done);
        b.on('close', done);
      }
    }
    if (waiting === 0) cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    for (const b of this.live) b.end();
    cb();
  }

  override _destroy(error: Error | null, cb: (e?: Error | null) => void): void {
    // pipeline() destroys every stream once done; ended branches still hold bytes their storage
    // has not read yet, so only a real failure (or a branch never ended) tears them down.
    for (const b of this.live) if (!b.destroyed && (error || !b.writableEnded)) b.destroy(error ?? undefined);
    cb(error);
  }
}
