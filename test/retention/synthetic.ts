/** Backups with chosen times, written straight through the storage API (archive, then manifest). */
import { createHash } from 'node:crypto';
import { archiveKey, FORMAT_VERSION, manifestKey, newBackupId, serializeManifest, type Manifest } from '../../src/catalog/manifest.js';
import type { Storage } from '../../src/storage/storage.js';

export async function writeSyntheticBackup(storage: Storage, target: string, at: Date): Promise<Manifest> {
  const id = newBackupId(at);
  const payload = Buffer.from(`backup of ${target} at ${at.toISOString()}\n`);
  const sha256 = createHash('sha256').update(payload).digest('hex');
  const archive = archiveKey(target, id, 'tar');
  const m: Manifest = {
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
    archive,
    raw: { bytes: payload.length, sha256 },
    stored: { bytes: payload.length, sha256 },
    tags: [],
  };
  await storage.writeBytes(archive, payload);
  await storage.writeBytes(manifestKey(target, id), serializeManifest(m));
  return m;
}

/** n backups, one a day at 02:00 UTC, ending `daysAgo` days before now. */
export async function writeDailyBackups(storage: Storage, target: string, n: number, daysAgo = 1): Promise<Manifest[]> {
  const today = new Date();
  today.setUTCHours(2, 0, 0, 0);
  const out: Manifest[] = [];
  for (let i = n - 1; i >= 0; i--) out.push(await writeSyntheticBackup(storage, target, new Date(today.getTime() - (i + daysAgo) * 86_400_000)));
  return out;
}
