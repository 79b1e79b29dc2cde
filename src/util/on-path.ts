/** Finding executables the way execvp will: on PATH, or at the path given when the name has a slash. */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The first of `names` that is an executable file, as an absolute path (or the path given). */
export function onPath(names: readonly string[], path: string = process.env.PATH ?? ''): string | undefined {
  for (const name of names) {
    const candidates = name.includes('/') ? [name] : path.split(delimiter).filter(Boolean).map((dir) => join(dir, name));
    for (const p of candidates) {
      try {
        accessSync(p, constants.X_OK);
        if (statSync(p).isFile()) return p;
      } catch {
        /* next */
      }
    }
  }
  return undefined;
}
