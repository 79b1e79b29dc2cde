// Peak memory of an S3 backup does not grow with its size: the real CLI against s3rver, N vs 4N.
import type { S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, makeTmpDir, rmrf, startS3, type S3Server } from '../harness/index.js';
import { BK_BIN } from '../helpers/run-bk.js';
import { bucketClient, makeSourceTree, MiB, s3StorageYaml, writeConfig } from './s3-fixtures.js';

let s3: S3Server;
let client: S3Client;
let tmp: string;

beforeAll(async () => {
  s3 = await startS3({ buckets: ['backups'] });
  client = bucketClient(s3);
  tmp = await makeTmpDir('bk-s3-scale-');
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  if (tmp) await rmrf(tmp);
});

/** Runs bk and returns its exit code and peak RSS (KiB), from GNU time or by polling VmHWM. */
async function peakRss(args: string[], cwd: string): Promise<{ exitCode: number; peakKiB: number; stderr: string }> {
  if (existsSync('/usr/bin/time')) {
    const out = join(cwd, `time-${Date.now()}.txt`);
    const res = await execa('/usr/bin/time', ['-f', '%M', '-o', out, process.execPath, BK_BIN, ...args], { cwd, env: cleanEnv(), extendEnv: false, reject: false });
    return { exitCode: res.exitCode ?? -1, peakKiB: Number((await readFile(out, 'utf8')).trim().split('\n').pop()), stderr: String(res.stderr) };
  }
  const child = execa(process.execPath, [BK_BIN, ...args], { cwd, env: cleanEnv(), extendEnv: false, reject: false });
  let peak = 0;
  const poll = setInterval(() => {
    void readFile(`/proc/${child.pid}/status`, 'utf8').then(
      (s) => (peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0))),
      () => undefined,
    );
  }, 20);
  const res = await child;
  clearInterval(poll);
  return { exitCode: res.exitCode ?? -1, peakKiB: peak, stderr: String(res.stderr) };
}

describe('memory', () => {
  it('peak RSS of an S3 backup stays flat from N to 4N', async () => {
    const runs: Record<string, number> = {};
    for (const [label, bytes] of [
      ['N', 64 * MiB],
      ['4N', 256 * MiB],
    ] as const) {
      const dir = join(tmp, `mem-${label}`);
      await mkdir(dir);
      // 4 MiB files: node-tar reads a file in one buffer of up to 16 MiB, which is the driver's memory, not the storage's.
      await makeSourceTree(join(dir, 'src'), bytes, bytes / (4 * MiB));
      // compression none: the archive is as large as the source, so 4N really moves 4× the bytes.
      const yaml = `storages:\n${s3StorageYaml('offsite', { endpoint: s3.endpoint, prefix: `mem-${label}` })}targets:\n  app:\n    driver: files\n    source: ${join(dir, 'src')}\n    compression: none\n`;
      const cfg = await writeConfig(dir, yaml);
      const res = await peakRss(['--config', cfg, 'backup', 'app'], dir);
      expect(res.exitCode, res.stderr).toBe(0);
      runs[label] = Math.round(res.peakKiB / 1024);
      await rmrf(join(dir, 'src'));
    }
    console.log(`peak RSS of bk backup to S3: N=64 MiB → ${runs.N} MiB, 4N=256 MiB → ${runs['4N']} MiB`);
    // Buffers are released by V8's GC, whose external-memory trigger is 64 MiB above the last
    // collection: the peak wanders by up to that much, while staging the archive would add 192 MiB.
    expect(runs['4N']!).toBeLessThan(runs.N! + 64);
    expect(runs['4N']!).toBeLessThan(400);
  });
});
