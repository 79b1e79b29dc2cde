/**
 * A cron expression as a systemd OnCalendar= value, when systemd can say the same thing. Built from
 * the expanded fields (node-cron's parse), so ranges, steps, lists and names all convert; the
 * L / W / # day tokens have no OnCalendar form and are reported instead.
 *
 * Both node-cron and systemd require day-of-month AND day-of-week to match when both are given, so
 * the meaning carries over (classic cron would OR them).
 */
import { cronFields } from '../time/cron.js';

export type CalendarResult = { ok: true; calendar: string } | { ok: false; reason: string };

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

export function cronToOnCalendar(expr: string, timeZone: string): CalendarResult {
  const f = cronFields(expr);
  if (f.dayOfMonth.some((v) => typeof v !== 'number') || f.dayOfWeek.some((v) => typeof v !== 'number')) {
    return { ok: false, reason: `"${expr}" uses L, W or # day tokens, which OnCalendar cannot express` };
  }
  const dom = f.dayOfMonth as number[];
  const dow = [...new Set(f.dayOfWeek as number[])];
  const weekdays = dow.length === 7 ? '' : `${weekdayList(dow)} `;
  const date = `*-${component(f.month, 1, 12)}-${component(dom, 1, 31)}`;
  const time = `${component(f.hour, 0, 23)}:${component(f.minute, 0, 59)}:${component(f.second, 0, 59)}`;
  return { ok: true, calendar: `${weekdays}${date} ${time} ${timeZone}` };
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** `*`, `00/15`, or a list of values and `a..b` ranges. */
function component(values: readonly number[], min: number, max: number): string {
  const v = [...new Set(values)].sort((a, b) => a - b);
  if (v.length === max - min + 1) return '*';
  if (v.length > 2) {
    const step = v[1]! - v[0]!;
    const regular = v.every((x, i) => i === 0 || x - v[i - 1]! === step);
    if (step > 1 && regular && v.at(-1)! + step > max) return `${pad(v[0]!)}/${step}`;
  }
  return runs(v).map(([a, b]) => (a === b ? pad(a) : b === a + 1 ? `${pad(a)},${pad(b)}` : `${pad(a)}..${pad(b)}`)).join(',');
}

/** Weekdays in systemd's order (Mon first), consecutive ones as ranges: Mon..Fri, Sat,Sun. */
function weekdayList(days: readonly number[]): string {
  const monFirst = days.map((d) => (d === 0 ? 7 : d)).sort((a, b) => a - b);
  const name = (d: number) => WEEKDAYS[d % 7]!;
  return runs(monFirst)
    .map(([a, b]) => (a === b ? name(a) : b === a + 1 ? `${name(a)},${name(b)}` : `${name(a)}..${name(b)}`))
    .join(',');
}

function runs(sorted: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const x of sorted) {
    const last = out.at(-1);
    if (last && x === last[1] + 1) last[1] = x;
    else out.push([x, x]);
  }
  return out;
}
