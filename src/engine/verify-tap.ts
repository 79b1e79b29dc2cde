/**
 * A pass-through that hashes what flows through it and fails at the end if the bytes are not the
 * ones the manifest recorded. Placed before the restore target, so a corrupted archive makes the
 * restore fail before a staged restore is moved into place.
 *
 * It holds back the last chunk until the bytes are verified. A consumer may act once it has read
 * all it needs, without waiting for the end of its input: pg_restore commits its transaction after
 * the last data block, which ends at the archive's last byte. Holding the tail keeps that commit
 * (and whatever else needs the whole input) behind the checksum.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BkError } from '../errors.js';

export class VerifyTap extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private held: Buffer | undefined;

  constructor(
    private readonly expected: { bytes: number; sha256: string },
    private readonly what: string,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected.bytes) return cb(this.mismatch(`more than the recorded ${this.expected.bytes} bytes`));
    this.hash.update(chunk);
    const previous = this.held;
    this.held = chunk;
    cb(null, previous);
  }

  override _flush(cb: TransformCallback): void {
    if (this.bytes !== this.expected.bytes) return cb(this.mismatch(`${this.bytes} bytes instead of ${this.expected.bytes}`));
    const got = this.hash.digest('hex');
    if (got !== this.expected.sha256) return cb(this.mismatch(`sha256 ${got} instead of ${this.expected.sha256}`));
    cb(null, this.held);
  }

  private mismatch(detail: string): BkError {
    return new BkError('INTEGRITY', `${this.what} does not match its manifest: ${detail}`, {
      step: 'verify',
      hint: 'the archive is damaged; restore an older backup (bk list) and run bk verify --all',
    });
  }
}
