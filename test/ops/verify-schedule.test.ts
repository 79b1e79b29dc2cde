// Scheduled verification: `bk schedule` runs restore drills and integrity reads on `verify.schedule`
// (the real CLI, per-second schedules, the files driver), records them in /metrics and the
// textfile, and notifies a real local HTTP receiver when a drill of a tampered backup mismatches.
// A target's backup and its drill never run at the same time. `bk cron` prints the verify lines,
// and one runs as cron would. The Scheduler's waiting rule is also checked in-process.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupResult } from '../../src/engine/backup.js';
import { BkError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { Scheduler } from '../../src/ops/scheduler.js';
import type { VerifyRun } from '../../src/ops/verify-run.js';
import { buildTree } from '../crypto/fixtures.js';
import { freePort, makeTmpDir, rmrf } from '../harness/index.js';
import { runBk, spawnBk } from '../helpers/run-bk.js';

type LogLine = Record<string, unknown> & { msg: string; level: string; target?: string };

const hasSystemdAnalyze = await execa('systemd-analyze', ['--version'], { reject: false }).then((r) => r.exitCode === 0);
const HOOK_TOKEN = 'hook-token-5c2a91';
let dir: string;
let repo: string;
let tmp: string;
let http: Server;
let web: string;
const received: { path: string; body: string }[] = [];
let daemon: ResultPromise | undefined;

const env = () => ({ BK_LOG_FORMAT: 'json', TZ: 'UTC', TMPDIR: tmp, BK_LOCK_DIR: join(dir, 'locks') });
const bk = (config: string, args: string[]) => runBk(['--config', config, ...args], { env: env() });

async function backup(config: string, target: string): Promise<string> {
  const r = await bk(config, ['backup', target, '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.json<{ results: { id: string }[] }>().results[0]!.id;
}

/** Puts backup `from`'s archive under backup `into`, hashes re-recorded: only a drill can tell. */
async function replaceArchive(target: string, into: string, from: string): Promise<void> {
  const read = async (id: string) => JSON.parse(await readFile(join(repo, target, `${id}.manifest.json`), 'utf8')) as Record<string, unknown> & { archive: string };
  const a = await read(into);
  const b = await read(from);
  await copyFile(join(repo, b.archive), join(repo, a.archive));
  await writeFile(join(repo, target, `${into}.manifest.json`), `${JSON.stringify({ ...a, raw: b.raw, stored: b.stored }, null, 2)}\n`);
}

beforeAll(async () => {
  dir = await makeTmpDir('bk-verify-schedule-');
  repo = join(dir, 'repo');
  tmp = join(dir, 'tmp');
  await mkdir(tmp);
  for (const t of ['docs', 'plain', 'tampered']) await buildTree(join(dir, t));
  http = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  web = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (daemon && daemon.exitCode === null) daemon.kill('SIGKILL');
  await new Promise((r) => http?.close(r));
  if (dir) await rmrf(dir);
});

describe('bk schedule with verify.schedule', () => {
  it('drills on schedule, advances last_verified, never alongside the backup; a tampered backup notifies and counts', async () => {
    const textfile = join(dir, 'bk.prom');
    const config = join(dir, 'daemon.yaml');
    await writeFile(
      config,
      `storages:
  local: { type: local, path: ${repo} }
metrics: { textfile: ${textfile} }
notifications:
  - { type: webhook, url: "${web}/hook?token=${HOOK_TOKEN}" }
targets:
  docs: { driver: files, source: ${join(dir, 'docs')}, schedule: "*/2 * * * * *", verify: { schedule: "* * * * * *", restore_test: true } }
  plain: { driver: files, source: ${join(dir, 'plain')}, verify: { schedule: "* * * * * *" } }
  tampered: { driver: files, source: ${join(dir, 'tampered')}, verify: { schedule: "* * * * * *", restore_test: true } }
`,
    );
    await backup(config, 'docs');
    await backup(config, 'plain');
    const older = await backup(config, 'tampered');
    await writeFile(join(dir, 'tampered', 'added.txt'), 'one more file\n');
    await replaceArchive('tampered', await backup(config, 'tampered'), older);
    received.length = 0;

    const port = await freePort();
    const proc = spawnBk(['--config', config, 'schedule', '--listen', `127.0.0.1:${port}`, '--grace', '30s'], { env: env() });
    daemon = proc;
    const lines: LogLine[] = [];
    let text = '';
    proc.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        if (line.startsWith('{')) lines.push(JSON.parse(line) as LogLine);
      }
    });
    const dump = () => lines.map((l) => JSON.stringify(l)).join('\n');
    const waitFor = async (what: string, check: () => boolean | Promise<boolean>, ms = 30_000) => {
      const deadline = Date.now() + ms;
      while (!(await Promise.resolve().then(check).catch(() => false))) {
        if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`no ${what}; log:\n${dump()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const metric = async (name: string, labels: string) => {
      const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(await metrics());
      return m ? Number(m[1]) : undefined;
    };
    const verified = (t: string) => metric('bk_last_verified_timestamp_seconds', `target="${t}",storage="local"`);

    await waitFor('a passed drill of docs', async () => (await verified('docs')) !== undefined);
    const first = (await verified('docs'))!;
    expect(first).toBeGreaterThan(Date.now() / 1000 - 30);
    await waitFor('last_verified of docs to advance', async () => ((await verified('docs')) ?? 0) > first);
    await waitFor('an integrity check of plain', async () => (await verified('plain')) !== undefined);
    expect(lines.some((l) => l.msg === 'scheduled integrity check passed' && l.target === 'plain')).toBe(true);
    expect(await metric('bk_verify_runs_total', 'target="docs",status="success"')).toBeGreaterThanOrEqual(2);

    // The tampered backup restores but does not hold what was backed up: failure counted, notified.
    await waitFor('a failed drill of tampered', async () => ((await metric('bk_verify_runs_total', 'target="tampered",status="failure"')) ?? 0) >= 1);
    expect(await verified('tampered')).toBeUndefined();
    await waitFor('the notification', () => received.some((r) => r.body.includes('"target":"tampered"')));
    const event = JSON.parse(received.find((r) => r.body.includes('"target":"tampered"'))!.body) as Record<string, unknown>;
    expect(event).toMatchObject({ source: 'bk', event: 'failure', kind: 'verify', check: 'drill', status: 'failed', target: 'tampered', step: 'drill', code: 'INTEGRITY' });
    expect(event.error).toMatch(/restored data does not match the manifest: .*files/);
    expect(event.durationSeconds).toEqual(expect.any(Number));
    expect((event.mismatches as { name: string }[]).map((m) => m.name)).toContain('files');
    // Failures only (the channel's default): passing drills of docs sent nothing.
    expect(received.every((r) => !r.body.includes('"target":"docs"'))).toBe(true);
    expect(received.map((r) => r.body).join('\n')).not.toContain(HOOK_TOKEN);

    const health = JSON.parse(await (await fetch(`http://127.0.0.1:${port}/healthz`)).text()) as { verifications: { target: string; lastVerified: string | null; lastRun: { status: string } | null }[] };
    expect(health.verifications.find((v) => v.target === 'docs')?.lastVerified).toEqual(expect.any(String));
    expect(health.verifications.find((v) => v.target === 'tampered')?.lastRun?.status).toBe('failed');

    // Let docs' backups (every 2 s) and drills (every second) meet a few times.
    await waitFor('two backups of docs', async () => ((await metric('bk_runs_total', 'target="docs",storage="local",status="success"')) ?? 0) >= 2);
    await waitFor('a drill waiting for a backup, or the other way', () => lines.some((l) => /^scheduled (backup|verification) waits for the running (backup|verification) of docs/.test(l.msg)));
    process.kill(proc.pid!, 'SIGTERM');
    expect((await proc).exitCode).toBe(0);

    // Never both at once: between a backup's start and end no drill starts, and the other way round.
    let backupRunning = false;
    let drillRunning = false;
    for (const l of lines.filter((x) => x.target === 'docs')) {
      if (l.msg === 'backup started') backupRunning = true;
      if (l.msg === 'backup finished' || (l.level === 'error' && 'status' in l && l.step !== 'drill')) backupRunning = false;
      if (l.msg === 'restore drill started') drillRunning = true;
      if (/^restore drill (passed|mismatch|failed)$/.test(l.msg)) drillRunning = false;
      expect(backupRunning && drillRunning, dump()).toBe(false);
    }
    expect(lines.filter((l) => l.level === 'error' && l.target === 'docs')).toEqual([]);
    expect(lines.some((l) => /is locked by/.test(l.msg))).toBe(false);
    expect(await readdir(tmp)).toEqual([]); // every throwaway drill directory removed

    // The textfile holds the same, and a `bk backup` rewriting it keeps the verify series.
    await backup(config, 'plain');
    const prom = await readFile(textfile, 'utf8');
    expect(prom).toMatch(/^bk_last_verified_timestamp_seconds\{target="docs",storage="local"\} \d+/m);
    expect(prom).toMatch(/^bk_verify_runs_total\{target="tampered",status="failure"\} [1-9]\d*$/m);
  });
});

describe('bk cron with verify.schedule', () => {
  let config: string;
  beforeAll(async () => {
    config = join(dir, 'cron.yaml');
    await writeFile(
      config,
      `storages:
  local: { type: local, path: ${repo} }
metrics: { textfile: ${join(dir, 'cron.prom')} }
targets:
  docs: { driver: files, source: ${join(dir, 'docs')}, schedule: "0 2 * * *", timezone: UTC, verify: { schedule: "30 4 * * 0", restore_test: true } }
  plain: { driver: files, source: ${join(dir, 'plain')}, timezone: UTC, verify: { schedule: "0 5 1 * *" } }
`,
    );
  });

  it('prints a verify line per verify.schedule; cron can run it as printed', async () => {
    const log = join(dir, 'cron.log');
    const r = await bk(config, ['cron', '--log-file', log]);
    expect(r.exitCode, r.stderr).toBe(0);
    const jobs = r.stdout.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#') && !/^[A-Z_]+=/.test(l));
    expect(jobs).toHaveLength(3);
    expect(jobs[0]).toMatch(/^0 2 \* \* \* .* backup docs --quiet >> /);
    expect(jobs[1]).toMatch(new RegExp(`^30 4 \\* \\* 0 ${process.execPath} \\S+bk\\.js --config ${config} verify docs --restore-test --quiet >> \\S+ 2>&1$`));
    expect(jobs[2]).toMatch(/^0 5 1 \* \* .* verify plain --quiet >> /);

    // As cron runs it: /bin/sh, empty environment, cwd /. Silent on success; the textfile records it.
    const command = jobs[1]!.split(/\s+/).slice(5).join(' ');
    const ran = await execa('/bin/sh', ['-c', command], { cwd: '/', env: { HOME: dir, PATH: '/usr/bin:/bin', TMPDIR: tmp, BK_LOCK_DIR: join(dir, 'locks') }, extendEnv: false, reject: false });
    expect(ran.exitCode).toBe(0);
    expect(await readFile(log, 'utf8')).toBe('');
    expect(await readFile(join(dir, 'cron.prom'), 'utf8')).toMatch(/^bk_verify_runs_total\{target="docs",status="success"\} 1$/m);
  });

  it('writes a service and a timer per verify.schedule', async () => {
    const out = join(dir, 'units');
    const r = await bk(config, ['cron', '--systemd', '--out', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['bk-docs-verify.service', 'bk-docs-verify.timer', 'bk-docs.service', 'bk-docs.timer', 'bk-plain-verify.service', 'bk-plain-verify.timer']);
    expect(await readFile(join(out, 'bk-docs-verify.service'), 'utf8')).toContain(`--config ${config} verify docs --restore-test --quiet`);
    expect(await readFile(join(out, 'bk-docs-verify.timer'), 'utf8')).toContain('OnCalendar=Sun *-*-* 04:30:00 UTC');
    if (hasSystemdAnalyze) {
      const v = await execa('systemd-analyze', ['verify', ...(await readdir(out)).map((f) => join(out, f))], { reject: false, env: { SYSTEMD_LOG_LEVEL: 'warning' } });
      expect(v.stderr).toBe('');
      expect(v.exitCode).toBe(0);
    }
  });
});

describe('Scheduler: a backup and a verification of one target', () => {
  it('the second waits for the first, and one still waiting when stopped never starts', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ level: 'debug', format: 'json', write: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const events: string[] = [];
    let active = 0;
    const busy = async (what: string, ms: number) => {
      active++;
      events.push(`${what} start ${active}`);
      await sleep(ms);
      active--;
    };
    const scheduler = new Scheduler({
      logger,
      clock: () => new Date(),
      runTarget: async () => {
        await busy('backup', 1500);
        return { target: 't', id: 'x', status: 'ok', storages: [{ storage: 'local', ok: true }], rawBytes: 1, storedBytes: 1, seconds: 1.5 } satisfies BackupResult;
      },
      onResult: async () => undefined,
      runVerify: async () => {
        await busy('verify', 1500);
        return { target: 't', kind: 'drill', status: 'ok', id: 'x', storage: 'local', seconds: 1.5, finishedAt: new Date().toISOString(), mismatches: [] } satisfies VerifyRun;
      },
      onVerifyResult: async () => undefined,
    });
    scheduler.apply([{ name: 't', schedule: '* * * * * *', timezone: 'UTC', storages: ['local'] }], [{ name: 't', schedule: '* * * * * *', timezone: 'UTC', restoreTest: true }]);
    while (events.length < 3) await sleep(50);
    expect(events.every((e) => e.endsWith(' 1'))).toBe(true);
    expect(new Set(events.map((e) => e.split(' ')[0]))).toEqual(new Set(['backup', 'verify']));
    expect(lines.some((l) => /^scheduled (backup|verification) waits for the running (backup|verification) of t to finish/.test(String(l.msg)))).toBe(true);
    expect(scheduler.health().verifications[0]).toMatchObject({ target: 't', kind: 'drill', lastRun: { status: 'ok' } });
    // Both are due every second, so one is always waiting: stopping must not start it.
    const count = events.length;
    await scheduler.stop(10_000);
    expect(events.length).toBeLessThanOrEqual(count + 1); // at most the one that had just started
    expect(active).toBe(0);
  });

  it('a verification that throws is a failed run with the error, not a crash', async () => {
    const runs: VerifyRun[] = [];
    const logger = createLogger({ level: 'silent', format: 'json', write: () => undefined });
    const scheduler = new Scheduler({
      logger,
      clock: () => new Date(),
      runTarget: async () => {
        throw new Error('unused');
      },
      onResult: async () => undefined,
      runVerify: async () => {
        throw new BkError('NOT_FOUND', 'no backups of t', { target: 't', step: 'drill' });
      },
      onVerifyResult: async (r) => void runs.push(r),
    });
    scheduler.apply([], [{ name: 't', schedule: '* * * * * *', timezone: 'UTC', restoreTest: false }]);
    while (runs.length === 0) await new Promise((r) => setTimeout(r, 50));
    await scheduler.stop(0);
    expect(runs[0]).toMatchObject({ target: 't', kind: 'integrity', status: 'failed', id: null, error: { code: 'NOT_FOUND' } });
  });
});
