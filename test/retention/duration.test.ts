import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, subtractDuration } from '../../src/retention/duration.js';
import { isoWeek } from '../../src/retention/iso-week.js';

describe('parseDuration (restic syntax)', () => {
  it.each([
    ['1y6m2d3h', { years: 1, months: 6, days: 2, hours: 3 }],
    ['7d', { years: 0, months: 0, days: 7, hours: 0 }],
    ['36h', { years: 0, months: 0, days: 0, hours: 36 }],
    [' 2y ', { years: 2, months: 0, days: 0, hours: 0 }],
    ['3h1y', { years: 1, months: 0, days: 0, hours: 3 }],
  ])('%s', (text, expected) => {
    expect(parseDuration(text)).toEqual(expected);
  });

  it.each([
    ['1w', /no week unit/],
    ['1M', /lowercase m/],
    ['-1d', /negative/],
    ['', /empty/],
    ['7', /not a duration/],
    ['d7', /not a duration/],
    ['1d2d', /twice/],
    ['1x', /unknown unit "x"/],
  ])('rejects %s', (text, message) => {
    expect(parseDuration(text)).toMatch(message);
  });

  it('formats like restic', () => {
    expect(formatDuration({ years: 1, months: 0, days: 2, hours: 0 })).toBe('1y2d');
  });
});

describe('subtractDuration (Go AddDate, then exact hours)', () => {
  const d = (s: string) => parseDuration(s) as Exclude<ReturnType<typeof parseDuration>, string>;
  it('rolls over short months like Go', () => {
    expect(subtractDuration(new Date('2024-03-31T12:00:00Z'), d('1m'), 'UTC').toISOString()).toBe('2024-03-02T12:00:00.000Z');
    expect(subtractDuration(new Date('2023-03-31T12:00:00Z'), d('1m'), 'UTC').toISOString()).toBe('2023-03-03T12:00:00.000Z');
  });
  it('steps days on the wall clock across DST (a day before 12:00 CEST is 12:00 CET)', () => {
    expect(subtractDuration(new Date('2024-03-31T10:00:00Z'), d('1d'), 'Europe/Berlin').toISOString()).toBe('2024-03-30T11:00:00.000Z');
  });
  it('takes hours as exact time', () => {
    expect(subtractDuration(new Date('2024-03-31T10:00:00Z'), d('24h'), 'Europe/Berlin').toISOString()).toBe('2024-03-30T10:00:00.000Z');
  });
  it('a wall time in the spring gap lands after it, as Go does (02:30 → 03:30 CEST)', () => {
    // 2024-04-01 02:30 CEST minus one day is 2024-03-31 02:30, which does not exist in Berlin.
    expect(subtractDuration(new Date('2024-04-01T00:30:00Z'), d('1d'), 'Europe/Berlin').toISOString()).toBe('2024-03-31T01:30:00.000Z');
  });
  it('keeps milliseconds', () => {
    expect(subtractDuration(new Date('2024-01-02T00:00:00.250Z'), d('1d'), 'UTC').toISOString()).toBe('2024-01-01T00:00:00.250Z');
  });
});

describe('isoWeek', () => {
  it.each([
    [2020, 12, 31, 2020, 53],
    [2021, 1, 3, 2020, 53],
    [2021, 1, 4, 2021, 1],
    [2024, 12, 29, 2024, 52],
    [2024, 12, 30, 2025, 1],
    [2026, 12, 31, 2026, 53],
    [2027, 1, 3, 2026, 53],
    [2027, 1, 4, 2027, 1],
    [2023, 1, 1, 2022, 52],
    [2024, 6, 15, 2024, 24],
  ])('%i-%i-%i is %i-W%i', (y, m, d, wy, ww) => {
    expect(isoWeek(y, m, d)).toEqual({ year: wy, week: ww });
  });

  it('agrees with an independent count for every day of 1999–2031', () => {
    // Week 1 contains 4 January; a week's Monday is 7 days after the previous one.
    for (let year = 1999; year <= 2031; year++) {
      const jan4 = Date.UTC(year, 0, 4);
      const monday1 = jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * 86_400_000;
      const nextJan4 = Date.UTC(year + 1, 0, 4);
      const nextMonday1 = nextJan4 - ((new Date(nextJan4).getUTCDay() + 6) % 7) * 86_400_000;
      for (let t = monday1; t < nextMonday1; t += 86_400_000) {
        const day = new Date(t);
        expect(isoWeek(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate())).toEqual({ year, week: Math.floor((t - monday1) / (7 * 86_400_000)) + 1 });
      }
    }
  });
});
