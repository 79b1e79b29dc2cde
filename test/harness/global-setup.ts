/**
 * Once per `npm test`: bk's cache (manifest-cache.ts) goes to a temp directory of this run, for the
 * tests in process and every bk they start (cleanEnv passes BK_CACHE_DIR on), never to ~/.cache.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default async function setup(): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-test-cache-'));
  process.env.BK_CACHE_DIR = dir;
  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
}
