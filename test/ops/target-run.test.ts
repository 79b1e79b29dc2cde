// A target's run through `bk backup`: before hooks gate it (a failure stops it before anything is
// written), after hooks follow the outcome, hooks and targets time out, and config mistakes in
// hooks are caught with the key path.
import { open, readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';

let dir: string;
let config: string;
const marker = () => join(dir, 'marker');
const gate = () => join(dir, 'gate');

async function listed(target: string): Promise<string[]> {
  const d = join(dir, 'repo', target);
  return existsSync(d) ? (await readdir(d)).filter((f) => f.endsWith('.manifest.json')) : [];
}

beforeAll(async () => {
  dir = await makeTmpDir('bk-hooks-');
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'a.txt'), 'data\n');
  // A sparse 4 GiB file: reading it takes far longer than a 1 s timeout, but costs no disk.
  await mkdir(join(dir, 'big'));
  const fh = await open(join(dir, 'big', 'sparse'), 'w');
  await fh.truncate(4 * 1024 ** 3);
  await fh.close();
  config = join(dir, 'backup.config.yaml');
  await writeFile(
    config,
    `storages:
  local: { type: local, path: ${join(dir, 'repo')} }
targets:
  guarded:
    driver: files
    source: ${join(dir, 'src')}
    hooks:
      before:
        - [sh, -c, 'echo before-ran >> "$MARKER"; echo "hook says hi"']
        - shell: 'test -e "$GATE" || { echo "gate is closed" >&2; exit 3; }'
      after:
        - run: [sh, -c, 'echo "after $BK_HOOK $BK_TARGET $BK_STATUS $BK_BACKUP_ID" >> "$MARKER"']
          on: always
        - shell: 'echo success-only >> "$MARKER"'
        - shell: 'echo failure-only >> "$MARKER"'
          on: failure
  slowhook:
    driver: files
    source: ${join(dir, 'src')}
    hooks:
      before:
        - run: [sleep, "30"]
          timeout: 1s
  slow:
    driver: files
    source: ${join(dir, 'big')}
    timeout: 1s
    hooks:
      after:
        - shell: 'echo "slow $BK_STATUS" >> "$MARKER"'
          on: failure
`,
  );
});
afterAll(() => rmrf(dir));

const env = () => ({ MARKER: marker(), GATE: gate(), BK_LOG_FORMAT: 'json', BK_LOG_LEVEL: 'info' });
const logLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('hooks', () => {
  it('a failing before hook aborts the run before anything is written; failure hooks run', async () => {
    const r = await runBk(['--config', config, 'backup', 'guarded', '--json'], { env: env() });
    expect(r.exitCode).toBe(1);
    const res = r.json<{ results: { status: string; error: { step: string; message: string } }[] }>().results[0]!;
    expect(res.status).toBe('failed');
    expect(res.error.step).toBe('before hook');
    expect(res.error.message).toMatch(/`sh -c 'test -e .*'` exited with code 3/);
    expect(res.error.message).toContain('gate is closed'); // the hook's output travels with the error
    expect(await listed('guarded')).toEqual([]);
    expect(existsSync(join(dir, 'repo', 'guarded'))).toBe(false);
    expect((await readFile(marker(), 'utf8')).split('\n')).toEqual(['before-ran', 'after after guarded failure ', 'failure-only', '']);

    // Output and results are logged with target and step.
    const logs = logLines(r.stderr);
    expect(logs).toContainEqual(expect.objectContaining({ level: 'info', msg: 'hook says hi', target: 'guarded', step: 'before hook' }));
    expect(logs).toContainEqual(expect.objectContaining({ level: 'error', target: 'guarded', step: 'before hook', status: 'failed' }));
  });

  it('after a successful backup, success hooks run with the backup id', async () => {
    await writeFile(marker(), '');
    await writeFile(gate(), '');
    const r = await runBk(['--config', config, 'backup', 'guarded', '--json'], { env: env() });
    expect(r.exitCode).toBe(0);
    const id = r.json<{ results: { id: string }[] }>().results[0]!.id;
    expect(await listed('guarded')).toEqual([`${id}.manifest.json`]);
    expect((await readFile(marker(), 'utf8')).split('\n')).toEqual(['before-ran', `after after guarded success ${id}`, 'success-only', '']);
    const done = logLines(r.stderr).find((l) => l.msg === 'backup finished')!;
    expect(done).toMatchObject({ level: 'info', target: 'guarded', step: 'done', status: 'ok', id });
    expect(typeof done.bytes).toBe('number');
    expect(typeof done.duration).toBe('number');
    expect(typeof done.time).toBe('string');
  });

  it('a hook that outlives its timeout is killed and fails the run', async () => {
    const t0 = Date.now();
    const r = await runBk(['--config', config, 'backup', 'slowhook'], { env: env() });
    expect(r.exitCode).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(r.stdout).toMatch(/slowhook: backup FAILED: before hook: `sleep 30` timed out after 1s/);
    expect(await listed('slowhook')).toEqual([]);
  });
});

describe('target timeout', () => {
  it('stops a backup that runs too long, stores nothing, and says how to fix it', async () => {
    await writeFile(marker(), '');
    const t0 = Date.now();
    const r = await runBk(['--config', config, 'backup', 'slow', '--json'], { env: env() });
    expect(r.exitCode).toBe(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const res = r.json<{ results: { status: string; error: { code: string; message: string } }[] }>().results[0]!;
    expect(res.error.code).toBe('FAILED');
    expect(res.error.message).toMatch(/timed out after 1s; nothing was stored[\s\S]*fix: raise timeout/);
    expect(await listed('slow')).toEqual([]);
    // No partial object left behind under any name.
    const left = existsSync(join(dir, 'repo', 'slow')) ? await readdir(join(dir, 'repo', 'slow')) : [];
    expect(left).toEqual([]);
    expect(await readFile(marker(), 'utf8')).toBe('slow failure\n');
  });
});

describe('hook config', () => {
  it.each([
    ['run: "systemctl stop app"', 'run: "systemctl stop app"', /hooks\.before\.0\.run: run takes an argument array .* shell: "…"/],
    ['a bare string', '"systemctl stop app"', /hooks\.before\.0: write \[systemctl, stop, app\] \(no shell\) or shell: "systemctl stop app"/],
    ['on: in a before hook', '{ run: [/bin/true], on: failure }', /hooks\.before\.0\.on: only after hooks take on:/],
    ['both run and shell', '{ run: [/bin/true], shell: "true" }', /give exactly one of run/],
    ['a bad timeout', '{ run: [/bin/true], timeout: soon }', /hooks\.before\.0\.timeout: "soon" is not a duration/],
  ])('rejects %s with the key path', async (_name, hook, message) => {
    const bad = join(dir, 'bad-hook.yaml');
    await writeFile(bad, `targets:\n  x:\n    driver: files\n    source: ${dir}\n    hooks:\n      before:\n        - ${hook}\n`);
    const r = await runBk(['--config', bad, 'config', 'check']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
