/** Shared setup of the prune end-to-end tests. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { listBackups } from '../../src/catalog/catalog.js';
import { LocalStorage } from '../../src/storage/local.js';

let n = 0;

/** A fresh repository and lock directory under `root`. */
export async function fresh(root: string): Promise<{ repo: string; storage: LocalStorage; env: Record<string, string>; dir: string }> {
  const dir = join(root, `t${++n}`);
  await mkdir(dir, { recursive: true });
  const repo = join(dir, 'repo');
  return { dir, repo, storage: new LocalStorage('repo', repo), env: { BK_LOCK_DIR: join(dir, 'locks'), TZ: 'UTC' } };
}

export interface PruneJson {
  results: {
    target: string;
    storage: string;
    policySource: string;
    keep: { id: string; reasons: string[] }[];
    remove: { id: string }[];
    garbage: { key: string; reason: string }[];
    error: { code: string; message: string } | null;
  }[];
}

export async function files(storage: LocalStorage, target: string): Promise<string[]> {
  return (await storage.list(`${target}/`)).map((o) => o.key.slice(target.length + 1)).sort();
}

/** Every listed backup still has its archive. */
export async function expectNoManifestWithoutArchive(storage: LocalStorage, target: string): Promise<void> {
  const { backups, problems } = await listBackups(storage, target);
  expect(problems).toEqual([]);
  for (const b of backups) expect(await storage.stat(b.manifest.archive), b.manifest.id).toBeDefined();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
