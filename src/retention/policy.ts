/**
 * Retention with restic `forget` semantics (0.16+; semantics.md §1.1), as a pure function of a list
 * of backups, a policy, a time zone and the current instant:
 *
 * - Backups are taken newest first. A counting rule (`last`, `hourly` … `yearly`) keeps a backup
 *   when its period (hour, day, ISO week, month, year on the wall clock of `timeZone`) differs from
 *   the period of the backup that rule kept last, and uses one of its slots. So only periods that
 *   have backups count, and the newest backup of each period wins.
 * - Rules are independent: one backup can be kept by several rules and uses a slot in each; every
 *   reason is reported.
 * - The "oldest" rule: a counting rule that still has slots left when it reaches the oldest backup
 *   keeps it even if its period was already taken ("oldest daily snapshot"); the keep_within_*
 *   rules do the same when the oldest backup lies inside their window.
 * - `within` keeps every backup newer than the duration before the newest backup that is not in
 *   the future; `within_*` keep one backup per period inside that window (empty periods count).
 *   A backup dated in the future never serves as "newest" and is never outside a window.
 * - An empty policy keeps everything.
 *
 * Reason strings are restic's, so its documentation and bk's output read the same.
 */
import { wallTime } from '../time/zoned.js';
import { formatDuration, isZeroDuration, subtractDuration, type CalendarDuration } from './duration.js';
import { isoWeek } from './iso-week.js';

/** A count of periods to keep; UNLIMITED keeps one per period without end. */
export const UNLIMITED = -1;

export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: CalendarDuration;
  withinHourly?: CalendarDuration;
  withinDaily?: CalendarDuration;
  withinWeekly?: CalendarDuration;
  withinMonthly?: CalendarDuration;
  withinYearly?: CalendarDuration;
}

export interface Dated {
  id: string;
  time: Date;
}

export interface RetentionDecision<T extends Dated> {
  backup: T;
  keep: boolean;
  /** Why it is kept (empty when removed), in restic's order: within, counting rules, within_* rules. */
  reasons: string[];
}

export interface RetentionPlan<T extends Dated> {
  /** Newest first. */
  decisions: RetentionDecision<T>[];
  keep: RetentionDecision<T>[];
  remove: RetentionDecision<T>[];
  /** The newest backup not in the future, from which keep_within* windows are measured. */
  reference?: Date;
  policyEmpty: boolean;
}

export interface RetentionClock {
  timeZone: string;
  now: Date;
}

export const NO_POLICY_REASON = 'no retention policy';

type Period = 'hour' | 'day' | 'week' | 'month' | 'year';

const COUNTING: { key: 'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly'; period: Period | 'each'; reason: string }[] = [
  { key: 'last', period: 'each', reason: 'last snapshot' },
  { key: 'hourly', period: 'hour', reason: 'hourly snapshot' },
  { key: 'daily', period: 'day', reason: 'daily snapshot' },
  { key: 'weekly', period: 'week', reason: 'weekly snapshot' },
  { key: 'monthly', period: 'month', reason: 'monthly snapshot' },
  { key: 'yearly', period: 'year', reason: 'yearly snapshot' },
];

const WINDOWED: { key: 'withinHourly' | 'withinDaily' | 'withinWeekly' | 'withinMonthly' | 'withinYearly'; period: Period; reason: string }[] = [
  { key: 'withinHourly', period: 'hour', reason: 'hourly within' },
  { key: 'withinDaily', period: 'day', reason: 'daily within' },
  { key: 'withinWeekly', period: 'week', reason: 'weekly within' },
  { key: 'withinMonthly', period: 'month', reason: 'monthly within' },
  { key: 'withinYearly', period: 'year', reason: 'yearly within' },
];

/** True when the policy keeps everything because it says nothing (restic: "no policy was specified"). */
export function isEmptyPolicy(p: RetentionPolicy): boolean {
  const counts = COUNTING.every((r) => !p[r.key]);
  const durations = [p.within, ...WINDOWED.map((r) => p[r.key])].every((d) => d === undefined || isZeroDuration(d));
  return counts && durations;
}

/** Period keys in separate namespaces, so a week can never collide with a month (kopia#5096). */
function periodKey(period: Period, time: Date, timeZone: string): string {
  const w = wallTime(time, timeZone);
  switch (period) {
    case 'hour':
      return `h:${w.year}-${w.month}-${w.day}T${w.hour}`;
    case 'day':
      return `d:${w.year}-${w.month}-${w.day}`;
    case 'week': {
      const iw = isoWeek(w.year, w.month, w.day);
      return `w:${iw.year}-W${iw.week}`;
    }
    case 'month':
      return `m:${w.year}-${w.month}`;
    case 'year':
      return `y:${w.year}`;
  }
}

/** Newest first; equal times by id, newest id first, so the result never depends on input order. */
export function newestFirst<T extends Dated>(backups: readonly T[]): T[] {
  return [...backups].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** The newest backup time strictly before `now` (restic's findLatestTimestamp). */
export function referenceTime(backups: readonly Dated[], now: Date): Date | undefined {
  let latest: Date | undefined;
  for (const b of backups) if (b.time.getTime() < now.getTime() && (!latest || b.time > latest)) latest = b.time;
  return latest;
}

export function applyPolicy<T extends Dated>(backups: readonly T[], policy: RetentionPolicy, clock: RetentionClock): RetentionPlan<T> {
  const list = newestFirst(backups);
  const policyEmpty = isEmptyPolicy(policy);
  const reference = referenceTime(list, clock.now);
  if (policyEmpty) {
    const decisions = list.map((backup) => ({ backup, keep: true, reasons: [NO_POLICY_REASON] }));
    return { decisions, keep: decisions, remove: [], reference, policyEmpty };
  }

  // With no backup in the past there is nothing to measure from: restic then measures from the
  // zero time, so every backup is inside every window.
  const cutoff = (d: CalendarDuration | undefined): number | undefined =>
    d === undefined || isZeroDuration(d) ? undefined : reference ? subtractDuration(reference, d, clock.timeZone).getTime() : Number.NEGATIVE_INFINITY;

  const counters = COUNTING.filter((r) => policy[r.key]).map((r) => ({ ...r, left: policy[r.key]!, last: undefined as string | undefined }));
  const windows = WINDOWED.filter((r) => cutoff(policy[r.key]) !== undefined).map((r) => ({
    ...r,
    label: formatDuration(policy[r.key]!),
    cutoff: cutoff(policy[r.key])!,
    last: undefined as string | undefined,
  }));
  const withinCutoff = cutoff(policy.within);

  const decisions = list.map((backup, nr): RetentionDecision<T> => {
    const oldest = nr === list.length - 1;
    const t = backup.time.getTime();
    const reasons: string[] = [];
    if (withinCutoff !== undefined && t > withinCutoff) reasons.push(`within ${formatDuration(policy.within!)}`);
    for (const c of counters) {
      if (c.left === 0) continue;
      const key = c.period === 'each' ? `#${nr}` : periodKey(c.period, backup.time, clock.timeZone);
      if (key === c.last && !oldest) continue;
      reasons.push(key === c.last ? `oldest ${c.reason}` : c.reason);
      c.last = key;
      if (c.left > 0) c.left--;
    }
    for (const w of windows) {
      if (!(t > w.cutoff)) continue;
      const key = periodKey(w.period, backup.time, clock.timeZone);
      if (key === w.last && !oldest) continue;
      reasons.push(`${key === w.last ? 'oldest ' : ''}${w.reason} ${w.label}`);
      w.last = key;
    }
    return { backup, keep: reasons.length > 0, reasons };
  });
  return { decisions, keep: decisions.filter((d) => d.keep), remove: decisions.filter((d) => !d.keep), reference, policyEmpty };
}

/**
 * Why a plan must not run, or undefined: a non-empty policy that keeps none of the backups it was
 * given would wipe the target on that storage (restic ≥ 0.17 refuses the same).
 */
export function refusalOf(plan: RetentionPlan<Dated>): string | undefined {
  if (plan.decisions.length > 0 && plan.keep.length === 0) return 'the policy would delete every backup';
  return undefined;
}

/** "keep 3 last, 7 daily, all monthly, daily within 7d, everything within 1y of the newest". */
export function describePolicy(p: RetentionPolicy): string {
  if (isEmptyPolicy(p)) return 'no retention policy (keep everything)';
  const parts: string[] = [];
  for (const r of COUNTING) {
    const n = p[r.key];
    if (n) parts.push(`${n === UNLIMITED ? 'all' : n} ${r.key === 'last' ? 'latest' : r.key}`);
  }
  for (const r of WINDOWED) {
    const d = p[r.key];
    if (d && !isZeroDuration(d)) parts.push(`${r.reason} ${formatDuration(d)}`);
  }
  if (p.within && !isZeroDuration(p.within)) parts.push(`everything within ${formatDuration(p.within)} of the newest`);
  return `keep ${parts.join(', ')}`;
}
