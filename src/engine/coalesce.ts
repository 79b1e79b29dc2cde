/**
 * Joins small chunks into ones of at least 512 KiB. Dump tools write in small pieces (mariadb-dump
 * ~6 KB, pg_dump's plain SQL ~13 KB) and Node reads a child's stdout 64 KiB at a time at most,
 * while every chunk costs a trip through each stage after this one and a write into the
 * compressor's socket. Measured: Node feeding 580 MB to `zstd -3 -T0` took 1.1–1.4 CPU-s in
 * 64 KiB writes and 0.6–0.75 in 256 KiB–1 MiB ones; a bench MariaDB backup went from 7.96–8.39 s to
 * 7.01–7.23 s (hand pipeline 5.7–6.2 s) and 9.0 to 8.1 user CPU-s. The copy into the joined chunk
 * costs ~0.1 s per GB. Chunks already large pass through without a copy.
 */
import { Transform, type TransformCallback } from 'node:stream';

const COALESCE_BYTES = 512 * 1024;

export class Coalesce extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly size = COALESCE_BYTES) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.pendingBytes === 0 && chunk.length >= this.size) return cb(null, chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.size) return cb();
    cb(null, this.joined());
  }

  override _flush(cb: TransformCallback): void {
    cb(null, this.pendingBytes > 0 ? this.joined() : undefined);
  }

  private joined(): Buffer {
    const out = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return out;
  }
}
