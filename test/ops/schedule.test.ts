// `bk schedule` as users run it: the real CLI as a child process, per-second schedules, the files
// driver into a local repository. Sparse files make backups that take seconds (or forever) without
// using disk, so signals can land while a backup is streaming.
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeTmpDir, rmrf } from '../harness/index.js';
import { runBk, spawnBk } from '../helpers/run-bk.js';

type LogLine = Record<string, unknown> & { msg: string; level: string; target?: string };

class Daemon {
  readonly lines: LogLine[] = [];
  private text = '';
  readonly url: string;
  constructor(
    readonly proc: ResultPromise,
    port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    proc.stderr!.on('data', (c: Buffer) => {
      this.text += c.toString();
      let nl: number;
      while ((nl = this.text.indexOf('\n')) >= 0) {
        const line = this.text.slice(0, nl);
        this.text = this.text.slice(nl + 1);
        if (line.startsWith('{')) this.lines.push(JSON.parse(line) as LogLine);
      }
    });
  }

  async waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 40_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      if (this.proc.exitCode !== null) throw new Error(`bk schedule exited (${this.proc.exitCode}) while waiting for ${what}; log:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  logged = (msg: string | RegExp, target?: string): LogLine[] =>
    this.lines.filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)) && (target === undefined || l.target === target));

  async get(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`${this.url}${path}`);
    return { status: res.status, body: await res.text() };
  }

  async metric(name: string, labels: string): Promise<number | undefined> {
    const { body } = await this.get('/metrics');
    const m = new RegExp(`^${name}\\{${labels.replace(/[{}]/g, '')}\\} (\\S+)$`, 'm').exec(body);
    return m ? Number(m[1]) : undefined;
  }

  /** process.kill, not execa's kill(): that one escalates to SIGKILL after 5 s, and graceful stops take longer. */
  signal(sig: NodeJS.Signals): void {
    process.kill(this.proc.pid!, sig);
  }

  async exit(): Promise<number> {
    const r = await this.proc;
    return r.exitCode ?? -1;
  }
}

let dir: string;
const started: Daemon[] = [];

async function sparse(name: string, bytes: number): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  const fh = await open(join(d, 'sparse'), 'w');
  await fh.truncate(bytes);
  await fh.close();
  return d;
}

async function startDaemon(config: string, args: string[] = []): Promise<Daemon> {
  const port = await freePort();
  const proc = spawnBk(['--config', config, 'schedule', '--listen', `127.0.0.1:${port}`, ...args], { env: { BK_LOG_FORMAT: 'json', TZ: 'UTC' } });
  const d = new Daemon(proc, port);
  started.push(d);
  await d.waitFor('the listener', () => d.logged(/^listening on /).length > 0);
  return d;
}

async function listed(config: string, target: string): Promise<{ id: string; rawBytes: number }[]> {
  const r = await runBk(['--config', config, 'list', target, '--json']);
  expect(r.exitCode).toBe(0);
  return r.json<{ backups: { id: string; rawBytes: number }[] }>().backups;
}

/** Nothing in the repository but complete backups: no temp or orphan archive files. */
async function onlyCompleteBackups(repo: string, target: string): Promise<void> {
  const d = join(repo, target);
  const files = existsSync(d) ? await readdir(d) : [];
  expect(files.filter((f) => f.startsWith('.'))).toEqual([]);
  const ids = new Set(files.filter((f) => f.endsWith('.manifest.json')).map((f) => f.slice(0, -'.manifest.json'.length)));
  for (const f of files) expect(ids.has(f.split('.')[0]!)).toBe(true);
}

const storage = (repo: string) => `storages:\n  local: { type: local, path: ${repo} }\n`;

beforeAll(async () => {
  dir = await makeTmpDir('bk-schedule-');
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'a.txt'), 'data\n');
});

afterAll(async () => {
  for (const d of started) if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
  await rmrf(dir);
});

describe('bk schedule', () => {
  it('runs on schedule without overlap, serves /healthz and /metrics, reloads on SIGHUP', async () => {
    const repo = join(dir, 'repo-a');
    const slowSrc = await sparse('slow-src', 300 * 1024 ** 2);
    const textfile = join(dir, 'bk.prom');
    const config = join(dir, 'a.yaml');
    const base = `${storage(repo)}metrics:\n  textfile: ${textfile}\ntargets:
  quick: { driver: files, source: ${join(dir, 'src')}, schedule: "* * * * * *", timeout: 30s }
  slowish: { driver: files, source: ${slowSrc}, schedule: "* * * * * *", timeout: 5m }
`;
    await writeFile(config, base);
    const d = await startDaemon(config, ['--grace', '2s']);

    await d.waitFor('two quick backups', async () => ((await d.metric('bk_runs_total', 'target="quick",storage="local",status="success"')) ?? 0) >= 2);
    const health = await d.get('/healthz');
    expect(health.status).toBe(200);
    const h = JSON.parse(health.body) as { status: string; targets: { target: string; overdue: boolean; schedule: string }[] };
    expect(h.status).toBe('ok');
    expect(h.targets.map((t) => t.target).sort()).toEqual(['quick', 'slowish']);
    expect(await d.metric('bk_last_success_timestamp_seconds', 'target="quick",storage="local"')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(await d.metric('bk_last_size_bytes', 'target="quick",storage="local"')).toBeGreaterThan(0);
    expect((await d.get('/nope')).status).toBe(404);

    // slowish takes seconds and is due every second: later triggers are skipped, never run alongside.
    await d.waitFor('a skipped slowish run', () => d.logged(/^scheduled run skipped: the previous run is still going/, 'slowish').length > 0);
    await d.waitFor('a finished slowish run', () => d.logged('backup finished', 'slowish').length > 0, 90_000);
    let running = 0;
    for (const l of d.lines.filter((x) => x.target === 'slowish')) {
      if (l.msg === 'backup started') running++;
      if (l.msg === 'backup finished' || (l.level === 'error' && l.step !== undefined && 'status' in l)) running--;
      expect(running).toBeLessThanOrEqual(1);
    }

    // The textfile holds the same metrics, for node_exporter.
    const prom = await readFile(textfile, 'utf8');
    expect(prom).toMatch(/^bk_runs_total\{target="quick",storage="local",status="success"\} [1-9]\d*$/m);
    expect(prom).toContain('# TYPE bk_last_duration_seconds gauge');

    // A broken config on SIGHUP: logged, the running config kept.
    await writeFile(config, `${base}  broken: { driver: files, source: ${dir}, schedule: "61 * * * *" }\n`);
    const before = (await d.metric('bk_runs_total', 'target="quick",storage="local",status="success"'))!;
    d.signal('SIGHUP');
    await d.waitFor('the failed reload', () => d.logged(/^config reload failed, keeping the running config: .*schedule: 61 is a invalid expression for minute/).length > 0);
    await d.waitFor('quick to keep running', async () => (await d.metric('bk_runs_total', 'target="quick",storage="local",status="success"'))! > before + 1);
    expect((await d.get('/healthz')).status).toBe(200);

    // A valid one: a new target is picked up; one that keeps failing turns /healthz to 503.
    await writeFile(
      config,
      `${base}  added: { driver: files, source: ${join(dir, 'src')}, schedule: "* * * * * *", timeout: 30s }
  failing: { driver: files, source: ${join(dir, 'missing')}, schedule: "* * * * * *", timeout: 1s }
`,
    );
    d.signal('SIGHUP');
    await d.waitFor('the reload', () => d.logged(/^config reloaded: /).length > 0);
    await d.waitFor('a backup of the new target', async () => ((await d.metric('bk_runs_total', 'target="added",storage="local",status="success"')) ?? 0) >= 1);
    await d.waitFor('failing to be overdue', async () => (await d.get('/healthz')).status === 503, 20_000);
    const overdue = JSON.parse((await d.get('/healthz')).body) as { status: string; targets: { target: string; overdue: boolean }[] };
    expect(overdue.status).toBe('overdue');
    expect(overdue.targets.filter((t) => t.overdue).map((t) => t.target)).toEqual(['failing']);
    expect(await d.metric('bk_runs_total', 'target="failing",storage="local",status="failure"')).toBeGreaterThan(0);

    d.signal('SIGTERM');
    expect(await d.exit()).toBe(0);
    expect((await listed(config, 'added')).length).toBeGreaterThan(0);
    for (const t of ['quick', 'slowish', 'added']) await onlyCompleteBackups(repo, t);
  });

  it('SIGTERM during a backup waits for it, then exits 0 with the backup listed', async () => {
    const repo = join(dir, 'repo-b');
    const src = await sparse('wait-src', 384 * 1024 ** 2);
    const config = join(dir, 'b.yaml');
    await writeFile(config, `${storage(repo)}targets:\n  big: { driver: files, source: ${src}, schedule: "* * * * * *" }\n`);
    const d = await startDaemon(config);
    await d.waitFor('the backup to start', () => d.logged('backup started', 'big').length > 0);
    d.signal('SIGTERM');
    expect(await d.exit()).toBe(0);

    const order = d.lines.map((l) => l.msg);
    const stopAt = order.findIndex((m) => m.startsWith('SIGTERM: stopping'));
    expect(order.indexOf('waiting up to 10m for running backups to finish: big')).toBeGreaterThan(stopAt);
    expect(d.lines.findIndex((l) => l.msg === 'backup finished' && l.target === 'big')).toBeGreaterThan(stopAt);
    expect(d.logged('backup started', 'big')).toHaveLength(1); // nothing new started after the signal
    const backups = await listed(config, 'big');
    expect(backups).toHaveLength(1);
    expect(backups[0]!.rawBytes).toBeGreaterThan(384 * 1024 ** 2);
    await onlyCompleteBackups(repo, 'big');
  });

  it('aborts a backup that outlasts the grace period: exit 0, nothing partial listed', async () => {
    const repo = join(dir, 'repo-c');
    const src = await sparse('huge-src', 64 * 1024 ** 3);
    const textfile = join(dir, 'c.prom');
    const config = join(dir, 'c.yaml');
    await writeFile(config, `${storage(repo)}metrics: { textfile: ${textfile} }\ntargets:\n  huge: { driver: files, source: ${src}, schedule: "* * * * * *" }\n`);
    const d = await startDaemon(config, ['--grace', '1s']);
    await d.waitFor('the backup to start', () => d.logged('backup started', 'huge').length > 0);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    d.signal('SIGTERM');
    expect(await d.exit()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(d.logged('grace period over: aborting huge')).toHaveLength(1);
    expect(await listed(config, 'huge')).toEqual([]);
    await onlyCompleteBackups(repo, 'huge');
    expect(await readFile(textfile, 'utf8')).toMatch(/^bk_runs_total\{target="huge",storage="local",status="interrupted"\} 1$/m);
  });

  it('a second signal aborts at once (exit 130); older backups untouched; a run missed while down is logged', async () => {
    // The repository of the previous test: its one backup of `big` is older than the next run its
    // every-second schedule asked for, so the daemon must report that run as missed. `big` now
    // reads the huge source, so the new run cannot finish.
    const repo = join(dir, 'repo-b');
    const config = join(dir, 'd.yaml');
    await writeFile(config, `${storage(repo)}targets:\n  big: { driver: files, source: ${join(dir, 'huge-src')}, schedule: "* * * * * *" }\n`);
    const before = await listed(config, 'big');
    expect(before).toHaveLength(1);
    const d = await startDaemon(config);
    await d.waitFor('the missed-run warning', () => d.logged(/^missed scheduled run at .* \(bk schedule was not running\); the last backup is /, 'big').length > 0);
    await d.waitFor('the seeded metric', async () => (await d.metric('bk_last_success_timestamp_seconds', 'target="big",storage="local"')) !== undefined);
    await d.waitFor('the backup to start', () => d.logged('backup started', 'big').length > 0);
    d.signal('SIGINT');
    await d.waitFor('the grace period', () => d.logged(/^waiting up to 10m/).length > 0);
    const t0 = Date.now();
    d.signal('SIGINT');
    expect(await d.exit()).toBe(130);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(d.logged('second signal: aborting big')).toHaveLength(1);
    expect(await listed(config, 'big')).toEqual(before);
    await onlyCompleteBackups(repo, 'big');
  });

  it('refuses to start without a scheduled target', async () => {
    const config = join(dir, 'e.yaml');
    await writeFile(config, `${storage(join(dir, 'repo-e'))}targets:\n  x: { driver: files, source: ${dir} }\n`);
    const r = await runBk(['--config', config, 'schedule']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/no target in .* has a schedule/);
  });
});
