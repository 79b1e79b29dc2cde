/** One hash for a directory tree: names, types, modes, sizes, contents and link targets. */
import { createHash } from 'node:crypto';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from './storage-view.js';

export async function treeDigest(root: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const full = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const s = await lstat(full);
      const mode = (s.mode & 0o7777).toString(8);
      if (s.isDirectory()) {
        lines.push(`d ${JSON.stringify(r)} ${mode}`);
        await walk(full, r);
      } else if (s.isSymbolicLink()) lines.push(`l ${JSON.stringify(r)} ${JSON.stringify(await readlink(full))}`);
      else if (s.isFile()) lines.push(`f ${JSON.stringify(r)} ${mode} ${s.size} ${await sha256File(full)}`);
      else lines.push(`o ${JSON.stringify(r)} ${mode}`);
    }
  };
  await walk(root, '');
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}
