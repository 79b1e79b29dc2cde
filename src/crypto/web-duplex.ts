/**
 * A web-streams transform (a WritableStream in, a ReadableStream out) as one Node Duplex, so it
 * can sit in a `pipeline()` between Node streams. Backpressure holds both ways: a write completes
 * only when the web side took the chunk, and the output is pulled only as fast as Node reads it.
 *
 * The output may be a promise: age's decrypter hands out its plaintext stream only after it has
 * read and opened the header, which needs the first writes to have arrived.
 */
import { Duplex } from 'node:stream';

export class WebDuplex extends Duplex {
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private reader?: ReadableStreamDefaultReader<Uint8Array>;
  private wanted = false;
  private pumping = false;

  constructor(
    input: WritableStream<Uint8Array>,
    private readonly output: Promise<ReadableStream<Uint8Array>>,
    /** Turns the web side's errors (plain Errors) into the caller's own. */
    private readonly mapError: (e: unknown) => Error,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.writer = input.getWriter();
    output.catch((e: unknown) => this.destroy(this.mapError(e)));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.writer.ready
      .then(() => this.writer.write(chunk))
      .then(
        () => cb(),
        (e: unknown) => cb(this.mapError(e)),
      );
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.writer.close().then(
      () => cb(),
      (e: unknown) => cb(this.mapError(e)),
    );
  }

  override _read(): void {
    this.wanted = true;
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      this.reader ??= (await this.output).getReader();
      while (this.wanted && !this.destroyed) {
        const next = await this.reader.read();
        if (next.done) {
          this.push(null);
          return;
        }
        // push() is false once Node's buffer is full; _read() asks again when it drains.
        this.wanted = this.push(next.value);
      }
    } catch (e) {
      this.destroy(this.mapError(e));
    } finally {
      this.pumping = false;
    }
  }

  override _destroy(error: Error | null, cb: (e?: Error | null) => void): void {
    const reason = error ?? undefined;
    this.writer.abort(reason).catch(() => undefined);
    if (this.reader) this.reader.cancel(reason).catch(() => undefined);
    else this.output.then((o) => o.cancel(reason)).catch(() => undefined);
    cb(error);
  }
}
