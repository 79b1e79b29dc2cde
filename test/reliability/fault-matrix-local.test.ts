/**
 * The fault matrix on local storage (see matrix.ts for what each case checks). The storage and the
 * restore destinations live on a tmpfs the test mounts, so "disk full" is a real ENOSPC at a random
 * point of the write.
 *
 *   BK_FAULT_SEED=<n>        repeat a run (the seed is printed, and named in every failure)
 *   BK_FAULT_MATRIX=full     every combination instead of a sample
 *   BK_FAULT_CASES=<n>       sample size (default 6 here; every fault kind at least once)
 *   BK_FAULT_ONLY=<text>     only the combinations whose name contains it, e.g. "kill-bk during restore"
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { filesSpec, mysqlSpec, postgresSpec, redisSpec, type Kit, type KitSpec } from './kits.js';
import { caseName, combinations, drawCases, matrixMode, Pair, runCase, type MatrixSetup } from './matrix.js';
import { rng, seedFromEnv } from './seeded.js';
import { mountSmallFs, type SmallFs } from './small-fs.js';
import { localView } from './storage-view.js';

const FILE = 'test/reliability/fault-matrix-local.test.ts';
const seed = seedFromEnv('fault matrix, local storage');
const draw = rng(seed);
const specs: KitSpec[] = [filesSpec, postgresSpec, redisSpec, mysqlSpec].filter((s) => s.available());
const asRoot = process.getuid?.() === 0;
const cases = drawCases(draw.fork('cases'), combinations(specs, { local: { canFill: asRoot, s3: false } }, asRoot), matrixMode(6));
const repro = `BK_FAULT_SEED=${seed} npx vitest run ${FILE}`;

let work: string;
let fs: SmallFs;
let setup: MatrixSetup;
const kits = new Map<string, Kit>();
const pairs = new Map<string, Pair>();

beforeAll(async () => {
  work = await makeTmpDir('bk-fault-local-');
  fs = await mountSmallFs(join(work, 'fs'));
  setup = {
    work,
    lockDir: join(work, 'locks'),
    storages: { local: { view: (kit) => localView('local', join(fs.dir, `repo-${kit}`)), smallFs: fs } },
    restoreFs: fs,
  };
});

afterAll(async () => {
  for (const k of kits.values()) await k.close().catch(() => undefined);
  await fs?.unmount();
  await rmrf(work);
});

async function pairFor(kitName: string, storage: string): Promise<Pair> {
  const key = `${kitName}/${storage}`;
  let pair = pairs.get(key);
  if (pair) return pair;
  let kit = kits.get(kitName);
  if (!kit) {
    kit = await specs.find((s) => s.driver === kitName)!.start(join(work, kitName), join(fs.dir, 'restore'));
    kits.set(kitName, kit);
  }
  pair = new Pair(kit, storage, setup.storages[storage]!.view(kitName), setup, key);
  await pair.writeConfig();
  pairs.set(key, pair);
  return pair;
}

/** Whether each case's fault struck, or bk finished first. */
const outcomes: { name: string; struck: boolean }[] = [];

describe('fault matrix on local storage', () => {
  it.each(cases.map((c) => [caseName(c), c] as const))('%s', async (_name, c) => {
    const label = `[seed ${seed}] ${caseName(c)} — repeat: ${repro}`;
    const caseRng = rng(c.seed);
    const pair = await pairFor(c.kit, c.storage);
    await pair.calibrate('backup', caseRng);
    await pair.calibrate(c.phase, caseRng);
    const r = await runCase(c, setup, pair, caseRng, label);
    console.log(`${caseName(c)}: ${r.struck ?? 'finished before the fault'} → exit ${r.exitCode ?? r.signal}`);
    outcomes.push({ name: caseName(c), struck: r.struck !== undefined });
  });

  it('most faults landed: a run whose faults all missed tested nothing', () => {
    // Cases that failed an assertion recorded nothing; they have failed already.
    const missed = outcomes.filter((o) => !o.struck).map((o) => o.name);
    expect(missed.length, `[seed ${seed}] faults that never landed: ${missed.join('; ')}`).toBeLessThanOrEqual(Math.floor(cases.length / 2));
  });

  it('at the end every listed backup of every repository verifies', async () => {
    for (const pair of pairs.values()) expect((await pair.verifyAll('final check')).length).toBeGreaterThan(0);
  });
});
