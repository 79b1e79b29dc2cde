/**
 * ISO-8601 week numbering (what Go's `time.ISOWeek` and strftime's `%G-%V` give): weeks run Monday
 * to Sunday, and week 1 is the week with the year's first Thursday. So 2021-01-03 (a Sunday) is in
 * 2020-W53, and 2024-12-30 (a Monday) is in 2025-W01.
 */
export interface IsoWeek {
  year: number;
  week: number;
}

/** The ISO week of a calendar date (month 1–12). */
export function isoWeek(year: number, month: number, day: number): IsoWeek {
  const date = Date.UTC(year, month - 1, day);
  const weekday = (new Date(date).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  // The Thursday of this week decides the ISO year.
  const thursday = new Date(date + (3 - weekday) * 86_400_000);
  const isoYear = thursday.getUTCFullYear();
  const dayOfYear = Math.round((thursday.getTime() - Date.UTC(isoYear, 0, 1)) / 86_400_000);
  return { year: isoYear, week: Math.floor(dayOfYear / 7) + 1 };
}
