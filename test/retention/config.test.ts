import { describe, expect, it } from 'vitest';
import { policyFor } from '../../src/commands/prune.js';
import { retentionFromFlags } from '../../src/commands/retention-flags.js';
import { resolveConfig } from '../../src/config/resolve.js';

const base = {
  defaults: { retention: { keep_daily: 7, keep_within: '1y6m' }, garbage_grace: '48h' },
  storages: { a: { type: 'local', path: '/a' }, b: { type: 'local', path: '/b', retention: { keep_monthly: 'unlimited' } } },
  targets: {
    web: { driver: 'files', source: '/srv' },
    db: { driver: 'files', source: '/db', retention: { keep_last: 3 }, retention_by_storage: { a: { keep_hourly: 24 } }, prune: false },
  },
};

describe('retention config', () => {
  it('resolves policies, their sources and the prune switches', () => {
    const c = resolveConfig(base);
    expect(c.targets.web!.retention).toEqual({ policy: { keep_daily: 7, keep_within: '1y6m' }, source: 'defaults.retention' });
    expect(c.targets.web!.prune).toBe(true);
    expect(c.targets.web!.garbageGrace).toBe('48h');
    expect(c.targets.db!.prune).toBe(false);
    expect(policyFor(c.targets.web, c.storages.a!)).toEqual({ policy: { keep_daily: 7, keep_within: '1y6m' }, source: 'defaults.retention' });
    expect(policyFor(c.targets.web, c.storages.b!)).toEqual({ policy: { keep_monthly: 'unlimited' }, source: 'storages.b.retention' });
    expect(policyFor(c.targets.db, c.storages.a!)).toEqual({ policy: { keep_hourly: 24 }, source: 'targets.db.retention_by_storage.a' });
    expect(policyFor(c.targets.db, c.storages.b!)).toEqual({ policy: { keep_monthly: 'unlimited' }, source: 'storages.b.retention' });
    expect(policyFor(undefined, { name: 'x', type: 'local', options: {} })).toEqual({ policy: {}, source: 'none' });
    // The storage type's own schema never sees `retention`.
    expect(c.storages.b!.options).toEqual({ type: 'local', path: '/b' });
  });

  it.each([
    [{ ...base, defaults: { retention: { keep_daily: -1 } } }, /defaults\.retention\.keep_daily: use a count ≥ 0 or unlimited/],
    [{ ...base, defaults: { retention: { keep_within: '2w' } } }, /defaults\.retention\.keep_within: "2w": unknown unit "w" \(there is no week unit: use 7d\)/],
    [{ ...base, defaults: { retention: { keep_dayly: 3 } } }, /defaults\.retention: unknown key keep_dayly/],
    [{ ...base, storages: { a: { type: 'local', path: '/a', retention: { keep_last: 'all' } } } }, /storages\.a\.retention\.keep_last/],
    [{ ...base, targets: { web: { driver: 'files', source: '/s', retention_by_storage: { nope: { keep_last: 1 } } } } }, /targets\.web\.retention_by_storage\.nope: no storage named "nope"/],
    [{ ...base, targets: { web: { driver: 'files', source: '/s', garbage_grace: '1 day' } } }, /targets\.web\.garbage_grace/],
  ])('rejects %#', (raw, message) => {
    expect(() => resolveConfig(raw)).toThrow(message);
  });
});

describe('--keep-* flags', () => {
  it('are the policy when given, and nothing otherwise', () => {
    expect(retentionFromFlags({})).toBeUndefined();
    expect(retentionFromFlags({ keepLast: '3', keepMonthly: 'unlimited', keepWithinDaily: '7d' })).toEqual({ keep_last: 3, keep_monthly: 'unlimited', keep_within_daily: '7d' });
  });
  it.each([
    [{ keepDaily: 'seven' }, /--keep-daily seven: use a count/],
    [{ keepDaily: '-1' }, /--keep-daily -1/],
    [{ keepWithinWeekly: '1w' }, /--keep-within-weekly: "1w": unknown unit/],
  ])('rejects %o', (flags, message) => {
    expect(() => retentionFromFlags(flags)).toThrow(message);
  });
});
