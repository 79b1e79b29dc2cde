/**
 * Hostile stored data, for every driver: archives and manifests damaged, swapped, truncated or
 * rewritten by hand. `bk verify` and `bk restore` must refuse each with a message that says what
 * is wrong, and a refused restore must leave its destination exactly as it was — including the
 * case where the stored bytes are intact but the decompressed payload is not what the manifest
 * says (the check that runs while bytes already flow into the target).
 *
 * Every damaged backup is a target of its own in one repository, so one `bk verify --all` and
 * one whole-system `bk restore --yes` judge them all at once. Tar archives that try to escape
 * their destination are covered for the files driver in test/e2e/files-failures.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk, type BkRun } from '../helpers/run-bk.js';
import { filesSpec, mysqlSpec, postgresSpec, redisSpec, type Kit, type KitSpec } from './kits.js';
import { rng } from './seeded.js';
import { localView } from './storage-view.js';

interface Manifest {
  formatVersion: number;
  id: string;
  target: string;
  archive: string;
  raw: { bytes: number; sha256: string };
  stored: { bytes: number; sha256: string };
  [k: string]: unknown;
}

/** Damage to the archive, or to a manifest field that still parses: verify and restore say INTEGRITY. */
const ARCHIVE_DAMAGE: Record<string, { damage: (archive: string, m: Manifest, other: string) => Promise<Manifest | void>; says: RegExp }> = {
  // zstd may find the damaged block before the hash is complete: either is a clear refusal.
  'flipped byte in the middle': { damage: (a) => flip(a, 0.5), says: /does not match its manifest: sha256|zstd (exited|killed)/ },
  'flipped last byte': { damage: (a) => flip(a, 1), says: /does not match its manifest: sha256/ },
  truncated: { damage: async (a) => truncate(a, 1000), says: /does not match its manifest: 1000 bytes instead of/ },
  'bytes appended': { damage: async (a) => writeFile(a, randomBytes(100), { flag: 'a' }), says: /does not match its manifest: more than the recorded/ },
  'archive deleted': { damage: async (a) => rm(a), says: /archive .* is missing/ },
  'archive of another backup put in its place': { damage: async (a, _m, other) => cp(other, a), says: /does not match its manifest/ },
  'stored sha256 in the manifest wrong': {
    damage: async (_a, m) => ({ ...m, stored: { ...m.stored, sha256: createHash('sha256').update('not it').digest('hex') } }),
    says: /does not match its manifest: sha256/,
  },
  // The stored bytes pass the check made before anything is applied; the payload fails in flight.
  'raw sha256 in the manifest wrong': {
    damage: async (_a, m) => ({ ...m, raw: { ...m.raw, sha256: createHash('sha256').update('not it').digest('hex') } }),
    says: /decompressed payload .* does not match its manifest: sha256/,
  },
  'raw size in the manifest wrong': { damage: async (_a, m) => ({ ...m, raw: { ...m.raw, bytes: m.raw.bytes + 1 } }), says: /decompressed payload .* does not match its manifest/ },
};

/** Damage that makes the manifest untrustworthy: the backup is not listed, and the problem is named. */
const MANIFEST_DAMAGE: Record<string, { damage: (text: string, m: Manifest) => string | undefined; says: RegExp }> = {
  'manifest deleted': { damage: () => undefined, says: /no backup|not found|nothing restored/i },
  'manifest not JSON': { damage: (t) => t.slice(0, t.length / 2), says: /manifest is not valid JSON/ },
  'manifest with an unknown field': { damage: (_t, m) => JSON.stringify({ ...m, restoreHook: 'rm -rf /' }), says: /manifest is invalid: .*restoreHook|Unrecognized key.*restoreHook/ },
  'manifest of a newer format': { damage: (_t, m) => JSON.stringify({ ...m, formatVersion: 99 }), says: /manifest format 99 is newer than this bk understands/ },
  'manifest pointing outside its directory': { damage: (_t, m) => JSON.stringify({ ...m, archive: `../etc/${m.id}.tar` }), says: /manifest does not match its location/ },
  'manifest claiming another target': { damage: (_t, m) => JSON.stringify({ ...m, target: 'someone-else' }), says: /manifest does not match its location/ },
};

async function flip(path: string, at: number): Promise<void> {
  const buf = await readFile(path);
  const i = Math.min(buf.length - 1, Math.floor(buf.length * at));
  buf[i] = buf[i]! ^ 0x40;
  await writeFile(path, buf);
}

const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();

let work: string;
beforeAll(async () => {
  work = await makeTmpDir('bk-hostile-data-');
});
afterAll(async () => {
  await rmrf(work);
});

const specs: KitSpec[] = [filesSpec, postgresSpec, redisSpec, mysqlSpec].filter((s) => s.available());

describe.each(specs.map((s) => [s.driver, s] as const))('hostile stored data: %s', (driver, spec) => {
  let kit: Kit;
  let dir: string;
  let repo: string;
  let config: string;
  let restoreConfig: string;
  const env = () => ({ BK_LOCK_DIR: join(dir, 'locks'), TZ: 'UTC' });
  const bk = (args: string[]) => runBk(args, { env: env() });
  let destBefore: string;
  let verify: BkRun;
  let restoreAll: BkRun;

  beforeAll(async () => {
    dir = join(work, driver);
    await mkdir(dir, { recursive: true });
    repo = join(dir, 'repo');
    config = join(dir, 'verify.yaml');
    restoreConfig = join(dir, 'restore.yaml');
    kit = await spec.start(join(dir, 'kit'), join(dir, 'restore-root'));
    const r = rng(7);
    const targetYaml = (names: string[]) =>
      ['storages:', '  local:', '    type: local', `    path: ${JSON.stringify(repo)}`, 'targets:', ...names.flatMap((n) => [`  ${n}:`, ...kit.targetLines().map((l) => `    ${l}`)]), ''].join('\n');

    // Two real backups of one target; the second is cloned under one target per damage.
    await writeFile(config, targetYaml(['base']));
    for (let i = 0; i < 2; i++) {
      await kit.change(r);
      const b = await bk(['backup', 'base', '--config', config]);
      expect(b.exitCode, b.stderr).toBe(0);
    }
    const view = localView('local', repo);
    const manifests = [...(await view.objects()).keys()].filter((k) => k.endsWith('.manifest.json')).sort();
    const older = JSON.parse(await readFile(join(repo, manifests[0]!), 'utf8')) as Manifest;
    const newest = JSON.parse(await readFile(join(repo, manifests[1]!), 'utf8')) as Manifest;
    const ext = newest.archive.slice(newest.archive.indexOf('.'));

    const clone = async (target: string): Promise<{ archive: string; manifestPath: string; m: Manifest }> => {
      await mkdir(join(repo, target), { recursive: true });
      const m: Manifest = { ...newest, target, archive: `${target}/${newest.id}${ext}` };
      await cp(join(repo, newest.archive), join(repo, m.archive));
      const manifestPath = join(repo, target, `${newest.id}.manifest.json`);
      await writeFile(manifestPath, JSON.stringify(m, null, 2));
      return { archive: join(repo, m.archive), manifestPath, m };
    };
    await clone('intact');
    for (const [name, d] of Object.entries(ARCHIVE_DAMAGE)) {
      const c = await clone(`a-${slug(name)}`);
      const rewritten = await d.damage(c.archive, c.m, join(repo, older.archive));
      if (rewritten) await writeFile(c.manifestPath, JSON.stringify(rewritten, null, 2));
    }
    for (const [name, d] of Object.entries(MANIFEST_DAMAGE)) {
      const c = await clone(`m-${slug(name)}`);
      const text = d.damage(await readFile(c.manifestPath, 'utf8'), c.m);
      if (text === undefined) await rm(c.manifestPath);
      else await writeFile(c.manifestPath, text);
    }
    const archiveTargets = Object.keys(ARCHIVE_DAMAGE).map((n) => `a-${slug(n)}`);
    await writeFile(restoreConfig, targetYaml(archiveTargets));

    // The destination of every restore below (the source, without --to) holds data newer than
    // any backup: a restore that touched it, even in part, shows.
    await kit.change(r);
    destBefore = await kit.sourceDigest();
    verify = await bk(['verify', '--all', '--json', '--repo', repo]);
    restoreAll = await bk(['restore', '--yes', '--json', '--config', restoreConfig]);
  });

  afterAll(async () => {
    await kit?.close();
  });

  it('verify --all: exit 4; the intact copy passes, every damaged archive is named with its cause', () => {
    expect(verify.exitCode, verify.stderr).toBe(4);
    const results = verify.json<{ results: { target: string; ok: boolean; error: string | null }[] }>().results;
    const byTarget = new Map(results.map((x) => [x.target, x]));
    expect(byTarget.get('intact')?.ok).toBe(true);
    expect(byTarget.get('base')?.ok).toBe(true);
    for (const [name, d] of Object.entries(ARCHIVE_DAMAGE)) {
      const res = byTarget.get(`a-${slug(name)}`);
      expect(res?.ok, name).toBe(false);
      expect(res?.error, `${name}: ${res?.error}`).toMatch(d.says);
    }
    expect(verify.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('verify --all names every untrustworthy manifest', () => {
    for (const [name, d] of Object.entries(MANIFEST_DAMAGE)) {
      if (name === 'manifest deleted') continue; // no manifest, no backup: nothing to name
      expect(verify.stderr + verify.stdout, name).toMatch(d.says);
    }
  });

  it('restore of every damaged archive is refused with exit 4, and the destination is untouched', async () => {
    expect(restoreAll.exitCode, `${restoreAll.stdout}\n${restoreAll.stderr}`).toBe(4);
    const results = restoreAll.json<{ results: { target: string; ok: boolean; error: { code: string; message: string } | null }[] }>().results;
    for (const [name, d] of Object.entries(ARCHIVE_DAMAGE)) {
      const res = results.find((x) => x.target === `a-${slug(name)}`);
      expect(res?.ok, name).toBe(false);
      expect(res?.error?.code, name).toBe('INTEGRITY');
      expect(res?.error?.message, `${name}: ${res?.error?.message}`).toMatch(d.says);
    }
    expect(await kit.sourceDigest(), 'the destination changed').toBe(destBefore);
    expect(await kit.restoreLeftovers()).toEqual([]);
    expect(restoreAll.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it.each(Object.keys(MANIFEST_DAMAGE))('restore of a backup whose %s: refused before anything is touched', async (name) => {
    const target = `m-${slug(name)}`;
    const r = await bk(['restore', target, '--yes', '--repo', repo]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).not.toBe(0);
    expect([1, 2, 4]).toContain(r.exitCode);
    expect(r.stderr, name).toMatch(MANIFEST_DAMAGE[name]!.says);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(await kit.sourceDigest(), 'the source changed').toBe(destBefore);
  });
});
