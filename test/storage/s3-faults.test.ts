// Faults between bk and the S3 server (the harness fault proxy in front of s3rver), end to end
// through bin/bk.js: what is retryable is retried and the backup succeeds; what is not fails the
// run with no manifest written and older backups intact; a dropped download is resumed.
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf, startFaultProxy, startS3, type FaultRule, type FaultProxy, type ProxiedRequest, type S3Server } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';
import { backupsInBucket, bucketClient, makeSourceTree, MiB, s3StorageYaml, treeDigest, writeConfig } from './s3-fixtures.js';

let s3: S3Server;
let proxy: FaultProxy;
let client: S3Client;
let tmp: string;
let source: string;
let n = 0;

beforeAll(async () => {
  s3 = await startS3({ buckets: ['backups'] });
  proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
  client = bucketClient(s3);
  tmp = await makeTmpDir('bk-s3-faults-');
  source = join(tmp, 'source');
  // ~8 MiB of incompressible data: two 5 MiB parts.
  await makeSourceTree(source, 8 * MiB, 4);
});
afterAll(async () => {
  client?.destroy();
  await proxy?.stop();
  await s3?.stop();
  if (tmp) await rmrf(tmp);
});
beforeEach(() => proxy.reset());

async function setup(extra: Record<string, string | number> = {}) {
  const dir = join(tmp, `run-${++n}`);
  await mkdir(dir);
  const prefix = `faults-${n}`;
  const yaml =
    `storages:\n${s3StorageYaml('offsite', { endpoint: proxy.endpoint, prefix, extra: { part_size: '5MiB', max_attempts: 4, ...extra } })}` +
    `targets:\n  app:\n    driver: files\n    source: ${source}\n    compression: none\n`;
  const cfg = await writeConfig(dir, yaml);
  const bk = (...args: string[]) => runBk(['--config', cfg, ...args], { cwd: dir });
  return { dir, prefix, bk };
}

type Kind = 'create' | 'part' | 'complete' | 'abort' | 'manifest' | 'archive-get' | 'head' | 'list' | 'other';
function kindOf(r: Pick<ProxiedRequest, 'method' | 'path' | 'query'>): Kind {
  if (r.method === 'POST' && r.query.has('uploads')) return 'create';
  if (r.method === 'PUT' && r.query.has('partNumber')) return 'part';
  if (r.method === 'POST' && r.query.has('uploadId')) return 'complete';
  if (r.method === 'DELETE' && r.query.has('uploadId')) return 'abort';
  if (r.method === 'PUT' && r.path.endsWith('.manifest.json')) return 'manifest';
  if (r.method === 'GET' && r.path.endsWith('.tar')) return 'archive-get';
  if (r.method === 'HEAD') return 'head';
  if (r.method === 'GET' && r.query.has('list-type')) return 'list';
  return 'other';
}
const kindOfEntry = (e: { method: string; url: string }) => {
  const u = new URL(e.url, 'http://x');
  return kindOf({ method: e.method, path: u.pathname, query: u.searchParams });
};

/** Applies `fault` to the first `times` requests of a kind (optionally only part `part`). */
function faultFirst(kind: Kind, times: number, fault: ReturnType<FaultRule>, part?: string): FaultRule {
  let hits = 0;
  return (r) => (kindOf(r) === kind && (part === undefined || r.query.get('partNumber') === part) && hits++ < times ? fault : undefined);
}
const combine =
  (...rules: FaultRule[]): FaultRule =>
  (r) => {
    for (const rule of rules) {
      const f = rule(r);
      if (f) return f;
    }
    return undefined;
  };

describe('retryable faults are retried and the backup succeeds', () => {
  it('a connection dropped in the middle of a part', async () => {
    const { bk, prefix } = await setup();
    proxy.setRule(faultFirst('part', 1, { type: 'drop', afterBytes: 1 * MiB }, '2'));
    const res = await bk('backup', 'app');
    expect(res.exitCode, res.stderr).toBe(0);
    expect(proxy.log.filter((e) => e.url.includes('partNumber=2')).length).toBe(2);
    expect((await backupsInBucket(client, `${prefix}/`)).manifests).toHaveLength(1);
    expect((await bk('verify', '--latest')).exitCode).toBe(0);
  });

  it('500 and 503 answers to create, part, complete, confirm and manifest requests', async () => {
    const { bk, prefix } = await setup();
    proxy.setRule(
      combine(
        faultFirst('create', 1, { type: 'fail', status: 503 }),
        faultFirst('part', 2, { type: 'fail', status: 500 }, '1'),
        faultFirst('complete', 1, { type: 'fail', status: 503, code: 'SlowDown' }),
        faultFirst('head', 1, { type: 'fail', status: 500 }),
        faultFirst('manifest', 1, { type: 'fail', status: 503 }),
      ),
    );
    const res = await bk('backup', 'app');
    expect(res.exitCode, res.stderr).toBe(0);
    expect(proxy.stats.faults).toBe(6);
    expect((await backupsInBucket(client, `${prefix}/`)).manifests).toHaveLength(1);
    expect((await bk('verify', '--latest')).exitCode).toBe(0);
  });

  it('a part that stalls mid-body beyond idle_timeout is cut and sent again', async () => {
    const { bk, prefix } = await setup({ idle_timeout: 2 });
    proxy.setRule(faultFirst('part', 1, { type: 'stall', ms: 60_000, afterBytes: 2 * MiB }, '1'));
    const t0 = Date.now();
    const res = await bk('backup', 'app');
    expect(res.exitCode, res.stderr).toBe(0);
    // Far less than the stall: the stalled request was cut, not waited out.
    expect(Date.now() - t0).toBeLessThan(40_000);
    expect(proxy.log.filter((e) => e.url.includes('partNumber=1')).length).toBeGreaterThanOrEqual(2);
    expect((await backupsInBucket(client, `${prefix}/`)).manifests).toHaveLength(1);
    expect((await bk('verify', '--latest')).exitCode).toBe(0);
  });
});

describe('faults that outlast the retries fail the run and leave older backups alone', () => {
  // One older backup, shared: every failed run below must leave it exactly as it is.
  let s: Awaited<ReturnType<typeof setup>> & { before: { manifests: string[]; archives: string[] } };
  beforeAll(async () => {
    const base = await setup({ max_attempts: 2 });
    const first = await base.bk('backup', 'app');
    expect(first.exitCode, first.stderr).toBe(0);
    s = { ...base, before: await backupsInBucket(client, `${base.prefix}/`) };
  });
  async function expectIntact() {
    proxy.setRule(undefined);
    expect(await backupsInBucket(client, `${s.prefix}/`)).toEqual(s.before);
    const verify = await s.bk('verify', '--all');
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout.trim().split('\n')).toHaveLength(1);
  }

  it('503 on every part: exit 1, the throttling named, no manifest', async () => {
    proxy.setRule((r) => (kindOf(r) === 'part' ? { type: 'fail', status: 503, code: 'SlowDown' } : undefined));
    const res = await s.bk('backup', 'app');
    expect(res.exitCode).toBe(1);
    expect(res.stdout + res.stderr).toMatch(/SlowDown/);
    expect(res.stdout + res.stderr).not.toMatch(/MethodNotAllowed|internal error/);
    // The failed upload was aborted, and never completed.
    const kinds = proxy.log.map(kindOfEntry);
    expect(kinds).toContain('abort');
    expect(kinds).not.toContain('complete');
    await expectIntact();
  });

  it('connections dropped on every attempt of a part: exit 1, no manifest', async () => {
    proxy.setRule((r) => (kindOf(r) === 'part' && r.query.get('partNumber') === '2' ? { type: 'drop', afterBytes: MiB } : undefined));
    const res = await s.bk('backup', 'app');
    expect(res.exitCode).toBe(1);
    expect(res.stdout + res.stderr).toMatch(/cannot reach the server/);
    await expectIntact();
  });

  it('CompleteMultipartUpload refused: exit 1, no manifest', async () => {
    proxy.setRule((r) => (kindOf(r) === 'complete' ? { type: 'fail', status: 403, code: 'AccessDenied' } : undefined));
    const res = await s.bk('backup', 'app');
    expect(res.exitCode).toBe(1);
    expect(res.stdout + res.stderr).toMatch(/access denied/);
    await expectIntact();
  });

  it('the manifest write refused: exit 1, and the archive is removed again', async () => {
    proxy.setRule((r) => (kindOf(r) === 'manifest' ? { type: 'fail', status: 403, code: 'AccessDenied' } : undefined));
    const res = await s.bk('backup', 'app');
    expect(res.exitCode).toBe(1);
    await expectIntact();
  });
});

describe('downloads', () => {
  it('restore resumes a download whose connection drops mid-body', async () => {
    const { bk, dir } = await setup();
    expect((await bk('backup', 'app')).exitCode).toBe(0);
    proxy.reset();
    // A files restore reads the archive once, checked in flight; that read loses its connection
    // and the ranged GET that resumes it goes through.
    let drops = 0;
    proxy.setRule((r) => (kindOf(r) === 'archive-get' && !r.headers.range && drops++ < 1 ? { type: 'drop', phase: 'response', afterBytes: 3 * MiB } : undefined));
    const dest = join(dir, 'restored');
    const res = await bk('restore', 'app', '--to', dest, '--yes');
    expect(res.exitCode, res.stderr).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(source));
    const gets = proxy.log.filter((e) => kindOfEntry(e) === 'archive-get');
    expect(gets.filter((g) => g.fault === 'drop').length).toBe(1);
    expect(gets.filter((g) => g.status === 206).length).toBe(1);
    expect(gets.length).toBe(2);
  });

  it('a download that keeps failing fails the restore without touching the destination', async () => {
    const { bk, dir } = await setup();
    expect((await bk('backup', 'app')).exitCode).toBe(0);
    proxy.reset();
    proxy.setRule((r) => (kindOf(r) === 'archive-get' ? { type: 'drop', phase: 'response', afterBytes: MiB } : undefined));
    const dest = join(dir, 'restored');
    const res = await bk('restore', 'app', '--to', dest, '--yes');
    expect(res.exitCode).not.toBe(0);
    expect(res.stderr).not.toMatch(/internal error/);
    const { existsSync } = await import('node:fs');
    expect(existsSync(dest)).toBe(false);
  });
});
