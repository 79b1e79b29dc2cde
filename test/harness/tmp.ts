import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Create a fresh, private (0700) directory under os.tmpdir(), e.g. /tmp/bk-mariadb-AbC123. */
export async function makeTmpDir(prefix = 'bk-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** `rm -rf`: never fails on a missing path; retries briefly in case a dying server still writes. */
export async function rmrf(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
