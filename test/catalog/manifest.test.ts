import { describe, expect, it } from 'vitest';
import { archiveKey, FORMAT_VERSION, manifestKey, newBackupId, parseManifest, serializeManifest, type Manifest } from '../../src/catalog/manifest.js';
import { fakeManifest } from '../fixtures/manifest.js';

const good: Manifest = fakeManifest({ id: '20240101T020000Z-3f9a', finishedAt: '2024-01-01T02:00:05.000Z', startedAt: '2024-01-01T02:00:00.000Z' });
const bytes = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

function refused(v: unknown): string {
  const r = parseManifest(bytes(v));
  expect(r.ok).toBe(false);
  return r.ok ? '' : r.error;
}

describe('manifest', () => {
  it('round-trips through serialize/parse', () => {
    const r = parseManifest(serializeManifest(good));
    expect(r).toEqual({ ok: true, manifest: good });
  });

  it('ids sort by time and read as UTC', () => {
    const a = newBackupId(new Date('2024-01-01T02:00:00.999Z'));
    const b = newBackupId(new Date('2024-01-01T02:00:01Z'));
    expect(a).toMatch(/^20240101T020000Z-[0-9a-f]{4}$/);
    expect(b).toMatch(/^20240101T020001Z-[0-9a-f]{4}$/);
    expect(a < b).toBe(true);
    expect(manifestKey('app', a)).toBe(`app/${a}.manifest.json`);
    expect(archiveKey('app', a, 'tar.zst')).toBe(`app/${a}.tar.zst`);
  });

  it.each<[string, unknown, RegExp]>([
    ['not JSON', '{"formatVersion": 1,', /not valid JSON/],
    ['empty', '', /not valid JSON/],
    ['JSON null', 'null', /invalid/],
    ['a JSON array', '[]', /invalid/],
    ['a newer format version', { ...good, formatVersion: FORMAT_VERSION + 1, somethingNew: true }, /format 2 is newer than this bk understands \(1\); upgrade bk/],
    ['format version 0', { ...good, formatVersion: 0 }, /formatVersion/],
    ['format version as a string', { ...good, formatVersion: '1' }, /formatVersion/],
    ['an unknown field', { ...good, extraField: 1 }, /extraField/],
    ['an unknown nested field', { ...good, raw: { ...good.raw, md5: 'x' } }, /raw.*md5|md5/],
    ['an upper-case sha256', { ...good, stored: { ...good.stored, sha256: 'A'.repeat(64) } }, /stored\.sha256/],
    ['a short sha256', { ...good, raw: { ...good.raw, sha256: 'a'.repeat(63) } }, /raw\.sha256/],
    ['a sha256 with a prefix', { ...good, stored: { ...good.stored, sha256: `sha256:${'a'.repeat(64)}` } }, /stored\.sha256/],
    ['negative bytes', { ...good, stored: { ...good.stored, bytes: -1 } }, /stored\.bytes/],
    ['fractional bytes', { ...good, raw: { ...good.raw, bytes: 1.5 } }, /raw\.bytes/],
    ['a missing stored hash', { ...good, stored: undefined }, /stored/],
    ['an unknown compression', { ...good, compression: 'lz4' }, /compression/],
    ['a bad id', { ...good, id: '../../etc/passwd' }, /id/],
    ['a bad finishedAt', { ...good, finishedAt: 'yesterday' }, /finishedAt/],
    ['an unknown encryption kind', { ...good, encryption: { kind: 'gpg', recipients: [] } }, /encryption/],
  ])('refuses %s with a clear message', (_name, value, expected) => {
    const error = refused(value);
    expect(error).toMatch(expected);
    expect(error).toMatch(/^manifest /);
  });
});
