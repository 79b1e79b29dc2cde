/**
 * Wall-clock time in an IANA time zone, with only Intl (no tz database dependency). Used for
 * `--at` dates and, later, retention buckets.
 */

export interface WallTime {
  year: number;
  month: number; // 1–12
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(tz: string): boolean {
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

export const systemTimeZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

/** The wall-clock reading of `date` in `timeZone`. */
export function wallTime(date: Date, timeZone: string): WallTime {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(date)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  };
}

function offsetMs(date: Date, timeZone: string): number {
  const w = wallTime(date, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(date.getTime() / 1000) * 1000;
}

const DAY_MS = 86_400_000;

const sameWall = (a: WallTime, b: WallTime): boolean =>
  a.year === b.year && a.month === b.month && a.day === b.day && a.hour === b.hour && a.minute === b.minute && a.second === b.second;

/**
 * The instant a wall-clock time names in `timeZone`. In a DST gap the time does not exist and the
 * instant after the gap is returned (the time read with the offset before the transition, as
 * Temporal's "compatible" does: 02:30 on a spring-forward night is 03:30, a skipped midnight is
 * 01:00); in an overlap the earlier instant wins.
 */
export function fromWallTime(w: WallTime, timeZone: string): Date {
  const naive = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  // The offsets a day either side: any transition near this wall time lies between them.
  const before = offsetMs(new Date(naive - DAY_MS), timeZone);
  const after = offsetMs(new Date(naive + DAY_MS), timeZone);
  const valid = [naive - before, naive - after].filter((t) => sameWall(wallTime(new Date(t), timeZone), w));
  if (valid.length > 0) return new Date(Math.min(...valid));
  return new Date(naive - before);
}
