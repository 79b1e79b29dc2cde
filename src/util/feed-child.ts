/**
 * Feeds a restore stream into a child's stdin so that a failed or cut-short input can never pass for
 * a complete one. A restore tool that reads EOF finishes its work (psql commits what it got), so when
 * the source fails the child is SIGKILLed *before* its stdin is closed: a pending SIGKILL is taken
 * before the process runs again, so it never sees the EOF. Backpressure is kept (the source pauses
 * while the pipe is full).
 */
import type { Readable, Writable } from 'node:stream';

export interface FeedOptions {
  /** Written before the first byte of the source. */
  prefix?: string;
  /** Written after the source ended cleanly, and only then (e.g. the COMMIT of a wrapping transaction). */
  suffix?: string;
  /** Kills the child at once. */
  kill(): void;
}

/**
 * Resolves when the source ended (stdin closed, or the child had stopped reading earlier); rejects
 * with the source's error after killing the child. Callers whose child failed need not wait for it.
 */
export function feedChild(source: Readable, stdin: Writable, opts: FeedOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let ended = false;
    let settled = false;
    // The child stopped reading: the rest of the source is read and dropped, so the checks at its
    // end (sha256) still run and can still fail the restore.
    let draining = false;
    const cleanup = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onSourceError);
      source.off('close', onSourceClose);
      stdin.off('drain', onDrain);
      stdin.off('close', onStdinGone);
    };
    const settle = (e?: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      if (e) reject(e);
      else resolve();
    };
    const abort = (e: Error) => {
      opts.kill();
      stdin.destroy();
      settle(e);
    };
    const onData = (chunk: Buffer) => {
      if (draining) return;
      if (!stdin.write(chunk)) source.pause();
    };
    const onDrain = () => source.resume();
    const onEnd = () => {
      ended = true;
      if (!draining) stdin.end(opts.suffix);
      settle();
    };
    const onSourceError = (e: Error) => abort(e);
    const onSourceClose = () => {
      if (!ended) abort(new Error('the restore input stopped before its end'));
    };
    const onStdinGone = () => {
      if (ended || draining) return;
      draining = true;
      source.resume();
    };
    // EPIPE when the child exits early; the caller learns why from the child's exit status.
    stdin.on('error', () => undefined);
    stdin.on('drain', onDrain);
    stdin.on('close', onStdinGone);
    source.on('error', onSourceError);
    source.on('close', onSourceClose);
    source.on('end', onEnd);
    // Destroyed before we listened (the input broke while the caller was still preparing): its
    // 'error' and 'close' are gone, and waiting for them would leave the child waiting for EOF.
    if (source.destroyed && !source.readableEnded) return abort(source.errored ?? new Error('the restore input stopped before its end'));
    if (opts.prefix) stdin.write(opts.prefix);
    source.on('data', onData);
  });
}
