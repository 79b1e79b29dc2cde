/**
 * A dump that fails at once — the database went away between bk's connection check and the dump
 * tool's start — must fail the backup like any other dump failure, never crash bk with an
 * unhandled stream error (found by the fault matrix: redis × local, server-stop during backup).
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Driver } from '../../src/drivers/driver.js';
import { runBackup } from '../../src/engine/backup.js';
import { BkError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { LocalStorage } from '../../src/storage/local.js';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { localView } from './storage-view.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTmpDir('bk-early-failure-');
});
afterAll(async () => {
  await rmrf(dir);
});

function failingAtOnce(): Driver {
  return {
    kind: 'files',
    payloadExt: 'bin',
    check: async () => [],
    backup: async () => {
      const stream = new PassThrough();
      const error = new BkError('TOOL_FAILED', 'the dump tool exited with code 1', { step: 'dump' });
      // Before the storage had a chance to attach to its branch.
      process.nextTick(() => stream.destroy(error));
      return { stream, done: Promise.reject(error) };
    },
    restore: async () => undefined,
    describeRestoreTarget: () => '',
    manualRestoreCommand: () => '',
  };
}

it.each([1, 2, 3])('a dump failing at once, %i storage(s): failed, no crash, nothing left behind', async (n) => {
  const roots = Array.from({ length: n }, (_, i) => `${dir}/n${n}-s${i}`);
  for (let round = 0; round < 5; round++) {
    const r = await runBackup({
      target: 'app',
      driver: failingAtOnce(),
      storages: roots.map((root, i) => new LocalStorage(`s${i}`, root)),
      compression: 'zstd',
      logger: silentLogger,
      signal: new AbortController().signal,
      bkVersion: 'test',
    });
    expect(r.status).toBe('failed');
    expect(r.error?.message).toMatch(/exited with code 1/);
  }
  for (const root of roots) {
    const view = localView('s', root);
    expect(await view.incomplete()).toEqual([]);
    expect([...(await view.objects()).keys()]).toEqual([]);
  }
});
