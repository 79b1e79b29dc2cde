/**
 * What a files backup records for restore drills, computed the same way from the tar stream at
 * backup time (files-tar-tap.ts) and from the restored directory in a drill:
 *
 * - counts: files (hard links count as the files they are once restored), dirs (the root
 *   included), symlinks, other (fifos, devices), bytes (sum of file sizes);
 * - digest: over every entry below the root, of (kind, path, mode, size, content sha256) for
 *   files, (path, mode) for directories, (path, target) for symlinks, (path) for the rest.
 *   Owners and times are left out: a drill restores as whoever runs it, and mtimes say nothing
 *   about content.
 *
 * The digest is a sum modulo 2^256 of each entry's sha256 (an order-independent "AdHash"), so
 * neither side has to sort or keep a list of entries: the backup sees entries in tar's walk
 * order, the drill in its own readdir order, and memory stays constant. It detects changed,
 * missing and extra content; it is not a defence against someone forging a tree to match (the
 * manifest is not signed either; the stored sha256 and age's authentication cover tampering).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeChecks {
  files: number;
  dirs: number;
  symlinks: number;
  other: number;
  bytes: number;
  /** hex, 64 digits. */
  digest: string;
}

const MOD = 1n << 256n;

export class TreeSummary {
  private readonly counts = { files: 0, dirs: 0, symlinks: 0, other: 0, bytes: 0 };
  private sum = 0n;

  /** `path` is relative to the root, "/"-separated, without "./" or a trailing "/"; "" is the root. */
  addFile(path: string, mode: number, size: number, sha256: string): void {
    this.counts.files++;
    this.counts.bytes += size;
    this.add(`f\0${path}\0${(mode & 0o7777).toString(8)}\0${size}\0${sha256}`);
  }

  addDir(path: string, mode: number): void {
    this.counts.dirs++;
    // The root is the destination directory itself; its mode is the drill's, not the backup's.
    if (path !== '') this.add(`d\0${path}\0${(mode & 0o7777).toString(8)}`);
  }

  addSymlink(path: string, target: string): void {
    this.counts.symlinks++;
    this.add(`l\0${path}\0${target}`);
  }

  addOther(path: string): void {
    this.counts.other++;
    this.add(`o\0${path}`);
  }

  result(): TreeChecks {
    return { ...this.counts, digest: this.sum.toString(16).padStart(64, '0') };
  }

  private add(line: string): void {
    this.sum = (this.sum + BigInt(`0x${createHash('sha256').update(line).digest('hex')}`)) % MOD;
  }
}

/** "./a/b/" → "a/b"; "./" → "". */
export function normalizeTarPath(p: string): string {
  return p.replace(/^(\.\/)+/, '').replace(/^\.$/, '').replace(/\/+$/, '');
}

/** The checks of a directory on disk, for comparison with those recorded at backup time. */
export async function summarizeDirectory(root: string): Promise<TreeChecks> {
  const summary = new TreeSummary();
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '' ? root : join(root, rel);
    const s = await lstat(abs);
    if (s.isDirectory()) {
      summary.addDir(rel, s.mode);
      const names = (await readdir(abs)).sort();
      for (const name of names) await visit(rel === '' ? name : `${rel}/${name}`);
    } else if (s.isFile()) {
      summary.addFile(rel, s.mode, s.size, await sha256File(abs));
    } else if (s.isSymbolicLink()) {
      summary.addSymlink(rel, await readlink(abs));
    } else {
      summary.addOther(rel);
    }
  };
  await visit('');
  return summary.result();
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
