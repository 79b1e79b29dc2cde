import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Driver } from '../../src/drivers/driver.js';
import { runBackup } from '../../src/engine/backup.js';
import { silentLogger } from '../../src/log.js';

const driver: Driver = {
  kind: 'test',
  payloadExt: 'bin',
  check: async () => [],
  backup: async () => ({ stream: Readable.from([Buffer.from('data')]), done: Promise.resolve({ tools: [] }) }),
  restore: async () => undefined,
  describeRestoreTarget: () => 'nowhere',
  manualRestoreCommand: () => 'cat',
};

describe('runBackup', () => {
  it('fails instead of reporting ok when there is no storage to write to', async () => {
    const r = await runBackup({
      target: 't',
      driver,
      storages: [],
      compression: 'none',
      logger: silentLogger,
      signal: new AbortController().signal,
      bkVersion: 'test',
    });
    expect(r.status).toBe('failed');
    expect(r.error?.message).toMatch(/no storage/);
  });
});
