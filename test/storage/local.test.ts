// The storage contract against a local directory.
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
  { teardown: async () => (dir ? rmrf(dir) : undefined) },
);
