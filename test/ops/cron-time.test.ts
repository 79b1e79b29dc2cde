// Durations, cron expressions and their systemd OnCalendar form. The next-run computation is checked
// against systemd's own calendar parser, so both the converter and nextCronRun are held to an
// independent implementation.
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { cronProblem, nextCronRun } from '../../src/time/cron.js';
import { formatDurationMs, parseDuration } from '../../src/time/duration.js';
import { cronToOnCalendar } from '../../src/ops/systemd-calendar.js';
import { cronLineSchedule } from '../../src/ops/service-entries.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['45', 45_000],
    [' 10M ', 600_000],
  ])('%s → %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', 'soon', '1x', '1h 30m', '-5s', 'h'])('%s is not a duration', (text) => expect(parseDuration(text)).toBeUndefined());
  it('formats back compactly', () => {
    expect(formatDurationMs(5_400_000)).toBe('1h30m');
    expect(formatDurationMs(600_000)).toBe('10m');
    expect(formatDurationMs(90_061_000)).toBe('1d1h1m1s');
  });
});

describe('cron expressions', () => {
  it('says what is wrong', () => {
    expect(cronProblem('0 2 * * *')).toBeUndefined();
    expect(cronProblem('*/5 * * * * *')).toBeUndefined();
    expect(cronProblem('@daily')).toBeUndefined();
    expect(cronProblem('61 * * * *')).toMatch(/61 .*minute/);
    expect(cronProblem('* * *')).toMatch(/5 or 6 fields/);
  });

  it('finds the next run after any instant, in the target time zone', () => {
    const at = (s: string) => new Date(s);
    expect(nextCronRun('0 2 * * *', 'UTC', at('2024-01-01T02:00:00Z')).toISOString()).toBe('2024-01-02T02:00:00.000Z');
    expect(nextCronRun('0 2 * * *', 'UTC', at('2024-01-01T01:59:59.900Z')).toISOString()).toBe('2024-01-01T02:00:00.000Z');
    expect(nextCronRun('0 2 * * 1-5', 'UTC', at('2024-01-05T03:00:00Z')).toISOString()).toBe('2024-01-08T02:00:00.000Z'); // Fri → Mon
    expect(nextCronRun('0 2 * * *', 'Europe/Berlin', at('2024-07-01T12:00:00Z')).toISOString()).toBe('2024-07-02T00:00:00.000Z'); // CEST
    expect(nextCronRun('0 0 L * *', 'UTC', at('2024-02-05T00:00:00Z')).toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(nextCronRun('*/10 * * * * *', 'UTC', at('2024-01-01T00:00:01Z')).toISOString()).toBe('2024-01-01T00:00:10.000Z');
    // DST: 02:30 does not exist in Berlin on 2027-03-28; node-cron skips that day, and so do we.
    expect(nextCronRun('30 2 * * *', 'Europe/Berlin', at('2027-03-27T12:00:00Z')).toISOString()).toBe('2027-03-29T00:30:00.000Z');
  });
});

const hasSystemdAnalyze = await execa('systemd-analyze', ['--version'], { reject: false }).then((r) => r.exitCode === 0);

describe('systemd OnCalendar', () => {
  const cases = ['0 2 * * *', '*/15 * * * *', '30 3 * * 1-5', '0 4 1,15 * *', '@weekly', '5-20/5 1 * jan,jul sat,sun', '*/20 * * * * *', '0 22 * * 0,6'];

  it.skipIf(!hasSystemdAnalyze).each(cases)('%s converts to a calendar systemd agrees with', async (expr) => {
    const zone = 'Europe/Berlin';
    const c = cronToOnCalendar(expr, zone);
    if (!c.ok) throw new Error(c.reason);
    const out = await execa('systemd-analyze', ['calendar', '--iterations=4', c.calendar], { env: { TZ: 'UTC' } });
    const systemd = [...out.stdout.matchAll(/(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC/g)].map((m) => `${m[1]!.replace(' ', 'T')}.000Z`);
    expect(systemd).toHaveLength(4);
    // The same four instants from node-cron's matcher, starting from just before systemd's first.
    let from = new Date(Date.parse(systemd[0]!) - 1000);
    const ours: string[] = [];
    for (let i = 0; i < 4; i++) {
      from = nextCronRun(expr, zone, from);
      ours.push(from.toISOString());
    }
    expect(ours).toEqual(systemd);
  });

  it('refuses what it cannot express', () => {
    expect(cronToOnCalendar('0 0 L * *', 'UTC')).toMatchObject({ ok: false });
    expect(cronToOnCalendar('0 0 * * 1#2', 'UTC')).toMatchObject({ ok: false });
  });
});

describe('crontab schedules', () => {
  it('passes 5-field expressions and nicknames, drops a zero seconds field', () => {
    expect(cronLineSchedule('0 2 * * *')).toEqual({ ok: true, schedule: '0 2 * * *' });
    expect(cronLineSchedule('@daily')).toEqual({ ok: true, schedule: '@daily' });
    expect(cronLineSchedule('0 30 2 * * *')).toEqual({ ok: true, schedule: '30 2 * * *' });
    expect(cronLineSchedule('0 2 ? * mon')).toEqual({ ok: true, schedule: '0 2 * * mon' });
  });
  it('refuses what cron would run differently', () => {
    expect(cronLineSchedule('*/5 * * * * *')).toMatchObject({ ok: false, reason: expect.stringMatching(/seconds/) });
    expect(cronLineSchedule('0 0 L * *')).toMatchObject({ ok: false });
    // Vixie cron ORs day-of-month and day-of-week; node-cron ANDs them.
    expect(cronLineSchedule('0 0 1 * 1')).toMatchObject({ ok: false, reason: expect.stringMatching(/EITHER/) });
  });
});
