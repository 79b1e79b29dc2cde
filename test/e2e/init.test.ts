// `bk init` writes a starter config that `bk config check` accepts and that backs up as is.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';

let work: string;
beforeAll(async () => {
  work = await makeTmpDir('bk-e2e-init-');
  await writeFile(join(work, 'app.txt'), 'some app file');
});
afterAll(async () => {
  await rmrf(work);
});

describe('bk init', () => {
  it('writes a 0600 starter config that bk config check accepts', async () => {
    const r = await runBk(['init'], { cwd: work });
    expect(r.exitCode, r.stderr).toBe(0);
    const file = join(work, 'backup.config.yaml');
    expect(r.stdout).toContain(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toMatch(/^# bk starter config/);
    const check = await runBk(['config', 'check', '--json'], { cwd: work });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    const doc = check.json<{ ok: boolean; findings: { subject: string; name: string; ok: boolean }[] }>();
    expect(doc.ok).toBe(true);
    expect(doc.findings.map((f) => `${f.subject}: ${f.name}`)).toEqual(
      expect.arrayContaining(['config: file', 'storage local: write', 'target app-files: tar', 'target app-files: rsync', 'target app-files: source']),
    );
  });

  it('the starter config backs up and lists as it is (found from the working directory)', async () => {
    const b = await runBk(['backup', '--json'], { cwd: work });
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.json<{ results: { target: string; status: string }[] }>().results).toEqual([expect.objectContaining({ target: 'app-files', status: 'ok' })]);
    const l = await runBk(['list', '--json'], { cwd: work });
    expect(l.json<{ backups: { target: string; storage: string }[] }>().backups).toEqual([expect.objectContaining({ target: 'app-files', storage: 'local' })]);
  });

  it('refuses to overwrite an existing config (exit 2) unless --force', async () => {
    const file = join(work, 'backup.config.yaml');
    await writeFile(file, '# mine\ntargets: {}\n');
    const r = await runBk(['init'], { cwd: work });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/already exists.*\n.*--force/);
    expect(await readFile(file, 'utf8')).toBe('# mine\ntargets: {}\n');
    const forced = await runBk(['init', '--force'], { cwd: work });
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(await readFile(file, 'utf8')).toMatch(/^# bk starter config/);
  });

  it('writes to a given path', async () => {
    const r = await runBk(['init', 'etc/bk.yaml'], { cwd: work });
    // The directory does not exist: a clear failure, not a stack trace.
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/cannot write .*etc\/bk\.yaml/);
    const ok = await runBk(['init', 'other.yaml'], { cwd: work });
    expect(ok.exitCode, ok.stderr).toBe(0);
    const check = await runBk(['config', 'check', '--config', 'other.yaml'], { cwd: work });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
  });
});
