/**
 * Cron expressions as node-cron 4 understands them (5 fields, or 6 with seconds first, and the
 * @daily-style nicknames): validation with a message that says which field is wrong, and the next
 * scheduled instant after any given time — which node-cron itself only answers for "now".
 *
 * Semantics follow node-cron, not Vixie cron: day-of-month and day-of-week must BOTH match when both
 * are restricted, and a wall-clock time that a DST change skips does not run that day.
 */
import cron from 'node-cron';
import { fromWallTime, wallTime } from './zoned.js';

/** undefined when valid, else what is wrong ("minute: 61 is a invalid expression for minute"). */
export function cronProblem(expr: string): string | undefined {
  if (typeof expr !== 'string' || expr.trim() === '') return 'empty cron expression';
  const r = cron.validateDetailed(expr);
  if (r.valid) return undefined;
  return r.errors.map((e) => e.message).join('; ') || 'not a cron expression';
}

export interface CronFields {
  second: number[];
  minute: number[];
  hour: number[];
  /** Numbers, or tokens like "L", "15W". */
  dayOfMonth: (number | string)[];
  month: number[];
  /** 0 = Sunday; numbers, or tokens like "5L", "1#2". */
  dayOfWeek: (number | string)[];
}

export function cronFields(expr: string): CronFields {
  return cron.parse(expr) as CronFields;
}

const MAX_DAYS = 366 * 8;

/**
 * The first instant strictly after `after` that the expression names in `timeZone`. Walks days, and
 * within a day the allowed hour/minute/second triples in order; node-cron's own matcher decides each
 * candidate, so both agree exactly (L, W and # tokens included).
 */
export function nextCronRun(expr: string, timeZone: string, after: Date): Date {
  const f = cronFields(expr);
  const hours = [...f.hour].sort((a, b) => a - b);
  const minutes = [...f.minute].sort((a, b) => a - b);
  const seconds = [...f.second].sort((a, b) => a - b);
  const matcher = cron.createTask(expr, () => undefined, { timezone: timeZone });
  try {
    const baseMs = Math.floor(after.getTime() / 1000) * 1000;
    const base = wallTime(new Date(baseMs), timeZone);
    let day = { year: base.year, month: base.month, day: base.day };
    for (let i = 0; i < MAX_DAYS; i++) {
      if (f.month.includes(day.month)) {
        const found = firstOnDay(day, i === 0 ? base : undefined);
        if (found) return found;
      }
      const d = new Date(Date.UTC(day.year, day.month - 1, day.day + 1));
      day = { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
    }
    throw new Error(`no run of "${expr}" within ${MAX_DAYS / 366} years`);

    function firstOnDay(d: { year: number; month: number; day: number }, lowerBound?: { hour: number; minute: number; second: number }): Date | undefined {
      const floor = lowerBound ? lowerBound.hour * 3600 + lowerBound.minute * 60 + lowerBound.second : -1;
      for (const hour of hours) {
        for (const minute of minutes) {
          for (const second of seconds) {
            if (hour * 3600 + minute * 60 + second <= floor) continue;
            const at = fromWallTime({ ...d, hour, minute, second }, timeZone);
            if (at.getTime() <= baseMs) continue;
            if (matcher.match(at)) return at;
            // Every time field is an allowed value, so a clean miss means the day itself does not
            // match; only a time shifted by a DST gap is worth trying further on this day.
            const w = wallTime(at, timeZone);
            if (w.hour === hour && w.minute === minute && w.second === second) return undefined;
          }
        }
      }
      return undefined;
    }
  } finally {
    void matcher.destroy();
  }
}
