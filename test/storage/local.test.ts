// The storage contract against a local directory, and what only a local directory has.
import { readdir } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { LocalStorage } from '../../src/storage/local.js';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { describeStorage } from './conformance.js';

let dir: string | undefined;
describeStorage(
  'local',
  async () => {
    dir = await makeTmpDir('bk-local-conf-');
    return new LocalStorage('local', `${dir}/repo`);
  },
  // Above 16 MiB, so the writes sync as they grow (EarlyWriteback), and fail or abort while a sync may be in flight.
  { teardown: async () => (dir ? rmrf(dir) : undefined), largeBytes: 40 << 20 },
);

it('a body that fails at once leaves no temp file, whenever in the open it fails', async () => {
  const root = await makeTmpDir('bk-local-early-');
  try {
    const storage = new LocalStorage('local', root);
    // Failing before, during and after the temp file's open(2). When the removal could run before
    // the open, about 1 in 100 of these left a file behind (this test failed in 1 of 2 runs then).
    for (let i = 0; i < 1500; i++) {
      const body = new PassThrough();
      body.on('error', () => undefined);
      const fail = () => body.destroy(new Error('source failed'));
      if (i % 3 === 0) setImmediate(fail);
      else void sleep(i % 3 === 1 ? 0 : 1).then(fail);
      await expect(storage.write('app/x.bin', body)).rejects.toThrow();
    }
    expect(await readdir(`${root}/app`)).toEqual([]);
  } finally {
    await rmrf(root);
  }
});
