/**
 * restic's duration syntax for `keep_within*` (semantics.md §1.1): a run of `<n><unit>` with units
 * y, m, d, h — `1y6m2d3h`. Years, months and days are calendar steps (31 March minus a month is
 * 2 or 3 March, as Go's AddDate normalizes), hours are exact. There is no `w` unit: `1w` is an
 * error, as in restic ≥ 0.14.
 */
import { fromWallTime, wallTime } from '../time/zoned.js';

export interface CalendarDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

const PART = /(\d+)([a-zA-Z])/y;

/** Parses `1y6m2d3h`; returns an error message for anything else. */
export function parseDuration(text: string): CalendarDuration | string {
  const s = text.trim();
  if (s === '') return 'empty duration';
  const d: CalendarDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const seen = new Set<string>();
  PART.lastIndex = 0;
  let at = 0;
  while (at < s.length) {
    PART.lastIndex = at;
    const m = PART.exec(s);
    if (!m) {
      return s[at] === '-' ? `"${text}": negative durations are not allowed` : `"${text}" is not a duration: use numbers with units y, m, d, h (e.g. 1y6m, 7d, 36h)`;
    }
    const unit = m[2]!;
    const key = ({ y: 'years', m: 'months', d: 'days', h: 'hours' } as const)[unit as 'y' | 'm' | 'd' | 'h'];
    if (!key) {
      const hint = unit === 'w' ? ' (there is no week unit: use 7d)' : unit === 'M' ? ' (months are a lowercase m)' : '';
      return `"${text}": unknown unit "${unit}"${hint}; units are y, m, d, h`;
    }
    if (seen.has(unit)) return `"${text}": unit "${unit}" given twice`;
    seen.add(unit);
    d[key] = Number(m[1]);
    if (!Number.isSafeInteger(d[key])) return `"${text}": number too large`;
    at = PART.lastIndex;
  }
  return d;
}

export const isZeroDuration = (d: CalendarDuration): boolean => d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;

/** restic's spelling: `1y6m2d3h`, zero parts left out. */
export function formatDuration(d: CalendarDuration): string {
  return `${d.years ? `${d.years}y` : ''}${d.months ? `${d.months}m` : ''}${d.days ? `${d.days}d` : ''}${d.hours ? `${d.hours}h` : ''}`;
}

/**
 * The instant `d` before `from`, with the calendar part taken on the wall clock of `timeZone` and
 * the hours as exact time — restic's `latest.AddDate(-y, -m, -d).Add(-h * time.Hour)`.
 * Out-of-range days roll over as in Go (2024-03-31 minus 1m is "2024-02-31", i.e. 2024-03-02).
 */
export function subtractDuration(from: Date, d: CalendarDuration, timeZone: string): Date {
  const w = wallTime(from, timeZone);
  const ms = from.getTime() - Math.floor(from.getTime() / 1000) * 1000;
  // Date.UTC normalizes overflowing months and days the same way Go's time.Date does.
  const shifted = new Date(Date.UTC(w.year - d.years, w.month - 1 - d.months, w.day - d.days, w.hour, w.minute, w.second));
  const instant = goDate(
    {
      year: shifted.getUTCFullYear(),
      month: shifted.getUTCMonth() + 1,
      day: shifted.getUTCDate(),
      hour: shifted.getUTCHours(),
      minute: shifted.getUTCMinutes(),
      second: shifted.getUTCSeconds(),
    },
    timeZone,
  );
  return new Date(instant.getTime() + ms - d.hours * 3600_000);
}

/**
 * Go's `time.Date` for a wall time that may fall in a DST gap or overlap: take the offset in force
 * at the naive instant; keep it if it is still in force at the result, else use the offset at the
 * result. In a gap this lands after the gap (02:30 → 03:30 CEST), in an overlap on the later
 * reading — the instants restic computes.
 */
function goDate(w: Parameters<typeof fromWallTime>[0], timeZone: string): Date {
  const naive = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  const first = offsetAt(naive, timeZone);
  const candidate = naive - first;
  const there = offsetAt(candidate, timeZone);
  return new Date(there === first ? candidate : naive - there);
}

function offsetAt(instantMs: number, timeZone: string): number {
  const w = wallTime(new Date(instantMs), timeZone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(instantMs / 1000) * 1000;
}
