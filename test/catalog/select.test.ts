import { describe, expect, it } from 'vitest';
import { resolveAt, select, selectAt } from '../../src/catalog/select.js';
import { BkError } from '../../src/errors.js';
import { fakeManifest } from '../fixtures/manifest.js';

const NOW = new Date('2024-06-15T12:00:00Z');

describe('resolveAt', () => {
  it.each<[string, string, string]>([
    // A bare date is 00:00 of that day in the zone.
    ['2024-01-01', 'UTC', '2024-01-01T00:00:00.000Z'],
    ['2024-01-15', 'Europe/Berlin', '2024-01-14T23:00:00.000Z'],
    ['2024-07-01', 'Europe/Berlin', '2024-06-30T22:00:00.000Z'],
    ['2024-02-29', 'UTC', '2024-02-29T00:00:00.000Z'],
    // DST days: midnight is still on the old offset; the day after is on the new one.
    ['2024-03-31', 'Europe/Berlin', '2024-03-30T23:00:00.000Z'],
    ['2024-04-01', 'Europe/Berlin', '2024-03-31T22:00:00.000Z'],
    ['2024-10-27', 'Europe/Berlin', '2024-10-26T22:00:00.000Z'],
    ['2024-10-28', 'Europe/Berlin', '2024-10-27T23:00:00.000Z'],
    ['2024-03-10', 'America/New_York', '2024-03-10T05:00:00.000Z'],
    ['2024-11-03', 'America/New_York', '2024-11-03T04:00:00.000Z'],
    // Chile springs forward at midnight: 00:00 does not exist, the day starts at 01:00 (-03).
    ['2024-09-08', 'America/Santiago', '2024-09-08T04:00:00.000Z'],
    // ...and falls back at midnight: 00:00 exists once, on the new offset (-04).
    ['2024-04-07', 'America/Santiago', '2024-04-07T04:00:00.000Z'],
    ['2024-01-01', 'Asia/Kolkata', '2023-12-31T18:30:00.000Z'],
    ['2024-01-01', 'Pacific/Kiritimati', '2023-12-31T10:00:00.000Z'],
    // Local date-times are wall-clock time in the zone.
    ['2024-01-01T14:30', 'Europe/Berlin', '2024-01-01T13:30:00.000Z'],
    ['2024-01-01 14:30:15', 'Europe/Berlin', '2024-01-01T13:30:15.000Z'],
    ['2024-03-31T01:59:59', 'Europe/Berlin', '2024-03-31T00:59:59.000Z'],
    ['2024-03-31T03:00', 'Europe/Berlin', '2024-03-31T01:00:00.000Z'],
    // In the spring gap the time is read with the old offset: 02:30 CET = 03:30 CEST.
    ['2024-03-31T02:30', 'Europe/Berlin', '2024-03-31T01:30:00.000Z'],
    ['2024-03-10T02:30', 'America/New_York', '2024-03-10T07:30:00.000Z'],
    // In the autumn overlap the earlier instant wins.
    ['2024-10-27T02:30', 'Europe/Berlin', '2024-10-27T00:30:00.000Z'],
    ['2024-11-03T01:30', 'America/New_York', '2024-11-03T05:30:00.000Z'],
    ['2024-01-01T05:30', 'Asia/Kolkata', '2024-01-01T00:00:00.000Z'],
    // Z and offsets name an instant; the zone does not matter.
    ['2024-01-01T14:30:00Z', 'Europe/Berlin', '2024-01-01T14:30:00.000Z'],
    ['2024-01-01T14:30Z', 'America/New_York', '2024-01-01T14:30:00.000Z'],
    ['2024-01-01t14:30:00z', 'UTC', '2024-01-01T14:30:00.000Z'],
    ['2024-01-01T14:30:00.250Z', 'UTC', '2024-01-01T14:30:00.250Z'],
    ['2024-01-01T14:30:00+01:00', 'America/New_York', '2024-01-01T13:30:00.000Z'],
    ['2024-01-01T14:30:00+0100', 'UTC', '2024-01-01T13:30:00.000Z'],
    ['2024-01-01 14:30:00-05:30', 'Europe/Berlin', '2024-01-01T20:00:00.000Z'],
    ['2024-03-31T02:30:00+02:00', 'Europe/Berlin', '2024-03-31T00:30:00.000Z'],
    ['  2024-01-01  ', 'UTC', '2024-01-01T00:00:00.000Z'],
    ['now', 'Europe/Berlin', NOW.toISOString()],
  ])('%s in %s → %s', (input, zone, expected) => {
    const r = resolveAt(input, zone, NOW);
    expect(r.instant.toISOString()).toBe(expected);
    expect(r.explanation).toContain(expected);
  });

  it('explains a bare date with its zone', () => {
    expect(resolveAt('2024-03-31', 'Europe/Berlin', NOW).explanation).toBe('2024-03-31 00:00 Europe/Berlin = 2024-03-30T23:00:00.000Z');
  });

  it.each([
    '',
    'yesterday',
    '2024-1-1',
    '20240101',
    '01/02/2024',
    '2024-13-01',
    '2024-00-10',
    '2024-02-30',
    '2023-02-29',
    '2024-04-31',
    '2024-01-01T25:00',
    '2024-01-01T24:00',
    '2024-01-01T14:60',
    '2024-01-01T14:30:61',
    '2024-02-30T00:00Z',
    '2024-01-01T25:00Z',
    '2024-01-01T14:30:00+25:00',
    '2024-01-01T14:30:00 Europe/Berlin',
    '1704067200',
  ])('refuses %j with a usage error', (input) => {
    let error: unknown;
    try {
      resolveAt(input, 'UTC', NOW);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BkError);
    expect((error as BkError).code).toBe('USAGE');
    expect((error as BkError).exitCode).toBe(2);
  });

  it('refuses an unknown time zone', () => {
    expect(() => resolveAt('2024-01-01', 'Mars/Base', NOW)).toThrow(/unknown time zone/);
  });
});

describe('selectAt / select', () => {
  const b = (id: string, finishedAt: string, startedAt = finishedAt) => ({ storage: 'local', manifest: fakeManifest({ id, finishedAt, startedAt }) });
  const backups = [
    b('20240102T020000Z-0002', '2024-01-02T02:10:00.000Z'),
    b('20240101T020000Z-0001', '2024-01-01T02:10:00.000Z'),
    // Started before 2024-01-03T02:05 but finished after it: not a backup "as of" 02:05.
    b('20240103T020000Z-0003', '2024-01-03T02:30:00.000Z', '2024-01-03T02:00:00.000Z'),
    b('20240104T020000Z-0004', '2024-01-04T02:10:00.000Z'),
  ];

  it.each<[string, string]>([
    ['2024-01-01T02:10:00.000Z', '20240101T020000Z-0001'], // exactly at the finish time
    ['2024-01-01T23:59:59.999Z', '20240101T020000Z-0001'],
    ['2024-01-02T02:09:59.999Z', '20240101T020000Z-0001'],
    ['2024-01-02T02:10:00.000Z', '20240102T020000Z-0002'],
    ['2024-01-03T02:05:00.000Z', '20240102T020000Z-0002'],
    ['2024-01-03T02:30:00.000Z', '20240103T020000Z-0003'],
    ['2030-01-01T00:00:00.000Z', '20240104T020000Z-0004'],
  ])('at %s picks %s', (at, id) => {
    const sel = selectAt(backups, new Date(at));
    expect(sel.ok && sel.backup.manifest.id).toBe(id);
  });

  it('breaks a finish-time tie by id (newest id wins)', () => {
    const tie = [b('20240101T020000Z-aaaa', '2024-01-01T03:00:00.000Z'), b('20240101T020000Z-bbbb', '2024-01-01T03:00:00.000Z')];
    const sel = selectAt(tie, new Date('2024-01-02T00:00:00Z'));
    expect(sel.ok && sel.backup.manifest.id).toBe('20240101T020000Z-bbbb');
  });

  it('names the oldest backup when none finished at or before T', () => {
    const sel = selectAt(backups, new Date('2024-01-01T02:09:59.999Z'));
    expect(sel.ok).toBe(false);
    if (!sel.ok) {
      expect(sel.reason).toContain('2024-01-01T02:09:59.999Z');
      expect(sel.reason).toContain('oldest is 20240101T020000Z-0001');
      expect(sel.reason).toContain('2024-01-01T02:10:00.000Z');
    }
  });

  it('says there are no backups for an empty list', () => {
    const sel = selectAt([], NOW);
    expect(sel).toEqual({ ok: false, reason: 'there are no backups' });
  });

  it('select: latest, id, at', () => {
    const latest = select(backups, { kind: 'latest' });
    expect(latest.ok && latest.backup.manifest.id).toBe('20240104T020000Z-0004');
    const byId = select(backups, { kind: 'id', id: '20240102T020000Z-0002' });
    expect(byId.ok && byId.backup.manifest.id).toBe('20240102T020000Z-0002');
    expect(select(backups, { kind: 'id', id: 'nope' })).toEqual({ ok: false, reason: 'no backup with id nope' });
    const at = select(backups, { kind: 'at', at: new Date('2024-01-02T12:00:00Z') });
    expect(at.ok && at.backup.manifest.id).toBe('20240102T020000Z-0002');
    expect(select([], { kind: 'latest' }).ok).toBe(false);
  });

  it('does not reorder its input (pure)', () => {
    const copy = backups.map((x) => x.manifest.id);
    selectAt(backups, NOW);
    expect(backups.map((x) => x.manifest.id)).toEqual(copy);
  });
});
