// Peak memory of `bk backup files` must not grow with the tree (DESIGN §5 "stream, never stage"):
// measured as the bk process's VmHWM at two tree sizes 4× apart, once in bytes and once in
// number of files.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { spawnBk } from '../helpers/run-bk.js';
import { writeRandomFile } from '../helpers/sample-tree.js';

/**
 * Allowed growth from the small tree to the large one: 15% plus 16 MiB. V8 lets the heap grow to
 * a multiple of the live set before it collects, and a short run (the small tree) may end before
 * it got there: on a loaded machine the same code measured 120 → 138 MiB (5,000 → 20,000 files)
 * with a flat live set of ~23 MiB. Growing with the tree, as before the walk was bk's own, looked
 * like 116 → 190 MiB (files) and 185 → 243 MiB (bytes): well past this bound.
 */
const SLACK_RATIO = 1.15;
const SLACK_KIB = 16 * 1024;

async function vmHwmKiB(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const m = status && /^VmHWM:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

/**
 * bk's peak RSS in KiB for a backup of `source`, the lower of two runs: GC timing only ever adds
 * to a peak, and the machine may be busy with other tests.
 */
async function peakRssOfBackup(source: string, repo: string): Promise<number> {
  return Math.min(await peakRssOfOneBackup(source, `${repo}-1`), await peakRssOfOneBackup(source, `${repo}-2`));
}

/** Runs a backup and returns bk's peak RSS in KiB (VmHWM is a high-water mark; the last read wins). */
async function peakRssOfOneBackup(source: string, repo: string): Promise<number> {
  const child = spawnBk(['backup', 'files', '--source', source, '--repo', repo]);
  let peak = 0;
  let running = true;
  const sampling = (async () => {
    while (running) {
      const v = await vmHwmKiB(child.pid!);
      if (v !== undefined) peak = Math.max(peak, v);
      await sleep(20);
    }
  })();
  const res = await child;
  running = false;
  await sampling;
  expect(res.exitCode, String(res.stderr)).toBe(0);
  expect(peak).toBeGreaterThan(0);
  return peak;
}

async function manyFiles(dir: string, count: number): Promise<void> {
  const perDir = 100;
  // Directories first: no other await may run while a batch of writes is pending (a write failing
  // meanwhile would be an unhandled rejection).
  for (let d = 0; d * perDir < count; d++) await mkdir(join(dir, `d${d}`), { recursive: true });
  const batch: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const d = join(dir, `d${Math.floor(i / perDir)}`);
    batch.push(writeFile(join(d, `file-with-a-longish-name-${i}.txt`), `${'x'.repeat(200)} ${i}\n`));
    if (batch.length === 256) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

let work: string;
beforeAll(async () => {
  work = await makeTmpDir('bk-e2e-mem-');
});
afterAll(async () => {
  await rmrf(work);
});

describe('peak memory of bk backup files', () => {
  it('does not grow with the bytes in the tree (96 MiB vs 384 MiB, random)', async () => {
    const small = join(work, 'bytes-small');
    const large = join(work, 'bytes-large');
    await mkdir(small);
    await mkdir(large);
    await writeRandomFile(join(small, 'a.bin'), 96);
    for (const name of ['a.bin', 'b.bin', 'c.bin', 'd.bin']) await copyFile(join(small, 'a.bin'), join(large, name));
    const peakSmall = await peakRssOfBackup(small, join(work, 'repo-bytes-small'));
    const peakLarge = await peakRssOfBackup(large, join(work, 'repo-bytes-large'));
    console.log(`peak RSS of bk backup files: 96 MiB tree ${(peakSmall / 1024).toFixed(1)} MiB, 384 MiB tree ${(peakLarge / 1024).toFixed(1)} MiB`);
    expect(peakLarge).toBeLessThanOrEqual(peakSmall * SLACK_RATIO + SLACK_KIB);
  });

  it('does not grow with the number of files (5,000 vs 20,000)', async () => {
    // The large tree holds the small one and three more like it.
    const large = join(work, 'files-large');
    const small = join(large, 'part-0');
    for (let part = 0; part < 4; part++) await manyFiles(join(large, `part-${part}`), 5_000);
    const peakSmall = await peakRssOfBackup(small, join(work, 'repo-files-small'));
    const peakLarge = await peakRssOfBackup(large, join(work, 'repo-files-large'));
    console.log(`peak RSS of bk backup files: 5,000 files ${(peakSmall / 1024).toFixed(1)} MiB, 20,000 files ${(peakLarge / 1024).toFixed(1)} MiB`);
    expect(peakLarge).toBeLessThanOrEqual(peakSmall * SLACK_RATIO + SLACK_KIB);
  });
});
