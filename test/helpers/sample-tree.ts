/**
 * A directory tree with everything a files backup must bring back: nested and empty directories,
 * relative/absolute/dangling/escaping symlinks, modes including setuid/setgid/sticky and
 * group-writable ones, odd and unicode names, a hardlink, long paths, owners, a large random file,
 * and fixed mtimes on everything (directories last, so creating entries does not move them).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, chown, link, lutimes, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';

export interface SampleTreeOptions {
  /** Size of big.bin in MiB (random, incompressible); 0 leaves it out. */
  bigFileMiB?: number;
}

/** Writes `mib` MiB of random bytes without holding them in memory. */
export async function writeRandomFile(path: string, mib: number): Promise<void> {
  let left = mib;
  await pipeline(
    new Readable({
      read() {
        if (left-- <= 0) return this.push(null);
        this.push(randomBytes(1 << 20));
      },
    }),
    createWriteStream(path),
  );
}

const T = (iso: string) => new Date(iso);

export async function buildSampleTree(root: string, options: SampleTreeOptions = {}): Promise<void> {
  const dirs: [string, number][] = [
    ['.', 0o755],
    ['docs', 0o755],
    ['docs/nested', 0o750],
    ['docs/nested/deeper', 0o700],
    ['empty', 0o755],
    ['empty-nested', 0o755],
    ['empty-nested/a', 0o755],
    ['empty-nested/a/b', 0o711],
    ['shared', 0o2775],
    ['sticky', 0o1777],
    ['readonly', 0o555],
    ['ünïcödé', 0o755],
    ['dir with spaces', 0o755],
    ['a'.repeat(60), 0o755],
    [`${'a'.repeat(60)}/${'b'.repeat(60)}`, 0o755],
  ];
  for (const [d] of dirs) await mkdir(join(root, d), { recursive: true });

  const files: [string, string | Buffer, number][] = [
    ['docs/readme.txt', 'read me\n', 0o644],
    ['docs/nested/deeper/leaf.txt', 'a leaf\n'.repeat(100), 0o644],
    ['secret.key', 'private\n', 0o600],
    ['run.sh', '#!/bin/sh\necho hi\n', 0o755],
    ['group-read.txt', 'g\n', 0o640],
    ['group-write.txt', 'gw\n', 0o664],
    ['world-write.txt', 'ww\n', 0o666],
    ['setuid-tool', 'not really a binary\n', 0o4755],
    ['setgid-tool', 'not really a binary either\n', 0o2755],
    ['shared/in-setgid-dir.txt', 'shared\n', 0o664],
    ['sticky/tmpfile', 't\n', 0o644],
    ['readonly/inside.txt', 'ro\n', 0o444],
    ['zero.txt', '', 0o644],
    ['ünïcödé/日本語.txt', 'こんにちは\n', 0o644],
    ['emoji-😀.txt', '🙂\n', 0o644],
    ['dir with spaces/name with spaces.txt', 'spaces\n', 0o644],
    [`quote'and"double.txt`, 'quotes\n', 0o644],
    ['new\nline.txt', 'newline in the name\n', 0o644],
    ['tab\tand\\backslash', 'tab\n', 0o644],
    ['-leading-dash', 'dash\n', 0o644],
    ['*glob?[chars]', 'glob chars\n', 0o644],
    ['hard-a.txt', 'same inode\n', 0o644],
    [`${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(200)}.txt`, 'long path\n', 0o644],
    ['binary.dat', randomBytes(100_000), 0o644],
  ];
  for (const [f, body, mode] of files) {
    await writeFile(join(root, f), body);
    await chmod(join(root, f), mode);
  }
  if (options.bigFileMiB) await writeRandomFile(join(root, 'big.bin'), options.bigFileMiB);
  await link(join(root, 'hard-a.txt'), join(root, 'docs/hard-b.txt'));
  // Owners other than the restoring user come back when bk runs as root.
  if (process.getuid?.() === 0) {
    await chown(join(root, 'group-read.txt'), 1234, 5678);
    await chown(join(root, 'shared'), 0, 4321);
    await chmod(join(root, 'shared'), 0o2775); // chown clears setgid
  }

  const links: [string, string][] = [
    ['link-rel', 'docs/readme.txt'],
    ['docs/nested/link-up', '../readme.txt'],
    ['docs/nested/link-to-parent', '..'],
    ['link-dir', 'docs'],
    ['link-abs', '/etc/hostname'],
    ['link-outside', '../somewhere/else'],
    ['link-dangling', 'does/not/exist'],
    ['ünïcödé/línk', '日本語.txt'],
  ];
  for (const [l, to] of links) await symlink(to, join(root, l));

  // Fixed times: files and links first, directories deepest first.
  let n = 0;
  for (const [f] of files) await utimes(join(root, f), T('2020-01-02T03:04:05Z'), new Date(Date.UTC(2001, 1, 3, 4, 5, 6) + n++ * 86_400_000));
  if (options.bigFileMiB) await utimes(join(root, 'big.bin'), T('2020-01-01T00:00:00Z'), T('2019-05-06T07:08:09Z'));
  for (const [l] of links) await lutimes(join(root, l), T('2020-01-01T00:00:00Z'), new Date(Date.UTC(2010, 6, 1) + n++ * 3_600_000));
  for (const [d, mode] of [...dirs].reverse()) {
    await chmod(join(root, d), mode);
    await utimes(join(root, d), T('2020-01-01T00:00:00Z'), new Date(Date.UTC(2015, 0, 1) + n++ * 60_000));
  }
}
