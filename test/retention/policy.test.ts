/**
 * restic `forget` semantics, rule by rule, as tables: backups are named by their time, `keep`
 * lists every kept backup with its reasons (in restic's order), everything else must be removed.
 */
import { describe, expect, it } from 'vitest';
import { policyFromConfig, type RetentionConfig } from '../../src/retention/config.js';
import { applyPolicy, NO_POLICY_REASON, refusalOf, describePolicy } from '../../src/retention/policy.js';

interface Case {
  name: string;
  timeZone?: string;
  now?: string;
  times: string[];
  policy: RetentionConfig;
  keep: Record<string, string[]>;
}

function run(c: Pick<Case, 'timeZone' | 'now' | 'times' | 'policy'>) {
  const backups = c.times.map((t) => ({ id: t, time: new Date(t) }));
  return applyPolicy(backups, policyFromConfig(c.policy), { timeZone: c.timeZone ?? 'UTC', now: new Date(c.now ?? '2030-01-01T00:00:00Z') });
}

const days = (from: string, n: number, hour = '02:00:00') =>
  Array.from({ length: n }, (_, i) => new Date(Date.parse(`${from}T${hour}Z`) + i * 86_400_000).toISOString().replace('.000', ''));

const cases: Case[] = [
  {
    name: 'keep_last keeps the n newest',
    times: ['2024-01-01T00:00:00Z', '2024-01-01T00:10:00Z', '2024-01-01T00:20:00Z', '2024-01-01T00:30:00Z'],
    policy: { keep_last: 2 },
    keep: { '2024-01-01T00:30:00Z': ['last snapshot'], '2024-01-01T00:20:00Z': ['last snapshot'] },
  },
  {
    name: 'keep_last with fewer backups than slots keeps all (never "oldest" for last)',
    times: ['2024-01-01T00:00:00Z', '2024-01-01T00:10:00Z'],
    policy: { keep_last: 5 },
    keep: { '2024-01-01T00:10:00Z': ['last snapshot'], '2024-01-01T00:00:00Z': ['last snapshot'] },
  },
  {
    name: 'keep_hourly: newest per hour wins',
    times: ['2024-01-01T09:05:00Z', '2024-01-01T09:55:00Z', '2024-01-01T10:05:00Z', '2024-01-01T10:40:00Z', '2024-01-01T11:00:00Z'],
    policy: { keep_hourly: 2 },
    keep: { '2024-01-01T11:00:00Z': ['hourly snapshot'], '2024-01-01T10:40:00Z': ['hourly snapshot'] },
  },
  {
    name: 'keep_daily counts only days that have backups (gaps reach further back)',
    times: ['2024-01-01T02:00:00Z', '2024-01-05T02:00:00Z', '2024-01-05T14:00:00Z', '2024-01-20T02:00:00Z', '2024-02-01T02:00:00Z'],
    policy: { keep_daily: 3 },
    keep: { '2024-02-01T02:00:00Z': ['daily snapshot'], '2024-01-20T02:00:00Z': ['daily snapshot'], '2024-01-05T14:00:00Z': ['daily snapshot'] },
  },
  {
    name: 'the oldest rule: slots left at the oldest backup keep it although its day is taken',
    times: ['2024-01-01T01:00:00Z', '2024-01-01T09:00:00Z', '2024-01-02T09:00:00Z'],
    policy: { keep_daily: 5 },
    keep: { '2024-01-02T09:00:00Z': ['daily snapshot'], '2024-01-01T09:00:00Z': ['daily snapshot'], '2024-01-01T01:00:00Z': ['oldest daily snapshot'] },
  },
  {
    name: 'no oldest rule once the slots are used up',
    times: ['2024-01-01T01:00:00Z', '2024-01-01T09:00:00Z', '2024-01-02T09:00:00Z'],
    policy: { keep_daily: 2 },
    keep: { '2024-01-02T09:00:00Z': ['daily snapshot'], '2024-01-01T09:00:00Z': ['daily snapshot'] },
  },
  {
    name: 'restic docs: --keep-daily 7 --keep-weekly 5 keeps 7 dailies and 4 more weeklies',
    // 2024-01-01 is a Monday; the last day, 2024-02-25, a Sunday: the 7 dailies are one ISO week.
    times: days('2024-01-01', 56),
    policy: { keep_daily: 7, keep_weekly: 5 },
    keep: {
      '2024-02-25T02:00:00Z': ['daily snapshot', 'weekly snapshot'],
      '2024-02-24T02:00:00Z': ['daily snapshot'],
      '2024-02-23T02:00:00Z': ['daily snapshot'],
      '2024-02-22T02:00:00Z': ['daily snapshot'],
      '2024-02-21T02:00:00Z': ['daily snapshot'],
      '2024-02-20T02:00:00Z': ['daily snapshot'],
      '2024-02-19T02:00:00Z': ['daily snapshot'],
      '2024-02-18T02:00:00Z': ['weekly snapshot'],
      '2024-02-11T02:00:00Z': ['weekly snapshot'],
      '2024-02-04T02:00:00Z': ['weekly snapshot'],
      '2024-01-28T02:00:00Z': ['weekly snapshot'],
    },
  },
  {
    name: 'ISO week 53: 2020-12-31 and 2021-01-03 share 2020-W53; 2021-01-04 starts 2021-W01',
    times: ['2020-12-27T12:00:00Z', '2020-12-31T12:00:00Z', '2021-01-03T12:00:00Z', '2021-01-04T12:00:00Z'],
    policy: { keep_weekly: 2 },
    keep: { '2021-01-04T12:00:00Z': ['weekly snapshot'], '2021-01-03T12:00:00Z': ['weekly snapshot'] },
  },
  {
    name: 'year turn: 2024-12-30 is in ISO week 2025-W01 but in year 2024',
    times: ['2024-12-29T12:00:00Z', '2024-12-30T12:00:00Z', '2025-01-01T12:00:00Z'],
    policy: { keep_weekly: 1, keep_yearly: 2 },
    keep: { '2025-01-01T12:00:00Z': ['weekly snapshot', 'yearly snapshot'], '2024-12-30T12:00:00Z': ['yearly snapshot'] },
  },
  {
    name: 'monthly and yearly buckets; unlimited keeps one per period without end',
    times: ['2022-03-05T00:00:00Z', '2022-03-20T00:00:00Z', '2023-07-01T00:00:00Z', '2023-07-09T00:00:00Z', '2024-01-15T00:00:00Z'],
    policy: { keep_monthly: 'unlimited', keep_yearly: 1 },
    keep: {
      '2024-01-15T00:00:00Z': ['monthly snapshot', 'yearly snapshot'],
      '2023-07-09T00:00:00Z': ['monthly snapshot'],
      '2022-03-20T00:00:00Z': ['monthly snapshot'],
      '2022-03-05T00:00:00Z': ['oldest monthly snapshot'],
    },
  },
  {
    name: 'days are taken in the configured zone: 23:30Z on 30 March is 31 March in Berlin',
    timeZone: 'Europe/Berlin',
    times: ['2024-03-30T12:00:00Z', '2024-03-30T23:30:00Z'],
    policy: { keep_daily: 2 },
    keep: { '2024-03-30T23:30:00Z': ['daily snapshot'], '2024-03-30T12:00:00Z': ['daily snapshot'] },
  },
  {
    name: '… while in UTC both are one day (the older kept only by the oldest rule)',
    timeZone: 'UTC',
    times: ['2024-03-30T12:00:00Z', '2024-03-30T23:30:00Z'],
    policy: { keep_daily: 2 },
    keep: { '2024-03-30T23:30:00Z': ['daily snapshot'], '2024-03-30T12:00:00Z': ['oldest daily snapshot'] },
  },
  {
    name: 'DST end in Berlin: 02:30 CEST and 02:30 CET are one wall-clock hour',
    timeZone: 'Europe/Berlin',
    // 01:30 CEST, 02:30 CEST, 02:30 CET, 03:30 CET on 2024-10-27
    times: ['2024-10-26T23:30:00Z', '2024-10-27T00:30:00Z', '2024-10-27T01:30:00Z', '2024-10-27T02:30:00Z'],
    policy: { keep_hourly: 3 },
    keep: { '2024-10-27T02:30:00Z': ['hourly snapshot'], '2024-10-27T01:30:00Z': ['hourly snapshot'], '2024-10-26T23:30:00Z': ['hourly snapshot'] },
  },
  {
    name: 'DST start in Berlin: 01:30 CET and 03:30 CEST are two hours apart on the wall, one hour in time',
    timeZone: 'Europe/Berlin',
    times: ['2024-03-31T00:30:00Z', '2024-03-31T01:30:00Z'],
    policy: { keep_hourly: 1, keep_within_hourly: '1h' },
    keep: { '2024-03-31T01:30:00Z': ['hourly snapshot', 'hourly within 1h'] },
  },
  {
    name: 'keep_within is measured from the newest backup, not from now; the cutoff itself is outside',
    now: '2030-01-01T00:00:00Z',
    times: ['2024-01-01T00:00:00Z', '2024-01-02T23:59:59Z', '2024-01-03T00:00:00Z', '2024-01-03T00:00:01Z', '2024-01-05T00:00:00Z'],
    policy: { keep_within: '2d' },
    keep: { '2024-01-05T00:00:00Z': ['within 2d'], '2024-01-03T00:00:01Z': ['within 2d'] },
  },
  {
    name: 'keep_within with calendar units: 1y6m back from 2024-08-31 12:00 is "2023-02-31", i.e. 2023-03-03 12:00',
    times: ['2023-03-02T12:00:00Z', '2023-03-03T00:00:00Z', '2023-03-03T12:00:01Z', '2024-08-31T12:00:00Z'],
    policy: { keep_within: '1y6m' },
    keep: { '2024-08-31T12:00:00Z': ['within 1y6m'], '2023-03-03T12:00:01Z': ['within 1y6m'] },
  },
  {
    name: 'a future-dated backup is not the newest for keep_within and is never removed by it',
    now: '2024-06-10T00:00:00Z',
    times: ['2024-06-01T00:00:00Z', '2024-06-05T00:00:00Z', '2024-06-08T00:00:00Z', '2024-06-09T00:00:00Z', '2030-01-01T00:00:00Z'],
    policy: { keep_within: '3d' },
    keep: { '2030-01-01T00:00:00Z': ['within 3d'], '2024-06-09T00:00:00Z': ['within 3d'], '2024-06-08T00:00:00Z': ['within 3d'] },
  },
  {
    name: 'when every backup is in the future, every backup is within',
    now: '2024-01-01T00:00:00Z',
    times: ['2025-01-01T00:00:00Z', '2026-01-01T00:00:00Z'],
    policy: { keep_within: '1d' },
    keep: { '2026-01-01T00:00:00Z': ['within 1d'], '2025-01-01T00:00:00Z': ['within 1d'] },
  },
  {
    name: 'future-dated backups still take the first slots of counting rules (restic sorts by time)',
    now: '2024-06-10T00:00:00Z',
    times: ['2024-06-08T00:00:00Z', '2024-06-09T00:00:00Z', '2030-01-01T00:00:00Z'],
    policy: { keep_last: 1 },
    keep: { '2030-01-01T00:00:00Z': ['last snapshot'] },
  },
  {
    name: 'keep_within_daily: one per day inside the window; empty days count toward it',
    times: ['2024-01-01T10:00:00Z', '2024-01-02T10:00:00Z', '2024-01-05T08:00:00Z', '2024-01-05T10:00:00Z', '2024-01-06T10:00:00Z'],
    policy: { keep_within_daily: '4d' },
    keep: { '2024-01-06T10:00:00Z': ['daily within 4d'], '2024-01-05T10:00:00Z': ['daily within 4d'] },
  },
  {
    name: 'keep_within_weekly/monthly/yearly, with the oldest rule inside the window',
    times: ['2024-05-01T00:00:00Z', '2024-05-02T00:00:00Z', '2024-05-20T00:00:00Z'],
    policy: { keep_within_weekly: '1m', keep_within_monthly: '1y', keep_within_yearly: '2y' },
    keep: {
      '2024-05-20T00:00:00Z': ['weekly within 1m', 'monthly within 1y', 'yearly within 2y'],
      '2024-05-02T00:00:00Z': ['weekly within 1m'],
      '2024-05-01T00:00:00Z': ['oldest weekly within 1m', 'oldest monthly within 1y', 'oldest yearly within 2y'],
    },
  },
  {
    name: 'every rule at once: reasons in restic order (within, counting rules, within_* rules)',
    times: ['2024-01-01T00:00:00Z', '2024-02-01T00:00:00Z', '2024-02-01T05:00:00Z'],
    policy: { keep_within: '1h', keep_last: 1, keep_hourly: 1, keep_daily: 1, keep_weekly: 1, keep_monthly: 1, keep_yearly: 1, keep_within_hourly: '1h', keep_within_daily: '1d' },
    keep: {
      '2024-02-01T05:00:00Z': ['within 1h', 'last snapshot', 'hourly snapshot', 'daily snapshot', 'weekly snapshot', 'monthly snapshot', 'yearly snapshot', 'hourly within 1h', 'daily within 1d'],
    },
  },
  {
    name: 'zero counts are off; a policy of only zeros is empty and keeps everything',
    times: ['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z'],
    policy: { keep_last: 0, keep_daily: 0 },
    keep: { '2024-01-02T00:00:00Z': [NO_POLICY_REASON], '2024-01-01T00:00:00Z': [NO_POLICY_REASON] },
  },
  {
    name: 'equal times: the order is fixed by id, whatever the input order',
    times: ['2024-01-01T00:00:00Z', '2024-01-01T00:00:00.000Z'],
    policy: { keep_last: 1 },
    keep: { '2024-01-01T00:00:00Z': ['last snapshot'] },
  },
];

describe('applyPolicy (restic forget semantics)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const plan = run(c);
      const kept = Object.fromEntries(plan.keep.map((d) => [d.backup.id, d.reasons]));
      expect(kept).toEqual(c.keep);
      expect(plan.remove.map((d) => d.backup.id).sort()).toEqual(c.times.filter((t) => !(t in c.keep)).sort());
      expect(plan.remove.every((d) => d.reasons.length === 0)).toBe(true);
    });
  }

  it('returns decisions newest first', () => {
    const plan = run({ times: ['2024-01-02T00:00:00Z', '2024-01-03T00:00:00Z', '2024-01-01T00:00:00Z'], policy: { keep_last: 1 } });
    expect(plan.decisions.map((d) => d.backup.id)).toEqual(['2024-01-03T00:00:00Z', '2024-01-02T00:00:00Z', '2024-01-01T00:00:00Z']);
  });

  it('reports the reference instant keep_within is measured from', () => {
    const plan = run({ now: '2024-06-10T00:00:00Z', times: ['2024-06-09T00:00:00Z', '2030-01-01T00:00:00Z'], policy: { keep_within: '1d' } });
    expect(plan.reference?.toISOString()).toBe('2024-06-09T00:00:00.000Z');
  });

  it('an empty list is an empty plan', () => {
    const plan = run({ times: [], policy: { keep_last: 1 } });
    expect(plan.decisions).toEqual([]);
    expect(refusalOf(plan)).toBeUndefined();
  });
});

describe('refusals', () => {
  it('refuses a plan that keeps none of the backups', () => {
    const plan = run({ times: ['2024-01-01T00:00:00Z'], policy: { keep_last: 1 } });
    expect(refusalOf(plan)).toBeUndefined();
    const wiped = { ...plan, keep: [], remove: plan.decisions.map((d) => ({ ...d, keep: false, reasons: [] })) };
    expect(refusalOf(wiped)).toMatch(/every backup/);
  });

  it('an empty policy deletes nothing', () => {
    const plan = run({ times: days('2020-01-01', 30), policy: {} });
    expect(plan.policyEmpty).toBe(true);
    expect(plan.remove).toEqual([]);
  });
});

describe('describePolicy', () => {
  it('names every rule', () => {
    expect(describePolicy(policyFromConfig({ keep_last: 3, keep_daily: 7, keep_monthly: 'unlimited', keep_within_daily: '7d', keep_within: '1y6m' }))).toBe(
      'keep 3 latest, 7 daily, all monthly, daily within 7d, everything within 1y6m of the newest',
    );
    expect(describePolicy({})).toMatch(/keep everything/);
  });
});
