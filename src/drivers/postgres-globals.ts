/**
 * Restoring `pg_dumpall --globals-only` output into a server that already has some of its roles.
 * pg_dumpall writes each role as `CREATE ROLE x;` followed by `ALTER ROLE x WITH …` (the ALTER sets
 * every attribute), and it writes CREATE ROLE even for the role running the restore, which always
 * exists. So the restore can stop at the first error (ON_ERROR_STOP) only if an existing role is not
 * an error: each `CREATE ROLE x;` line becomes a DO block that skips a role that exists, and the
 * following ALTER ROLE brings its attributes to the backed-up state.
 *
 * Only whole lines of exactly that form are rewritten (a multi-line string literal holding such a
 * line — a role comment written that way — would be the one false match).
 */
import { randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

const CREATE_ROLE = /^CREATE ROLE ((?:"(?:[^"]|"")+")|[A-Za-z_][A-Za-z0-9_$]*);$/;

export class IdempotentRoles extends Transform {
  private rest = '';
  // Chunks may split a UTF-8 character; the decoder holds the partial bytes back.
  private readonly decoder = new StringDecoder('utf8');
  private readonly tag = `$bk_${randomBytes(6).toString('hex')}$`;

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const text = this.rest + this.decoder.write(chunk);
    const last = text.lastIndexOf('\n');
    this.rest = text.slice(last + 1);
    cb(null, last < 0 ? '' : this.rewrite(text.slice(0, last + 1)));
  }

  override _flush(cb: TransformCallback): void {
    const text = this.rest + this.decoder.end();
    cb(null, text ? this.rewrite(text) : '');
  }

  private rewrite(lines: string): string {
    return lines
      .split('\n')
      .map((line) => {
        const m = CREATE_ROLE.exec(line);
        return m ? `DO ${this.tag}BEGIN CREATE ROLE ${m[1]}; EXCEPTION WHEN duplicate_object THEN NULL; END${this.tag};` : line;
      })
      .join('\n');
  }
}
