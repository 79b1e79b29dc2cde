// extractTar with real GNU tar: tar exits at the archive's end marker, before the stream it reads
// has ended, and the stream is verified (sha256) only at its end. A stream that fails after tar is
// done must fail the extraction, or a staged restore would be moved into place unverified.
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractTar } from '../../src/drivers/gnu-tar.js';
import { makeTmpDir, rmrf } from '../harness/index.js';

let dir: string;
let archive: Buffer;

beforeAll(async () => {
  dir = await makeTmpDir('bk-gnu-tar-');
  await mkdir(join(dir, 'src', 'sub'), { recursive: true });
  await writeFile(join(dir, 'src', 'a.txt'), 'alpha\n');
  await writeFile(join(dir, 'src', 'sub', 'b.bin'), Buffer.alloc(300_000, 7));
  archive = Buffer.from((await execa('tar', ['--create', '--file=-', '--directory', join(dir, 'src'), '--format=posix', '.'], { encoding: 'buffer' })).stdout);
});
afterAll(async () => {
  if (dir) await rmrf(dir);
});

/** The archive in 64 KiB chunks, then `tail` after a pause long enough for tar to have exited. */
function stream(tail: 'end' | Error): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < archive.length; i += 65536) yield archive.subarray(i, i + 65536);
      // What follows the tar data in a verified stream: the zero padding of the last record
      // written by bk's packer, then the end, where the sha256 check runs.
      yield Buffer.alloc(10240);
      await sleep(400);
      if (tail instanceof Error) throw tail;
    })(),
  );
}

describe('extractTar', () => {
  it('extracts a whole stream and returns after its end', async () => {
    const to = join(dir, 'ok');
    await mkdir(to);
    await extractTar(stream('end'), to);
    expect(await readFile(join(to, 'a.txt'), 'utf8')).toBe('alpha\n');
    expect((await readFile(join(to, 'sub', 'b.bin'))).length).toBe(300_000);
  });

  it('fails when the stream fails after tar reached the end marker', async () => {
    const to = join(dir, 'late');
    await mkdir(to);
    await expect(extractTar(stream(new Error('decompressed payload does not match its manifest')), to)).rejects.toThrow(/does not match its manifest/);
  });
});
