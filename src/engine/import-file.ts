/**
 * A dump file made outside bk (the old cron scripts' `app-202401010200.sql.gz`) as a Driver, so
 * `bk import` runs it through the normal backup pipeline: decompressed (gzip and zstd are
 * recognized by their magic bytes), hashed, recompressed with the target's settings, written
 * with a manifest. The payload is taken as it is: it must be what the target's driver restores
 * (SQL for mysql, a tar for files, …); bk cannot check that without restoring it.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDecompressor, sniffCompression } from '../codecs/compression.js';
import type { Driver, DumpSession } from '../drivers/driver.js';
import { BkError } from '../errors.js';

/** The file as the dump of `like` (same kind and payload, so restore uses that driver). */
export async function importedFileDriver(path: string, like: Driver): Promise<Driver> {
  let head: Buffer;
  let info;
  try {
    info = await stat(path);
    if (!info.isFile()) throw new Error('not a regular file');
    const fh = await open(path, 'r');
    try {
      head = Buffer.alloc(4);
      const { bytesRead } = await fh.read(head, 0, 4, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new BkError('SOURCE', `cannot read ${path}: ${(e as Error).message}`, { step: 'import' });
  }
  const compression = sniffCompression(head);
  return {
    kind: like.kind,
    payloadExt: like.payloadExt,
    check: () => like.check(),
    restore: (stream, ctx) => like.restore(stream, ctx),
    describeRestoreTarget: (to) => like.describeRestoreTarget(to),
    manualRestoreCommand: (to) => like.manualRestoreCommand(to),
    backup: async ({ signal }): Promise<DumpSession> => {
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      const decompressor = createDecompressor(compression);
      const done = pipeline([createReadStream(path, { highWaterMark: 1 << 20 }), ...(decompressor ? [decompressor] : []), out], { signal }).then(
        () => ({
          tools: [],
          extra: { imported: { file: basename(path), bytes: info.size, compression, mtime: info.mtime.toISOString() } },
        }),
        (e: unknown) => {
          throw new BkError('SOURCE', `cannot read ${path}${compression === 'none' ? '' : ` as ${compression}`}: ${(e as Error).message}`, { step: 'import' });
        },
      );
      return { stream: out, done };
    },
  };
}
