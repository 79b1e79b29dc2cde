/**
 * The fault matrix on S3 storage (see matrix.ts for what each case checks): s3rver behind the
 * test fault proxy, which answers errors, cuts connections and stalls transfers on command, on
 * top of the faults every storage gets (kill -9, SIGTERM, the dump tool killed, the database
 * server crashing). Restores write to a tmpfs the test mounts, so "disk full" applies to them.
 *
 *   BK_FAULT_SEED=<n>        repeat a run (the seed is printed, and named in every failure)
 *   BK_FAULT_MATRIX=full     every combination instead of a sample
 *   BK_FAULT_CASES=<n>       sample size (default 8; every fault kind at least once)
 *   BK_FAULT_ONLY=<text>     only the combinations whose name contains it
 */
import { S3Client } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf, startFaultProxy, startS3, type FaultProxy, type S3Server } from '../harness/index.js';
import { filesSpec, mysqlSpec, postgresSpec, redisSpec, type Kit, type KitSpec } from './kits.js';
import { caseName, combinations, drawCases, matrixMode, Pair, runCase, type MatrixSetup } from './matrix.js';
import { rng, seedFromEnv, type Rng } from './seeded.js';
import { mountSmallFs, type SmallFs } from './small-fs.js';
import { s3View } from './storage-view.js';

const FILE = 'test/reliability/fault-matrix-s3.test.ts';
const seed = seedFromEnv('fault matrix, s3 storage');
const draw = rng(seed);
const specs: KitSpec[] = [filesSpec, postgresSpec, redisSpec, mysqlSpec].filter((s) => s.available());
const asRoot = process.getuid?.() === 0;
const cases = drawCases(draw.fork('cases'), combinations(specs, { s3: { canFill: false, s3: true } }, asRoot), matrixMode(8));
const repro = `BK_FAULT_SEED=${seed} npx vitest run ${FILE}`;

let work: string;
let fs: SmallFs;
let s3: S3Server;
let proxy: FaultProxy;
let client: S3Client;
let setup: MatrixSetup;
const kits = new Map<string, Kit>();
const pairs = new Map<string, Pair>();

/** Arms the proxy: the next n requests (of any kind) get the fault. */
function s3Fault(kind: 's3-error' | 's3-reset' | 's3-stall', r: Rng): string {
  const n = r.int(1, 8);
  let left = n;
  const status = r.pick([500, 502, 503]);
  const ms = r.int(2500, 4000);
  proxy.setRule((req) => {
    if (left <= 0) return undefined;
    left--;
    const phase = req.method === 'GET' ? 'response' : 'request';
    if (kind === 's3-error') return { type: 'fail', status };
    if (kind === 's3-reset') return { type: 'drop', phase, afterBytes: r.int(0, 1 << 20) };
    return { type: 'stall', ms, phase, afterBytes: r.int(0, 1 << 20) };
  });
  return kind === 's3-error' ? `next ${n} S3 requests answered ${status}` : kind === 's3-reset' ? `next ${n} S3 connections cut mid-body` : `next ${n} S3 requests stalled ${ms} ms`;
}

beforeAll(async () => {
  work = await makeTmpDir('bk-fault-s3-');
  fs = await mountSmallFs(join(work, 'fs'));
  s3 = await startS3();
  proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  client = new S3Client(s3.clientConfig);
  setup = {
    work,
    lockDir: join(work, 'locks'),
    storages: {
      s3: {
        // Small parts, so an archive is several requests; a short idle timeout, so a stall is a
        // timeout and a retry rather than a wait.
        view: (kit) => s3View('s3', { dir: s3.dir, bucket: 'backups', prefix: `bk/${kit}`, endpoint: proxy.endpoint, client, extra: ['part_size: 5MiB', 'idle_timeout: 2'] }),
        s3Fault,
        s3Clear: () => proxy.setRule(undefined),
      },
    },
    restoreFs: fs,
  };
});

afterAll(async () => {
  for (const k of kits.values()) await k.close().catch(() => undefined);
  client?.destroy();
  await proxy?.stop();
  await s3?.stop();
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

describe('fault matrix on S3 storage', () => {
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
