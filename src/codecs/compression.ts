/**
 * Compression codecs. zstd is the default: on the reference machine `zstd -3 -T0` ran 6–8× faster
 * than gzip -6 at a slightly better ratio (research/toolchain.md §3). It comes from node:zlib where
 * Node has it (22.15+), else from the `zstd` binary through a pipe — no native addons. gzip always
 * comes from node:zlib, which was faster than Debian's gzip binary at the same level.
 */
import zlib from 'node:zlib';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex } from 'node:stream';
import { BkError } from '../errors.js';

export const COMPRESSIONS = ['zstd', 'gzip', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export interface CompressOptions {
  /** zstd 1–19 (default 3), gzip 1–9 (default 6). */
  level?: number;
}

export const extensionOf = (c: Compression): string => ({ zstd: '.zst', gzip: '.gz', none: '' })[c];

type ZstdZlib = typeof zlib & {
  createZstdCompress?: (o?: object) => Duplex;
  createZstdDecompress?: (o?: object) => Duplex;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number; ZSTD_c_nbWorkers?: number };
};
const z = zlib as ZstdZlib;

/** True when this Node has zstd built in (22.15+); otherwise the zstd binary is used. */
export const nativeZstd = typeof z.createZstdCompress === 'function';

export function createCompressor(kind: Compression, options: CompressOptions = {}): Duplex | undefined {
  switch (kind) {
    case 'none':
      return undefined;
    case 'gzip':
      return zlib.createGzip({ level: options.level ?? 6, chunkSize: 1 << 16 });
    case 'zstd': {
      const level = options.level ?? 3;
      if (nativeZstd && z.constants.ZSTD_c_compressionLevel !== undefined) {
        return z.createZstdCompress!({ params: { [z.constants.ZSTD_c_compressionLevel]: level } });
      }
      return zstdProcess(['-q', `-${level}`, '-T0', '-c'], 'compress');
    }
  }
}

export function createDecompressor(kind: Compression): Duplex | undefined {
  switch (kind) {
    case 'none':
      return undefined;
    case 'gzip':
      return zlib.createGunzip({ chunkSize: 1 << 16 });
    case 'zstd':
      if (nativeZstd) return z.createZstdDecompress!();
      return zstdProcess(['-q', '-d', '-c'], 'decompress');
  }
}

/**
 * The zstd binary as a duplex stream. Its output ends only after zstd exited, and a non-zero exit
 * fails the stream, so a broken compression can never look like a complete one.
 */
function zstdProcess(args: string[], step: 'compress' | 'decompress'): Duplex {
  const child = spawn('zstd', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new BkError('TOOL_MISSING', 'zstd not found', { step, hint: 'install zstd (apt-get install zstd), or set compression: gzip' })
          : e,
      ),
    );
    child.on('close', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new BkError('TOOL_FAILED', `zstd ${code === null ? `killed by ${signal}` : `exited with code ${code}`}`, { step, toolOutput: stderr || undefined })),
    );
  });
  exited.catch(() => undefined);
  return new ChildDuplex(child, exited);
}

/**
 * A child's stdin/stdout as one Duplex whose readable side ends only once the child exited 0, so
 * a failed zstd can never pass for a complete stream (execa's duplex() ends with stdout).
 */
class ChildDuplex extends Duplex {
  constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    exited: Promise<void>,
  ) {
    super({ highWaterMark: 1 << 20 });
    const out = child.stdout;
    out.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) out.pause();
    });
    // The readable side ends only after zstd exited 0.
    out.on('end', () => exited.then(() => this.push(null), (e: Error) => this.destroy(e)));
    exited.catch((e: Error) => this.destroy(e));
    // EPIPE on stdin when zstd died is reported through its exit status instead.
    child.stdin.on('error', () => undefined);
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.child.stdin.write(chunk)) cb();
    else this.child.stdin.once('drain', () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.child.stdin.end(() => cb());
  }

  override _destroy(error: Error | null, cb: (e?: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    cb(error);
  }
}

/** Identifies the compression of stored bytes from their first bytes. */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  return 'none';
}

/** The shell command that decompresses to stdout, for hand-restore instructions. */
export function manualDecompress(kind: Compression, file: string): string {
  const q = shellQuote(file);
  return { zstd: `zstd -dc ${q}`, gzip: `gzip -dc ${q}`, none: `cat ${q}` }[kind];
}

export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
