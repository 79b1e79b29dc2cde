import { readFileSync } from 'node:fs';

/** bk's own version, from package.json (recorded in every manifest). */
export const BK_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
