/**
 * Joins small chunks into ones of at least 64 KiB. Dump tools write in small pieces (mariadb-dump
 * ~6 KB, pg_dump's plain SQL ~13 KB), and every chunk costs a trip through each stage after this
 * one and a write syscall into the compressor's pipe. Bench MariaDB dump: ~90,000 chunks in,
 * ~9,000 out. Chunks already large pass through without a copy.
 */
import { Transform, type TransformCallback } from 'node:stream';

const COALESCE_BYTES = 64 * 1024;

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
