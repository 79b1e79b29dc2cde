/**
 * Restore-time selection (DESIGN §6): pure functions of a list of manifests, a time and a zone.
 */
import { BkError } from '../errors.js';
import { fromWallTime, isValidTimeZone, type WallTime } from '../time/zoned.js';
import type { Manifest } from './manifest.js';

export interface ResolvedInstant {
  instant: Date;
  /** How the input was read, for the line printed before a restore. */
  explanation: string;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const LOCAL_DATETIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$/i;
const ZONED_DATETIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|([+-])(\d{2}):?(\d{2}))$/i;

/**
 * Reads `--at`: a bare date is 00:00 of that day in `timeZone`; a date-time without an offset is
 * wall-clock time in `timeZone`; one with `Z` or an offset is that instant; `now` is the clock.
 */
export function resolveAt(input: string, timeZone: string, now: Date): ResolvedInstant {
  const text = input.trim();
  if (!isValidTimeZone(timeZone)) throw new BkError('USAGE', `unknown time zone "${timeZone}"`, { step: 'restore' });
  if (text === 'now') return { instant: now, explanation: `now (${now.toISOString()})` };
  let m = DATE.exec(text);
  if (m) {
    const wall = checked({ year: +m[1]!, month: +m[2]!, day: +m[3]!, hour: 0, minute: 0, second: 0 }, input);
    const instant = fromWallTime(wall, timeZone);
    return { instant, explanation: `${text} 00:00 ${timeZone} = ${instant.toISOString()}` };
  }
  m = LOCAL_DATETIME.exec(text);
  if (m) {
    const wall = checked({ year: +m[1]!, month: +m[2]!, day: +m[3]!, hour: +m[4]!, minute: +m[5]!, second: m[6] ? +m[6] : 0 }, input);
    const instant = fromWallTime(wall, timeZone);
    return { instant, explanation: `${text} ${timeZone} = ${instant.toISOString()}` };
  }
  m = ZONED_DATETIME.exec(text);
  if (m) {
    const wall = checked({ year: +m[1]!, month: +m[2]!, day: +m[3]!, hour: +m[4]!, minute: +m[5]!, second: m[6] ? +m[6] : 0 }, input);
    const ms = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
    let offsetMinutes = 0;
    if (m[8]!.toUpperCase() !== 'Z') {
      const hours = +m[10]!;
      const minutes = +m[11]!;
      if (hours > 23 || minutes > 59) throw invalid(input);
      offsetMinutes = (m[9] === '-' ? -1 : 1) * (hours * 60 + minutes);
    }
    const utc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second, ms) - offsetMinutes * 60_000;
    const instant = new Date(utc);
    return { instant, explanation: instant.toISOString() };
  }
  throw new BkError('USAGE', `cannot read --at "${input}"`, {
    step: 'restore',
    hint: 'use a date (2024-01-01), a local time (2024-01-01T14:30) or an instant (2024-01-01T14:30:00Z)',
  });
}

/** Refuses dates that do not exist (2024-02-30, 25:00) instead of letting Date roll them over. */
function checked(w: WallTime, input: string): WallTime {
  const daysInMonth = new Date(Date.UTC(w.year, w.month, 0)).getUTCDate();
  const ok = w.month >= 1 && w.month <= 12 && w.day >= 1 && w.day <= daysInMonth && w.hour <= 23 && w.minute <= 59 && w.second <= 59;
  if (!ok) throw invalid(input);
  return w;
}

const invalid = (input: string): BkError => new BkError('USAGE', `"${input}" is not a valid date`, { step: 'restore' });

/** Newest first, by finish time, then id. */
export function newestFirst<T extends { manifest: Manifest }>(backups: readonly T[]): T[] {
  return [...backups].sort(
    (a, b) =>
      b.manifest.finishedAt.localeCompare(a.manifest.finishedAt) || b.manifest.id.localeCompare(a.manifest.id),
  );
}

export type Selection<T> = { ok: true; backup: T } | { ok: false; reason: string };

/** The newest complete backup whose finish time is at or before `at` (DESIGN §6). */
export function selectAt<T extends { manifest: Manifest }>(backups: readonly T[], at: Date): Selection<T> {
  const sorted = newestFirst(backups);
  const hit = sorted.find((b) => Date.parse(b.manifest.finishedAt) <= at.getTime());
  if (hit) return { ok: true, backup: hit };
  const oldest = sorted.at(-1);
  return {
    ok: false,
    reason: oldest
      ? `no backup finished at or before ${at.toISOString()}; the oldest is ${oldest.manifest.id} (finished ${oldest.manifest.finishedAt})`
      : 'there are no backups',
  };
}

/** How a command names the backup it wants. */
export type Selector = { kind: 'latest' } | { kind: 'id'; id: string } | { kind: 'at'; at: Date };

export function describeSelector(s: Selector): string {
  return s.kind === 'latest' ? 'the latest backup' : s.kind === 'id' ? `backup ${s.id}` : `the newest backup finished at or before ${s.at.toISOString()}`;
}

/** Applies a selector to the backups of one target (pure). */
export function select<T extends { manifest: Manifest }>(backups: readonly T[], s: Selector): Selection<T> {
  if (s.kind === 'at') return selectAt(backups, s.at);
  if (s.kind === 'id') {
    const hit = backups.find((b) => b.manifest.id === s.id);
    return hit ? { ok: true, backup: hit } : { ok: false, reason: `no backup with id ${s.id}` };
  }
  const latest = newestFirst(backups)[0];
  return latest ? { ok: true, backup: latest } : { ok: false, reason: 'there are no backups' };
}
