/** Backups with chosen times, written straight through the storage API (archive, then manifest). */
import { createHash } from 'node:crypto';
import { archiveKey, FORMAT_VERSION, manifestKey, newBackupId, serializeManifest, type Manifest } from '../../src/catalog/manifest.js';
import type { Storage } from '../../src/storage/storage.js';

export async function writeSyntheticBackup(storage: Storage, target: string, at: Date): Promise<Manifest> {
  const payload = Buffer.from(`backup of ${target} at ${at.toISOString()}\n`);
  const m = syntheticManifest(target, newBackupId(at), at, { bytes: payload.length, sha256: createHash('sha256').update(payload).digest('hex') });
  await storage.writeBytes(m.archive, payload);
  await storage.writeBytes(manifestKey(target, m.id), serializeManifest(m));
  return m;
}

/** The manifest of an uncompressed tar of `payload` finished a second after `at`. */
function syntheticManifest(target: string, id: string, at: Date, payload: { bytes: number; sha256: string }): Manifest {
  return {
    formatVersion: FORMAT_VERSION,
    id,
    target,
    driver: 'files',
    host: 'test',
    startedAt: at.toISOString(),
    finishedAt: new Date(at.getTime() + 1000).toISOString(),
    bkVersion: 'test',
    tools: [],
    payload: { kind: 'files', ext: 'tar' },
    compression: 'none',
    encryption: null,
    archive: archiveKey(target, id, 'tar'),
    raw: payload,
    stored: payload,
    tags: [],
  };
}

/**
 * `count` manifests of `target`, hourly from 2024-01-01, without their archives, written 16 at a
 * time: a catalog as long as years of backups, for listing it.
 */
export async function writeManyManifests(storage: Storage, target: string, count: number): Promise<void> {
  const start = Date.UTC(2024, 0, 1);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        const at = new Date(start + next++ * 3600_000);
        const m = syntheticManifest(target, newBackupId(at), at, { bytes: 100, sha256: 'a'.repeat(64) });
        await storage.writeBytes(manifestKey(target, m.id), serializeManifest(m));
      }
    }),
  );
}

/** n backups, one a day at 02:00 UTC, ending `daysAgo` days before now. */
export async function writeDailyBackups(storage: Storage, target: string, n: number, daysAgo = 1): Promise<Manifest[]> {
  const today = new Date();
  today.setUTCHours(2, 0, 0, 0);
  const out: Manifest[] = [];
  for (let i = n - 1; i >= 0; i--) out.push(await writeSyntheticBackup(storage, target, new Date(today.getTime() - (i + daysAgo) * 86_400_000)));
  return out;
}
