// Overdue logic as a pure function (table), then `bk status` end to end against a real local
// repository: exit 0 while fresh, exit 1 once a schedule or max_age says the last backup is late.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assessBackup, DEFAULT_RUN_ALLOWANCE_MS, type Expectation } from '../../src/ops/overdue.js';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';

const t = (s: string) => new Date(s);
const last = (started: string, finished = started) => ({ startedAt: t(started), finishedAt: t(finished) });

describe('assessBackup', () => {
  const daily: Expectation = { schedule: '0 2 * * *', timezone: 'UTC' };

  it.each([
    // [name, expectation, last backup, now, overdue]
    ['fresh daily backup', daily, last('2024-01-01T02:00:03Z', '2024-01-01T02:10:00Z'), '2024-01-01T12:00:00Z', false],
    ['next run due, still within the default allowance', daily, last('2024-01-01T02:00:03Z'), '2024-01-02T02:59:59Z', false],
    ['next run missed by more than the allowance', daily, last('2024-01-01T02:00:03Z'), '2024-01-02T03:00:01Z', true],
    ['timeout shortens the allowance', { ...daily, timeoutMs: 10 * 60_000 }, last('2024-01-01T02:00:03Z'), '2024-01-02T02:10:01Z', true],
    ['jitter lengthens it', { ...daily, timeoutMs: 10 * 60_000, jitterMs: 30 * 60_000 }, last('2024-01-01T02:00:03Z'), '2024-01-02T02:39:59Z', false],
    ['no backup at all', daily, undefined, '2024-01-01T00:00:00Z', true],
    ['max_age kept', { timezone: 'UTC', maxAgeMs: 26 * 3_600_000 }, last('2024-01-01T02:00:00Z', '2024-01-01T02:05:00Z'), '2024-01-02T04:05:00Z', false],
    ['max_age exceeded', { timezone: 'UTC', maxAgeMs: 26 * 3_600_000 }, last('2024-01-01T02:00:00Z', '2024-01-01T02:05:00Z'), '2024-01-02T04:05:01Z', true],
    ['neither schedule nor max_age: never overdue', { timezone: 'UTC' }, undefined, '2030-01-01T00:00:00Z', false],
    ['weekly schedule: 6 days old is fine', { schedule: '0 3 * * 0', timezone: 'UTC' }, last('2024-01-07T03:00:00Z'), '2024-01-13T12:00:00Z', false],
  ] as const)('%s', (_name, exp, lastBackup, now, overdue) => {
    expect(assessBackup(exp, lastBackup, t(now)).overdue).toBe(overdue);
  });

  it('gives the next expected run and the deadline', () => {
    const a = assessBackup(daily, last('2024-01-01T02:00:03Z'), t('2024-01-03T00:00:00Z'));
    expect(a.nextExpected?.toISOString()).toBe('2024-01-02T02:00:00.000Z');
    expect(a.deadline?.getTime()).toBe(Date.parse('2024-01-02T02:00:00Z') + DEFAULT_RUN_ALLOWANCE_MS);
    expect(a.reason).toMatch(/2024-01-02T02:00:00.000Z/);
  });

  it('counts from `since` (a scheduler start) when that is later than the last backup', () => {
    expect(assessBackup(daily, undefined, t('2024-01-01T12:00:00Z'), t('2024-01-01T11:00:00Z')).overdue).toBe(false);
    expect(assessBackup(daily, last('2023-01-01T02:00:00Z'), t('2024-01-02T02:30:00Z'), t('2024-01-01T11:00:00Z')).overdue).toBe(false);
    expect(assessBackup(daily, undefined, t('2024-01-02T03:00:01Z'), t('2024-01-01T11:00:00Z')).overdue).toBe(true);
  });
});

describe('bk status', () => {
  let dir: string;
  let config: string;

  beforeAll(async () => {
    dir = await makeTmpDir('bk-status-');
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src', 'a.txt'), 'data\n');
    config = join(dir, 'backup.config.yaml');
    await writeFile(
      config,
      `storages:
  local: { type: local, path: ${join(dir, 'repo')} }
targets:
  hourly:
    driver: files
    source: ${join(dir, 'src')}
    schedule: "0 * * * *"
    timeout: 5m
  aged:
    driver: files
    source: ${join(dir, 'src')}
    max_age: 1h
  never:
    driver: files
    source: ${join(dir, 'src')}
`,
    );
  });
  afterAll(() => rmrf(dir));

  it('is not ok while a scheduled target has no backup', async () => {
    const r = await runBk(['--config', config, 'status', '--json']);
    expect(r.exitCode).toBe(1);
    const doc = r.json<{ ok: boolean; targets: { target: string; overdue: boolean; storages: { reason: string | null }[] }[] }>();
    expect(doc.ok).toBe(false);
    expect(doc.targets.find((x) => x.target === 'hourly')).toMatchObject({ overdue: true, storages: [{ reason: 'no backup yet' }] });
    expect(doc.targets.find((x) => x.target === 'never')).toMatchObject({ overdue: false });
  });

  it('exits 0 once every monitored target has a fresh backup, 1 when one grows old', async () => {
    expect((await runBk(['--config', config, 'backup', '--all'])).exitCode).toBe(0);
    const ok = await runBk(['--config', config, 'status']);
    expect(ok.stderr).toBe('');
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/hourly\s+local\s+\d{8}T\d{6}Z-[0-9a-f]+\s+\S+\s+\S+\s+ok/);
    expect((await runBk(['--config', config, 'status', '--quiet'])).stdout).toBe('');

    // --max-age tighter than the backup's age: overdue, and --quiet prints only the problems.
    await new Promise((r) => setTimeout(r, 1100));
    const late = await runBk(['--config', config, 'status', '--max-age', '1s', '--quiet', 'aged', 'never']);
    expect(late.exitCode).toBe(1);
    expect(late.stdout).toMatch(/aged\s+local.*OVERDUE: the last backup is older than max_age 1s/);
    expect(late.stdout).toMatch(/never\s+local.*OVERDUE/);
  });

  it('rejects a bad --max-age with exit 2', async () => {
    const r = await runBk(['--config', config, 'status', '--max-age', 'soon']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--max-age soon: not a duration/);
  });
});
