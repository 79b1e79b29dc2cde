// TarScanner against archives made by real GNU tar in each of its formats, checked entry by entry
// against node-tar's Parser (a well-kept reader used as the oracle), fed in chunk sizes that cut
// headers, pax records and contents at every kind of boundary.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { link, mkdir, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TarScanner, type TarHeader } from '../../src/drivers/tar-scan.js';
import { makeTmpDir, rmrf } from '../harness/index.js';

interface Seen {
  type: string;
  path: string;
  linkpath: string;
  mode: number;
  size: number;
  sha256?: string;
}

let dir: string;
const archives = new Map<string, Buffer>();

beforeAll(async () => {
  dir = await makeTmpDir('bk-tar-scan-');
  const src = join(dir, 'src');
  const deep = join(src, 'd'.repeat(90), 'e'.repeat(90));
  await mkdir(deep, { recursive: true });
  await writeFile(join(src, 'empty'), '');
  await writeFile(join(src, 'one-block'), Buffer.alloc(512, 1));
  await writeFile(join(src, 'big.bin'), createHash('sha512').update('seed').digest().toString('hex').repeat(5000));
  await writeFile(join(deep, `${'long name '.repeat(12)}.txt`), 'deep\n');
  await writeFile(join(src, 'ünïcødé ✓.txt'), 'u\n');
  await writeFile(join(src, 'private'), 'p');
  await chmod(join(src, 'private'), 0o600);
  await link(join(src, 'one-block'), join(src, 'hard-link'));
  await symlink(join('d'.repeat(90), 'e'.repeat(90), `${'long name '.repeat(12)}.txt`), join(src, 'long-symlink'));
  await symlink('empty', join(src, 'short-symlink'));
  for (const format of ['posix', 'gnu', 'ustar']) {
    // ustar cannot hold the long link target; that format gets the tree without it.
    const exclude = format === 'ustar' ? ['--exclude=./long-symlink', `--exclude=./${'d'.repeat(90)}`] : [];
    const out = await execa('tar', ['--create', '--file=-', `--directory=${src}`, `--format=${format}`, ...exclude, '.'], { encoding: 'buffer' });
    archives.set(format, Buffer.from(out.stdout));
  }
});
afterAll(async () => {
  if (dir) await rmrf(dir);
});

function scan(archive: Buffer, chunk: number): { seen: Seen[]; unfinished?: string } {
  const seen: Seen[] = [];
  const scanner = new TarScanner((h: TarHeader) => {
    const entry: Seen = { type: h.type, path: h.path, linkpath: h.linkpath, mode: h.mode, size: h.size };
    seen.push(entry);
    if (h.type !== '0') return undefined;
    const hash = createHash('sha256');
    return { data: (d) => hash.update(d), end: () => (entry.sha256 = hash.digest('hex')) };
  });
  for (let i = 0; i < archive.length; i += chunk) scanner.feed(archive.subarray(i, i + chunk));
  return { seen, unfinished: scanner.unfinished() };
}

async function oracle(archive: Buffer): Promise<Seen[]> {
  const seen: Seen[] = [];
  const codes: Record<string, string> = { File: '0', OldFile: '0', Link: '1', SymbolicLink: '2', Directory: '5' };
  const parser = new tar.Parser({
    onReadEntry: (e) => {
      const entry: Seen = { type: codes[e.type] ?? e.type, path: e.path, linkpath: e.linkpath ?? '', mode: e.mode ?? 0, size: e.size ?? 0 };
      seen.push(entry);
      if (entry.type === '0') {
        const hash = createHash('sha256');
        e.on('data', (d: Buffer) => hash.update(d));
        e.on('end', () => (entry.sha256 = hash.digest('hex')));
      } else e.resume();
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    parser.end(archive);
  });
  return seen;
}

describe('TarScanner', () => {
  for (const format of ['posix', 'gnu', 'ustar']) {
    it.each([1, 7, 100, 511, 512, 513, 4096, 65536])(`reads GNU tar --format=${format} like node-tar does, in chunks of %i bytes`, async (chunk) => {
      const archive = archives.get(format)!;
      const expected = await oracle(archive);
      const { seen, unfinished } = scan(archive, chunk);
      expect(unfinished).toBeUndefined();
      expect(seen).toEqual(expected);
      // The tree is really in there: long paths, unicode, a hard link, modes and contents.
      expect(seen.map((s) => s.path)).toContain('./ünïcødé ✓.txt');
      // Which of the two paths tar meets first (and stores as the file) is up to readdir order.
      const links = seen.filter((s) => s.path === './hard-link' || s.path === './one-block');
      expect(links.map((s) => s.type).sort()).toEqual(['0', '1']);
      expect(links.find((s) => s.type === '1')?.linkpath).toBe(links.find((s) => s.type === '0')?.path);
      expect(seen.find((s) => s.path === './private')?.mode).toBe(0o600);
      expect(seen.find((s) => s.path === './big.bin')?.size).toBe(640_000);
      if (format !== 'ustar') {
        expect(seen.some((s) => s.path.endsWith(`${'long name '.repeat(12)}.txt`) && s.sha256 === createHash('sha256').update('deep\n').digest('hex'))).toBe(true);
        expect(seen.find((s) => s.path === './long-symlink')?.linkpath).toHaveLength(90 + 1 + 90 + 1 + 124);
      }
    });
  }

  it('says where a cut-short archive ends', () => {
    const archive = archives.get('posix')!;
    expect(scan(archive.subarray(0, 700), 4096).unfinished).toBe('the archive ends inside an entry');
    expect(scan(archive.subarray(0, 100), 4096).unfinished).toBe('the archive ends inside a header');
  });

  it('refuses a header whose checksum is wrong', () => {
    const archive = Buffer.from(archives.get('gnu')!);
    archive[10]! ^= 0x20; // inside the first header's name
    expect(() => scan(archive, 65536)).toThrow('a tar header has a wrong checksum');
  });
});
