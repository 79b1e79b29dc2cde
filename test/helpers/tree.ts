/**
 * A full listing of a directory tree — path, type, mode, size, sha256, mtime, link target, owner,
 * hardlink group — so a restored tree can be compared with its source in one `toEqual`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: string;
  size?: number;
  sha256?: string;
  /** Whole seconds: tar keeps seconds. */
  mtime: number;
  link?: string;
  uid: number;
  gid: number;
  /** For files with several links: the first path (in listing order) of the same inode. */
  hardlinkOf?: string;
}

export interface TreeOptions {
  /** Leave directory mtimes out (they change whenever an entry inside is created). */
  dirMtimes?: boolean;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function listTree(root: string, options: TreeOptions = {}): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const inodes = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const full = rel ? join(root, rel) : root;
    const st = await lstat(full);
    const type: TreeEntry['type'] = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    const entry: TreeEntry = { path: rel || '.', type, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), mtime: Math.floor(st.mtimeMs / 1000), uid: st.uid, gid: st.gid };
    if (type === 'dir' && options.dirMtimes === false) entry.mtime = 0;
    if (type === 'symlink') {
      entry.link = await readlink(full);
      // A symlink's own mode is always 0777 on Linux and not restorable; leave it out.
      entry.mode = '-';
    }
    if (type === 'file') {
      entry.size = st.size;
      entry.sha256 = await sha256File(full);
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = inodes.get(key);
        if (first) entry.hardlinkOf = first;
        else inodes.set(key, entry.path);
      }
    }
    out.push(entry);
    if (type === 'dir') {
      const names = (await readdir(full)).sort();
      for (const name of names) await walk(rel ? `${rel}/${name}` : name);
    }
  };
  await walk('');
  return out;
}
