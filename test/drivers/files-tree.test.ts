// The files driver's restore-test checks: what the tar tap records while packing equals what a
// walk of the same tree on disk finds, and every kind of change moves the digest.
import { execa } from 'execa';
import { chmod, link, mkdir, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilesDriver } from '../../src/drivers/files.js';
import { TarTreeTap } from '../../src/drivers/files-tar-tap.js';
import { summarizeDirectory, type TreeChecks } from '../../src/drivers/files-tree.js';
import { createLogger } from '../../src/log.js';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { buildTree } from '../crypto/fixtures.js';

let dir: string;
let src: string;

async function packedChecks(source: string): Promise<TreeChecks> {
  const driver = new FilesDriver('t', { driver: 'files', source, exclude: [] });
  const session = await driver.backup({ signal: new AbortController().signal, logger: createLogger({ level: 'silent', format: 'json' }) });
  await pipeline(session.stream, new Writable({ write: (_c, _e, cb) => cb() }));
  return (await session.done).checks as unknown as TreeChecks;
}

beforeAll(async () => {
  dir = await makeTmpDir('bk-files-tree-');
  src = join(dir, 'src');
  await mkdir(src);
  await buildTree(src);
  // More hard links (one to a file in a subdirectory) and a long name (a PAX header in the tar).
  await link(join(src, 'docs/nested/leaf.txt'), join(src, 'leaf-link'));
  await link(join(src, 'docs/nested/leaf.txt'), join(src, 'docs/leaf-link-2'));
  await writeFile(join(src, `${'n'.repeat(150)}.txt`), 'long name\n');
});
afterAll(async () => {
  if (dir) await rmrf(dir);
});

describe('files tree checks', () => {
  it('the tar tap and a walk of the directory agree, hard links counted as the files they restore to', async () => {
    const packed = await packedChecks(src);
    expect(packed).toEqual(await summarizeDirectory(src));
    expect(packed).toMatchObject({ files: 11, dirs: 4, symlinks: 1, other: 0 });
    expect(packed.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('the hard-linked files may be known late: every hash waits for them, and past the limit the stream does', async () => {
    const tar = await execa('tar', ['--create', '--file=-', `--directory=${src}`, '--format=posix', '.'], { encoding: 'buffer' });
    const linked = String((await execa('find', ['.', '-type', 'f', '-links', '+1'], { cwd: src })).stdout).split('\n').filter(Boolean);
    expect(linked.length).toBeGreaterThan(1);
    const archive = Buffer.from(tar.stdout);
    for (const pendingMax of [1_000, 1]) {
      let known!: (paths: string[]) => void;
      const tap = new TarTreeTap(pendingMax);
      tap.learnMultiLinked(new Promise((resolve) => (known = resolve)));
      let out = 0;
      tap.on('data', (d: Buffer) => (out += d.length));
      const ended = new Promise((resolve, reject) => tap.on('end', resolve).on('error', reject));
      for (let i = 0; i < archive.length; i += 512) tap.write(archive.subarray(i, i + 512));
      tap.end();
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Not finished before the list is known; with a limit of one file, not even through the data.
      expect(tap.writableFinished).toBe(false);
      if (pendingMax === 1) expect(out).toBeLessThan(archive.length / 2);
      known(linked);
      await ended;
      expect(tap.result(), `pendingMax ${pendingMax}`).toEqual(await summarizeDirectory(src));
    }
  });

  it('every kind of change moves the digest', async () => {
    const base = (await summarizeDirectory(src)).digest;
    const changes: [string, () => Promise<void>, () => Promise<void>][] = [
      ['content, same size', () => writeFile(join(src, 'block.bin'), Buffer.alloc(512, 'z')), () => writeFile(join(src, 'block.bin'), Buffer.alloc(512, 'a'))],
      ['mode', () => chmod(join(src, 'run.sh'), 0o700), () => chmod(join(src, 'run.sh'), 0o755)],
      ['directory mode', () => chmod(join(src, 'empty'), 0o700), () => chmod(join(src, 'empty'), 0o755)],
      ['name', () => rename(join(src, 'zero.txt'), join(src, 'zero2.txt')), () => rename(join(src, 'zero2.txt'), join(src, 'zero.txt'))],
      [
        'symlink target',
        async () => {
          await unlink(join(src, 'link-readme'));
          await symlink('secret.key', join(src, 'link-readme'));
        },
        async () => {
          await unlink(join(src, 'link-readme'));
          await symlink('docs/readme.txt', join(src, 'link-readme'));
        },
      ],
    ];
    for (const [what, change, undo] of changes) {
      await change();
      expect((await summarizeDirectory(src)).digest, what).not.toBe(base);
      await undo();
      expect((await summarizeDirectory(src)).digest, `${what} undone`).toBe(base);
    }
  });
});
