/**
 * The directory bk is installed in: the nearest one above this module that holds bk's
 * package.json. Walking up gives the same answer from dist/ as compiled by tsc and from
 * dist/bundle/ as bundled (scripts/bundle.mjs), where a fixed "../" would not.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Installation {
  root: string;
  version: string;
}

export const INSTALLATION: Installation | undefined = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'bk' && pkg.version) return { root: dir, version: pkg.version };
    } catch {
      // No (readable) package.json here: keep walking up.
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
})();
