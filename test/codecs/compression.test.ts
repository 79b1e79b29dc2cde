import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCompressor, createDecompressor, nativeZstd, sniffCompression, type Compression } from '../../src/codecs/compression.js';
import { BkError } from '../../src/errors.js';

/** Compressible but not trivial: repeated lines with counters, plus a random block. */
function sample(): Buffer {
  const lines = Array.from({ length: 200_000 }, (_, i) => `INSERT INTO t VALUES (${i}, 'row ${i % 977}');\n`).join('');
  return Buffer.concat([Buffer.from(lines), randomBytes(3 << 20)]);
}

/** Feeds `data` in 64 KiB chunks, so the codec sees a stream, not one buffer. */
function source(data: Buffer): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at >= data.length) return this.push(null);
      this.push(data.subarray(at, at + (1 << 16)));
      at += 1 << 16;
    },
  });
}

function collect(into: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      into.push(chunk);
      cb();
    },
  });
}

async function through(kind: Compression, data: Buffer, direction: 'compress' | 'decompress'): Promise<Buffer> {
  const codec = direction === 'compress' ? createCompressor(kind) : createDecompressor(kind);
  const out: Buffer[] = [];
  if (!codec) await pipeline(source(data), collect(out));
  else await pipeline(source(data), codec, collect(out));
  return Buffer.concat(out);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let dir: string;
let data: Buffer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-codec-'));
  data = sample();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('compression', () => {
  it('uses the zstd binary where Node has no zstd (Node 20), so these tests exercise the pipe', () => {
    if (process.versions.node.startsWith('20.')) expect(nativeZstd).toBe(false);
  });

  it.each<Compression>(['zstd', 'gzip', 'none'])('%s round-trips byte for byte', async (kind) => {
    const packed = await through(kind, data, 'compress');
    if (kind !== 'none') expect(packed.length).toBeLessThan(data.length);
    expect(sniffCompression(packed)).toBe(kind);
    const unpacked = await through(kind, packed, 'decompress');
    expect(unpacked.length).toBe(data.length);
    expect(sha(unpacked)).toBe(sha(data));
  });

  it('writes standard zstd and gzip: the CLI tools decompress it', async () => {
    for (const [kind, tool] of [
      ['zstd', 'zstd'],
      ['gzip', 'gzip'],
    ] as const) {
      const file = join(dir, `sample.${kind}`);
      await writeFile(file, await through(kind, data, 'compress'));
      const res = await execa(tool, ['-dc', file], { encoding: 'buffer', maxBuffer: 64 << 20 });
      expect(sha(Buffer.from(res.stdout))).toBe(sha(data));
    }
  });

  it('reads what the zstd CLI wrote (multi-threaded, several frames)', async () => {
    const file = join(dir, 'cli.zst');
    await writeFile(join(dir, 'cli.raw'), data);
    await execa('zstd', ['-q', '-T0', '-6', '--block-size=1MiB', '-o', file, join(dir, 'cli.raw')]);
    const second = await execa('zstd', ['-q', '-c', join(dir, 'cli.raw')], { encoding: 'buffer', maxBuffer: 64 << 20 });
    // Two concatenated frames are one valid zstd stream.
    const twoFrames = Buffer.concat([await readFile(file), Buffer.from(second.stdout)]);
    const out = await through('zstd', twoFrames, 'decompress');
    expect(sha(out)).toBe(sha(Buffer.concat([data, data])));
  });

  it.each<Compression>(['zstd', 'gzip'])('%s: corrupt input fails the stream', async (kind) => {
    const packed = await through(kind, data, 'compress');
    const broken = Buffer.from(packed);
    for (let i = 64; i < 4096; i++) broken[i] = broken[i]! ^ 0x5a;
    await expect(through(kind, broken, 'decompress')).rejects.toThrow();
  });

  it('zstd: truncated input fails the stream instead of ending short', async () => {
    const packed = await through('zstd', data, 'compress');
    const err = await through('zstd', packed.subarray(0, packed.length - 100), 'decompress').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BkError);
    expect((err as BkError).code).toBe('TOOL_FAILED');
    expect((err as BkError).toolOutput ?? '').toMatch(/truncat|premature|unexpected end/i);
  });

  describe('a failing zstd binary', () => {
    const savedPath = process.env.PATH;
    afterAll(() => {
      process.env.PATH = savedPath;
    });

    it('fails the stream when zstd exits non-zero after writing output', async () => {
      const bin = join(dir, 'fakebin');
      await execa('mkdir', ['-p', bin]);
      // Reads some input, writes plausible output, then dies: the stream must not look complete.
      await writeFile(join(bin, 'zstd'), '#!/bin/sh\nhead -c 100000 >/dev/null\nprintf "partial"\necho "zstd: out of memory" >&2\nexit 11\n');
      await chmod(join(bin, 'zstd'), 0o755);
      process.env.PATH = `${bin}:${savedPath}`;
      const err = await through('zstd', data, 'compress').then(
        () => undefined,
        (e: unknown) => e,
      );
      process.env.PATH = savedPath;
      expect(err).toBeInstanceOf(BkError);
      expect((err as BkError).code).toBe('TOOL_FAILED');
      expect((err as BkError).message).toContain('exited with code 11');
      expect((err as BkError).toolOutput).toContain('out of memory');
    });

    it('fails the stream when zstd is killed', async () => {
      const bin = join(dir, 'fakebin2');
      await execa('mkdir', ['-p', bin]);
      await writeFile(join(bin, 'zstd'), '#!/bin/sh\nhead -c 1000 >/dev/null\nkill -9 $$\n');
      await chmod(join(bin, 'zstd'), 0o755);
      process.env.PATH = `${bin}:${savedPath}`;
      const err = await through('zstd', data, 'compress').then(
        () => undefined,
        (e: unknown) => e,
      );
      process.env.PATH = savedPath;
      expect((err as BkError).message).toMatch(/killed by SIGKILL/);
    });

    it('says how to install zstd when it is missing', async () => {
      process.env.PATH = join(dir, 'empty-path');
      const err = await through('zstd', data, 'compress').then(
        () => undefined,
        (e: unknown) => e,
      );
      process.env.PATH = savedPath;
      expect(err).toBeInstanceOf(BkError);
      expect((err as BkError).code).toBe('TOOL_MISSING');
      expect((err as BkError).hint).toMatch(/apt-get install zstd/);
    });
  });
});
