/**
 * Small source trees and an independent listing of a tree (path, type, mode, size, sha256, link
 * target) to compare a restore with its source, for the encryption and drill tests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Nested dirs with modes, an empty dir and file, a symlink, a hard link, a 512-byte and a 1 MiB random file. */
export async function buildTree(root: string, variant = 'a'): Promise<void> {
  await mkdir(join(root, 'docs/nested'), { recursive: true });
  await mkdir(join(root, 'empty'), { recursive: true });
  await writeFile(join(root, 'docs/readme.txt'), `read me (${variant})\n`);
  await writeFile(join(root, 'docs/nested/leaf.txt'), `leaf ${variant}\n`.repeat(50));
  await writeFile(join(root, 'secret.key'), `private ${variant}\n`);
  await chmod(join(root, 'secret.key'), 0o600);
  await writeFile(join(root, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'run.sh'), 0o755);
  await writeFile(join(root, 'zero.txt'), '');
  await writeFile(join(root, 'block.bin'), Buffer.alloc(512, variant));
  await writeFile(join(root, 'random.bin'), randomBytes(1 << 20));
  await link(join(root, 'docs/readme.txt'), join(root, 'hard-readme.txt'));
  await symlink('docs/readme.txt', join(root, 'link-readme'));
  await chmod(join(root, 'docs/nested'), 0o750);
}

export interface Entry {
  path: string;
  type: string;
  mode: string;
  size?: number;
  sha256?: string;
  link?: string;
}

export async function snapshot(root: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const full = rel ? join(root, rel) : root;
    const st = await lstat(full);
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    const e: Entry = { path: rel || '.', type, mode: type === 'symlink' ? '-' : (st.mode & 0o7777).toString(8) };
    if (type === 'file') {
      e.size = st.size;
      e.sha256 = createHash('sha256').update(await readFile(full)).digest('hex');
    }
    if (type === 'symlink') e.link = await readlink(full);
    // The root's own mode is the destination's, not the backup's.
    if (rel === '') e.mode = '-';
    out.push(e);
    if (type === 'dir') for (const name of (await readdir(full)).sort()) await walk(rel ? `${rel}/${name}` : name);
  };
  await walk('');
  return out;
}
