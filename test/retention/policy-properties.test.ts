/**
 * Property test: random histories and policies (seeded, so a failure reproduces) against the
 * invariants retention must never break.
 */
import { describe, expect, it } from 'vitest';
import type { CalendarDuration } from '../../src/retention/duration.js';
import { applyPolicy, refusalOf, UNLIMITED, type RetentionPolicy } from '../../src/retention/policy.js';

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu'];
const COUNTS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
const DURATIONS = ['within', 'withinHourly', 'withinDaily', 'withinWeekly', 'withinMonthly', 'withinYearly'] as const;
const NOW = Date.parse('2025-06-01T00:00:00Z');

function history(r: () => number) {
  const n = 1 + Math.floor(r() * 60);
  const span = [6 * 3600_000, 20 * 86_400_000, 3 * 365 * 86_400_000][Math.floor(r() * 3)]!;
  return Array.from({ length: n }, (_, i) => {
    // Mostly past, some future-dated, some sharing one instant.
    const future = r() < 0.05;
    const t = future ? NOW + r() * 100 * 86_400_000 : NOW - r() * span;
    return { id: `b${String(i).padStart(3, '0')}`, time: new Date(Math.floor(t / 1000) * 1000) };
  });
}

function duration(r: () => number): CalendarDuration {
  return { years: r() < 0.2 ? Math.floor(r() * 3) : 0, months: r() < 0.3 ? Math.floor(r() * 13) : 0, days: r() < 0.5 ? Math.floor(r() * 40) : 0, hours: r() < 0.5 ? Math.floor(r() * 48) : 0 };
}

function policy(r: () => number): RetentionPolicy {
  const p: RetentionPolicy = {};
  for (const k of COUNTS) if (r() < 0.35) p[k] = r() < 0.1 ? UNLIMITED : Math.floor(r() * 10);
  for (const k of DURATIONS) if (r() < 0.2) p[k] = duration(r);
  return p;
}

/** A policy that keeps no more than `p`: each count lowered or dropped, each duration shortened or dropped. */
function stricter(p: RetentionPolicy, r: () => number): RetentionPolicy {
  const s: RetentionPolicy = {};
  for (const k of COUNTS) {
    const n = p[k];
    if (n === undefined || r() < 0.3) continue;
    s[k] = n === UNLIMITED ? (r() < 0.5 ? UNLIMITED : Math.floor(r() * 20)) : Math.floor(r() * (n + 1));
  }
  for (const k of DURATIONS) {
    const d = p[k];
    if (d === undefined || r() < 0.3) continue;
    s[k] = { years: Math.floor(r() * (d.years + 1)), months: r() < 0.5 ? d.months : 0, days: Math.floor(r() * (d.days + 1)), hours: Math.floor(r() * (d.hours + 1)) };
    // Fewer months with the same years can still reach further only through month-end rollover; keep years/months equal or zero both.
    if (s[k]!.years < d.years) s[k]!.months = 0;
  }
  return s;
}

describe('retention properties (1000 random histories and policies)', () => {
  it('never empties a target, gives every kept backup a reason, keeps the newest, and is order-independent', () => {
    const r = prng(20240101);
    for (let i = 0; i < 1000; i++) {
      const backups = history(r);
      const p = policy(r);
      const timeZone = ZONES[Math.floor(r() * ZONES.length)]!;
      const plan = applyPolicy(backups, p, { timeZone, now: new Date(NOW) });
      const ctx = JSON.stringify({ i, p, timeZone });
      expect(plan.keep.length, ctx).toBeGreaterThan(0);
      expect(refusalOf(plan), ctx).toBeUndefined();
      expect(plan.keep.length + plan.remove.length, ctx).toBe(backups.length);
      expect(plan.keep.every((d) => d.reasons.length > 0), ctx).toBe(true);
      expect(plan.remove.every((d) => d.reasons.length === 0), ctx).toBe(true);
      expect(plan.decisions[0]!.keep, ctx).toBe(true);
      // Backups dated in the future are never removed by duration rules.
      if (p.within && (p.within.years || p.within.months || p.within.days || p.within.hours)) {
        expect(plan.remove.some((d) => d.backup.time.getTime() > NOW), ctx).toBe(false);
      }
      const shuffled = [...backups].sort(() => r() - 0.5);
      const again = applyPolicy(shuffled, p, { timeZone, now: new Date(NOW) });
      expect(again.decisions.map((d) => [d.backup.id, d.reasons]), ctx).toEqual(plan.decisions.map((d) => [d.backup.id, d.reasons]));
    }
  });

  it('a stricter policy keeps a subset', () => {
    const r = prng(777);
    for (let i = 0; i < 1000; i++) {
      const backups = history(r);
      const loose = policy(r);
      const strict = stricter(loose, r);
      const timeZone = ZONES[Math.floor(r() * ZONES.length)]!;
      const keptLoose = new Set(applyPolicy(backups, loose, { timeZone, now: new Date(NOW) }).keep.map((d) => d.backup.id));
      const strictPlan = applyPolicy(backups, strict, { timeZone, now: new Date(NOW) });
      // An empty strict policy keeps everything (nothing is said); the subset property is about rules.
      if (strictPlan.policyEmpty) continue;
      const extra = strictPlan.keep.filter((d) => !keptLoose.has(d.backup.id)).map((d) => d.backup.id);
      expect(extra, JSON.stringify({ i, loose, strict, timeZone })).toEqual([]);
    }
  });
});
