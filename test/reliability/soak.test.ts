/**
 * Soak: `bk schedule` on per-second schedules (a files target and a redis target, pruned after
 * every backup) while faults land at random: dump tools killed, the storage filling up, the redis
 * server pausing its clients, the daemon stopped and continued (a suspended machine). For
 * BK_SOAK_SECONDS (default 60; longer by hand), then a graceful stop.
 *
 * Afterwards: the daemon exited 0 and left no child behind; the catalog is consistent (every
 * listed backup passes `bk verify --all`, and a prune leaves no temp file or orphan); backups kept
 * succeeding between the faults; and the daemon's resident memory and open file descriptors, sampled
 * every second from /proc, stayed flat (the last third of the run against the first, after warm-up).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, freePort, makeTmpDir, rmrf, startRedis, type RedisServer } from '../harness/index.js';
import { BK_BIN, runBk } from '../helpers/run-bk.js';
import { descendants, isAlive, openFds, rssBytes, waitForDescendant, type ProcInfo } from './proc-tree.js';
import { rng, seedFromEnv } from './seeded.js';
import { mountSmallFs, type SmallFs } from './small-fs.js';
import { localView, strays } from './storage-view.js';

const SECONDS = Number(process.env.BK_SOAK_SECONDS ?? 60);
const seed = seedFromEnv('soak');
const MiB = 1 << 20;

let work: string;
let fs: SmallFs;
let redis: RedisServer;
let config: string;
let repo: string;
const samples: { t: number; rss: number; fds: number }[] = [];
const faults: string[] = [];
let exit: { exitCode?: number; signal?: string; stderr: string };
let family: ProcInfo[] = [];
const health: number[] = [];
let metrics = '';

beforeAll(async () => {
  work = await makeTmpDir('bk-soak-');
  fs = await mountSmallFs(join(work, 'fs'));
  repo = join(fs.dir, 'repo');
  redis = await startRedis();
  await redis.cli(['CONFIG', 'SET', 'repl-diskless-sync-delay', '0']);
  await redis.cli(['EVAL', "for i = 1, 32 do redis.call('SET', 'k' .. i, string.rep(string.format('%08x', i * 104729), 4096)) end return 1", '0']);
  const src = join(work, 'src');
  await mkdir(src, { recursive: true });
  for (let i = 0; i < 4; i++) await writeFile(join(src, `f${i}.bin`), randomBytes(MiB / 2));
  const port = await freePort();
  config = join(work, 'backup.config.yaml');
  await writeFile(
    config,
    [
      'defaults:',
      '  retention: { keep_last: 4 }',
      '  garbage_grace: 0h',
      'storages:',
      `  local: { type: local, path: ${JSON.stringify(repo)} }`,
      'targets:',
      '  files:',
      '    driver: files',
      `    source: ${JSON.stringify(src)}`,
      '    schedule: "* * * * * *"',
      '  cache:',
      '    driver: redis',
      '    host: 127.0.0.1',
      `    port: ${redis.port}`,
      '    schedule: "*/2 * * * * *"',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );

  const r = rng(seed);
  const daemon = execa(process.execPath, [BK_BIN, '--config', config, '--log-format', 'json', 'schedule', '--listen', `127.0.0.1:${port}`, '--grace', '5s'], {
    env: cleanEnv({ BK_LOCK_DIR: join(work, 'locks'), TZ: 'UTC' }),
    extendEnv: false,
    reject: false,
    buffer: { stdout: true, stderr: true },
    cwd: work,
  });
  const pid = daemon.pid!;
  const started = Date.now();
  const end = started + SECONDS * 1000;
  let nextFault = started + 5000;
  let filled = false;
  while (Date.now() < end && daemon.exitCode === null) {
    samples.push({ t: Date.now() - started, rss: await rssBytes(pid).catch(() => 0), fds: (await openFds(pid).catch(() => [])).length });
    // Once the listener is up (a second or two after start), it must always answer.
    const h = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) }).then((x) => x.status, () => 0);
    if (h !== 0 || health.length > 0) health.push(h);
    if (filled) {
      await fs.relieve();
      filled = false;
    }
    if (Date.now() >= nextFault) {
      const kind = r.pick(['kill-tool', 'kill-tool', 'disk-full', 'redis-pause', 'suspend']);
      if (kind === 'kill-tool') {
        // Tools live a fraction of a second: wait for the next one to start.
        const t = await waitForDescendant(pid, r.shuffle(['tar', 'zstd', 'redis-cli']), () => false, 2500);
        if (t) {
          try {
            process.kill(t.pid, 'SIGKILL');
            faults.push(`kill -9 ${t.comm}`);
          } catch {
            /* already gone */
          }
        }
      } else if (kind === 'disk-full') {
        if (await fs.fill()) {
          filled = true;
          faults.push('storage full for a second');
        }
      } else if (kind === 'redis-pause') {
        await redis.cli(['CLIENT', 'PAUSE', String(r.int(500, 2500))]);
        faults.push('redis paused');
      } else {
        process.kill(pid, 'SIGSTOP');
        await sleep(r.int(500, 2500));
        process.kill(pid, 'SIGCONT');
        faults.push('daemon suspended');
      }
      nextFault = Date.now() + r.int(1000, 3000);
    }
    await sleep(1000);
  }
  await fs.relieve();
  metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((x) => x.text(), () => '');
  family = await descendants(pid);
  process.kill(pid, 'SIGTERM');
  const res = await daemon;
  exit = { exitCode: res.exitCode, signal: res.signal, stderr: String(res.stderr) };
}, (SECONDS + 120) * 1000);

afterAll(async () => {
  await redis?.stop();
  await fs?.unmount();
  await rmrf(work);
});

/** The value a fraction q of the samples are at or below (0.5: the median). */
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)] ?? 0;
const median = (xs: number[]) => quantile(xs, 0.5);

describe(`soak: bk schedule for ${SECONDS} s under faults (seed ${seed})`, () => {
  it('the daemon kept running, stopped cleanly on SIGTERM, and left no child behind', async () => {
    expect(faults.length, 'faults injected').toBeGreaterThan(SECONDS / 10);
    expect(exit.exitCode, exit.stderr.slice(-3000)).toBe(0);
    expect(exit.stderr).not.toMatch(/internal error|\n\s+at |Unhandled/);
    await sleep(500);
    expect(family.filter((p) => isAlive(p.pid)).map((p) => p.comm)).toEqual([]);
    expect(health.filter((h) => h !== 200 && h !== 503), 'healthz always answered').toEqual([]);
  });

  it('backups kept succeeding between the faults', () => {
    const ok = (target: string) => Number(new RegExp(`^bk_runs_total\\{[^}]*target="${target}"[^}]*status="success"[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    expect(ok('files'), metrics).toBeGreaterThan(SECONDS / 4);
    expect(ok('cache'), metrics).toBeGreaterThan(SECONDS / 10);
  });

  it('the catalog is consistent: every listed backup verifies; a prune leaves no temp file or orphan', async () => {
    const env = { BK_LOCK_DIR: join(work, 'locks'), TZ: 'UTC' };
    const verify = await runBk(['verify', '--all', '--json', '--config', config], { env });
    expect(verify.exitCode, `${verify.stdout}\n${verify.stderr}`).toBe(0);
    const results = verify.json<{ results: { target: string; ok: boolean }[] }>().results;
    expect(new Set(results.map((x) => x.target))).toEqual(new Set(['files', 'cache']));
    const prune = await runBk(['prune', '--grace', '0h', '--config', config], { env });
    expect(prune.exitCode, prune.stderr).toBe(0);
    const view = localView('local', repo);
    expect(await view.incomplete()).toEqual([]);
    expect(strays(await view.objects())).toEqual([]);
  });

  it('resident memory and open file descriptors stayed flat', () => {
    console.log(`soak: ${faults.length} faults (${[...new Set(faults)].join(', ')}); rss MiB ${samples.map((s) => Math.round(s.rss / MiB)).join(' ')}; fds ${samples.map((s) => s.fds).join(' ')}`);
    // After a warm-up of a quarter of the run; the last third against the first third after it.
    const steady = samples.filter((s) => s.t > (SECONDS * 1000) / 4 && s.rss > 0);
    expect(steady.length).toBeGreaterThan(6);
    const third = Math.max(2, Math.floor(steady.length / 3));
    const first = steady.slice(0, third);
    const last = steady.slice(-third);
    const report = samples.map((s) => `${(s.t / 1000).toFixed(0)}s rss=${(s.rss / MiB).toFixed(0)}MiB fds=${s.fds}`).join('\n');
    expect(median(last.map((s) => s.rss)), `RSS grew\n${report}`).toBeLessThan(median(first.map((s) => s.rss)) * 1.1 + 16 * MiB);
    // Descriptors come and go with each run (pipes, sockets, files): compare the count held between
    // runs (the lower quartile; the median follows how many samples land inside a run: 21 in the
    // first third and 26 in the last in a CI run whose idle count stayed at 20–21 throughout), and
    // bound the peaks, so a leak of one per run (~60 runs) shows while a busy moment does not.
    expect(quantile(last.map((s) => s.fds), 0.25), `file descriptors grew\n${report}`).toBeLessThanOrEqual(quantile(first.map((s) => s.fds), 0.25) + 4);
    expect(Math.max(...last.map((s) => s.fds)), `file descriptors grew\n${report}`).toBeLessThanOrEqual(Math.max(...first.map((s) => s.fds)) + 24);
  });
});
