import { accessSync, constants, readdirSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** PostgreSQL's versioned bin dirs on Debian/Ubuntu, newest major first. */
export function postgresBinDirs(): string[] {
  try {
    return readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => `/usr/lib/postgresql/${v}/bin`);
  } catch {
    return [];
  }
}

/**
 * Absolute path of the first of `names` found on PATH, then in the sbin dirs (not on a
 * non-root PATH) and `extraDirs`. Throws a readable error if none exists.
 */
export function findBinary(names: readonly string[], extraDirs: readonly string[] = []): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin', ...extraDirs];
  for (const name of names) {
    for (const dir of dirs) {
      if (!dir) continue;
      const candidate = join(dir, name);
      if (isExecutable(candidate)) return candidate;
    }
  }
  throw new Error(`test harness: none of ${names.join(', ')} found on PATH or in ${extraDirs.join(', ') || '/usr/sbin'}`);
}

/** Directory holding the real binary behind `path` (resolves /usr/local/bin symlinks). */
export function realBinDir(path: string): string {
  return dirname(realpathSync(path));
}
