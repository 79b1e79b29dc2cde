#!/usr/bin/env node
/**
 * Regenerates the retention golden files from a real restic (not run by the tests; the goldens are
 * committed). For each case: a throwaway restic repository gets one snapshot per chosen instant
 * (`restic backup --time`, with TZ set to the case's zone, so restic buckets by that zone's wall
 * clock exactly as bk does), then `restic forget --dry-run --json` applies the policy.
 *
 * The restic Debian ships (0.14) predates the "oldest" rule of 0.16 (restic#3624): a rule that still
 * has slots left when it reaches the oldest snapshot keeps it too, with the reason "oldest <reason>".
 * That rule changes only the oldest snapshot of a group, so `expected` is restic 0.14's answer plus
 * the oldest snapshot's extra reasons, derived from restic's own output (never from bk's code):
 * - a counting rule had slots left at the oldest iff the `counters` of the last snapshot kept before
 *   it (restic's JSON) are non-zero for that rule (-1 = unlimited);
 * - a keep_within_* rule covers the oldest iff `restic forget --keep-within D` keeps it.
 * If the rule already kept the oldest in 0.14 (a new period), 0.16 gives the plain reason: no change.
 * Both restic's raw answer (`restic014`) and the adjusted one (`expected`) are stored.
 *
 * Usage: node test/retention/golden/generate-with-restic.mjs   (needs `restic` on PATH)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const H = 3600_000;
const D = 24 * H;

/** n instants from `start`, `step` apart, with an optional jitter pattern in minutes. */
function series(start, n, step, jitterMin = []) {
  const t0 = Date.parse(start);
  return Array.from({ length: n }, (_, i) => new Date(t0 + i * step + (jitterMin[i % (jitterMin.length || 1)] ?? 0) * 60_000).toISOString());
}

const cases = [
  {
    name: 'daily-weekly-overlap',
    description: 'restic docs example: --keep-daily 7 --keep-weekly 5 keeps 7 dailies and only 4 more weeklies, because one daily is also a weekly',
    timezone: 'UTC',
    times: series('2024-01-01T02:00:00Z', 40, D),
    policy: { keep_daily: 7, keep_weekly: 5 },
  },
  {
    name: 'gfs-berlin',
    description: 'a typical grandfather-father-son policy over two irregular years in Europe/Berlin, with several backups on some days',
    timezone: 'Europe/Berlin',
    times: [
      ...series('2023-01-03T01:00:00Z', 12, 31 * D, [0, 90, 600, 1300]),
      ...series('2024-01-15T22:30:00Z', 10, 9 * D, [0, 45]),
      ...series('2024-05-01T00:10:00Z', 12, 7 * H, [0, 20]),
    ],
    policy: { keep_last: 3, keep_daily: 5, keep_weekly: 4, keep_monthly: 6, keep_yearly: 'unlimited' },
  },
  {
    name: 'iso-week-year-turn',
    description: 'ISO weeks at year turns: 2020-W53 (2020-12-28..2021-01-03), 2026-W53 and 2027-W01; weekly and yearly buckets disagree on which year a day belongs to',
    timezone: 'UTC',
    times: [...series('2020-12-24T12:00:00Z', 14, D), ...series('2026-12-26T23:30:00Z', 12, D)],
    policy: { keep_weekly: 6, keep_yearly: 3 },
  },
  {
    name: 'dst-berlin',
    description: 'hourly backups across both 2024 DST changes in Europe/Berlin: the spring day has 23 hours, the autumn day 25 (two 02:xx hours)',
    timezone: 'Europe/Berlin',
    times: [...series('2024-03-30T22:15:00Z', 8, H), ...series('2024-10-26T22:15:00Z', 8, H)],
    policy: { keep_hourly: 11, keep_daily: 3 },
  },
  {
    name: 'keep-within',
    description: 'keep_within 1y6m2d3h measured back from the newest backup, in America/New_York',
    timezone: 'America/New_York',
    times: series('2022-01-10T15:00:00Z', 30, 23 * D, [0, 300, 900]),
    policy: { keep_within: '1y6m2d3h' },
  },
  {
    name: 'keep-within-month-end',
    description: 'keep_within 1m from 31 March: Go normalizes 31 February to 2 March (leap year), so the window is shorter than a month',
    timezone: 'UTC',
    times: ['2024-02-28T12:00:00Z', '2024-02-29T12:00:00Z', '2024-03-01T12:00:00Z', '2024-03-02T11:00:00Z', '2024-03-02T13:00:00Z', '2024-03-15T12:00:00Z', '2024-03-31T12:00:00Z'],
    policy: { keep_within: '1m' },
  },
  {
    name: 'within-buckets',
    description: 'keep_within_hourly/daily/weekly/monthly/yearly windows (empty periods count toward the window) combined with keep_last',
    timezone: 'Europe/Berlin',
    times: [...series('2021-06-01T10:00:00Z', 20, 40 * D, [0, 700]), ...series('2023-09-01T05:00:00Z', 20, 5 * H, [0, 17])],
    policy: { keep_last: 2, keep_within_hourly: '12h', keep_within_daily: '7d', keep_within_weekly: '1m', keep_within_monthly: '1y', keep_within_yearly: '3y' },
  },
  {
    name: 'future-dated',
    description: 'a backup dated in the future never counts as the newest for keep_within, and duration rules never remove it',
    timezone: 'UTC',
    times: [...series('2024-06-01T03:00:00Z', 10, D), '2099-01-01T00:00:00Z'],
    policy: { keep_within: '3d', keep_daily: 2 },
  },
  {
    name: 'oldest-rule',
    description: 'rules with slots left at the oldest backup keep it too ("oldest daily snapshot"), even though a newer backup already took its period',
    timezone: 'UTC',
    times: ['2024-01-01T01:00:00Z', '2024-01-01T05:00:00Z', '2024-01-01T09:00:00Z', '2024-01-02T01:00:00Z', '2024-01-02T09:00:00Z', '2024-01-03T09:00:00Z'],
    policy: { keep_daily: 10, keep_monthly: 5, keep_within_daily: '2d' },
  },
  {
    name: 'unlimited-and-last',
    description: 'keep_monthly unlimited with keep_last and keep_hourly; every rule uses a slot in the newest backup',
    timezone: 'Asia/Kolkata',
    times: series('2023-11-20T20:00:00Z', 30, 2.5 * D, [0, 30, 200]),
    policy: { keep_last: 4, keep_hourly: 2, keep_monthly: 'unlimited' },
  },
];

/**
 * restic 0.14 has no `unlimited` (0.15+ maps it to -1, and 0.14 treats -1 as "off"); a count larger
 * than any case's number of periods is the same rule.
 */
const UNLIMITED_0_14 = '1000000';

const FLAG = {
  keep_last: '--keep-last',
  keep_hourly: '--keep-hourly',
  keep_daily: '--keep-daily',
  keep_weekly: '--keep-weekly',
  keep_monthly: '--keep-monthly',
  keep_yearly: '--keep-yearly',
  keep_within: '--keep-within',
  keep_within_hourly: '--keep-within-hourly',
  keep_within_daily: '--keep-within-daily',
  keep_within_weekly: '--keep-within-weekly',
  keep_within_monthly: '--keep-within-monthly',
  keep_within_yearly: '--keep-within-yearly',
};
const COUNT_RULES = [
  ['keep_last', 'last', 'last snapshot'],
  ['keep_hourly', 'hourly', 'hourly snapshot'],
  ['keep_daily', 'daily', 'daily snapshot'],
  ['keep_weekly', 'weekly', 'weekly snapshot'],
  ['keep_monthly', 'monthly', 'monthly snapshot'],
  ['keep_yearly', 'yearly', 'yearly snapshot'],
];
const WITHIN_RULES = [
  ['keep_within_hourly', 'hourly within'],
  ['keep_within_daily', 'daily within'],
  ['keep_within_weekly', 'weekly within'],
  ['keep_within_monthly', 'monthly within'],
  ['keep_within_yearly', 'yearly within'],
];

/** "2024-01-01 02:00:00" in `tz`, the form `restic backup --time` reads in the local zone. */
function wall(iso, tz) {
  const f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const p = Object.fromEntries(f.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

function restic(env, args) {
  return execFileSync('restic', args, { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function generate(c, version) {
  const dir = mkdtempSync(join(tmpdir(), 'bk-restic-golden-'));
  try {
    // A throwaway repository: the password only guards test data that is deleted below.
    const env = { RESTIC_REPOSITORY: join(dir, 'repo'), RESTIC_PASSWORD: 'golden', RESTIC_CACHE_DIR: join(dir, 'cache'), TZ: c.timezone };
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'f'), 'x');
    restic(env, ['init', '-q']);
    for (const t of c.times) restic(env, ['backup', '-q', '--host', 'golden', '--time', wall(t, c.timezone), join(dir, 'data')]);
    const snaps = JSON.parse(restic(env, ['snapshots', '--json']));
    const idOf = new Map();
    const ordered = [...snaps].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    ordered.forEach((s, i) => idOf.set(s.id, `s${String(i + 1).padStart(2, '0')}`));
    const backups = ordered.map((s) => ({ id: idOf.get(s.id), time: new Date(s.time).toISOString(), resticTime: s.time }));

    const forget = (policy) => {
      const args = ['forget', '--dry-run', '--json'];
      for (const [k, v] of Object.entries(policy)) args.push(FLAG[k], v === 'unlimited' ? UNLIMITED_0_14 : String(v));
      const groups = JSON.parse(restic(env, args));
      if (groups.length !== 1) throw new Error(`${c.name}: expected one group, got ${groups.length}`);
      return groups[0];
    };
    const now = new Date().toISOString();
    const g = forget(c.policy);
    // reasons[].snapshot carries no id in restic's JSON; reasons are in the same order as keep[].
    const reasonsOf = new Map(g.keep.map((k, i) => [idOf.get(k.id), g.reasons[i]]));
    const newestFirst = [...backups].reverse();
    const restic014 = newestFirst.map((b) => ({ id: b.id, keep: reasonsOf.has(b.id), reasons: reasonsOf.get(b.id)?.matches ?? [] }));

    // The 0.16 "oldest" adjustment, from restic's own answers (see the header).
    const oldest = newestFirst.at(-1);
    const keptBefore = newestFirst.slice(0, -1).filter((b) => reasonsOf.has(b.id)).at(-1);
    const counters = keptBefore ? reasonsOf.get(keptBefore.id).counters : undefined;
    const oldestReasons = [...(reasonsOf.get(oldest.id)?.matches ?? [])];
    const ruleOrder = (reason) => {
      const base = reason.replace(/^oldest /, '');
      if (base.startsWith('within ')) return 0;
      const ci = COUNT_RULES.findIndex(([, , r]) => r === base);
      if (ci >= 0) return 1 + ci;
      const wi = WITHIN_RULES.findIndex(([, r]) => base.startsWith(`${r} `));
      return 10 + wi;
    };
    for (const [key, counterKey, reason] of COUNT_RULES) {
      const configured = c.policy[key];
      if (configured === undefined) continue;
      const initial = configured === 'unlimited' ? -1 : configured;
      const left = counters ? (counters[counterKey] ?? 0) : initial;
      if (left !== 0 && !oldestReasons.includes(reason)) oldestReasons.push(`oldest ${reason}`);
    }
    for (const [key, reason] of WITHIN_RULES) {
      const d = c.policy[key];
      if (d === undefined) continue;
      const label = `${reason} ${d}`;
      if (oldestReasons.includes(label)) continue;
      const inWindow = forget({ keep_within: d }).keep.some((k) => idOf.get(k.id) === oldest.id);
      if (inWindow) oldestReasons.push(`oldest ${label}`);
    }
    oldestReasons.sort((a, b) => ruleOrder(a) - ruleOrder(b));
    const expected = restic014.map((r) => (r.id === oldest.id ? { id: r.id, keep: oldestReasons.length > 0, reasons: oldestReasons } : r));

    return {
      name: c.name,
      description: c.description,
      source: `restic ${version} forget --dry-run --json (TZ=${c.timezone}) on a throwaway repository; expected = restic014 plus the restic 0.16 "oldest" rule, derived as described in generate-with-restic.mjs`,
      timezone: c.timezone,
      now,
      policy: c.policy,
      backups: backups.map(({ id, time, resticTime }) => ({ id, time, resticTime })),
      expected,
      restic014,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const version = restic({}, ['version']).split(' ')[1];
const only = process.argv.slice(2);
for (const c of cases) {
  if (only.length > 0 && !only.includes(c.name)) continue;
  const golden = generate(c, version);
  writeFileSync(join(here, `${c.name}.json`), `${JSON.stringify(golden, null, 2)}\n`);
  process.stdout.write(`${c.name}: ${golden.backups.length} backups, keep ${golden.expected.filter((e) => e.keep).length}\n`);
}
