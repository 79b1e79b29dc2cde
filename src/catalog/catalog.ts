/**
 * The catalog is the storage listing: a backup exists iff its manifest does (DESIGN §4). No local
 * state, so `bk list` works from a fresh machine with only the config. Manifests already read from
 * a storage that tags its objects (S3) come from a local cache, for the very objects listed
 * (manifest-cache.ts).
 */
import { toBkError } from '../errors.js';
import { MANIFEST_SUFFIX, parseManifest, type StoredBackup } from './manifest.js';
import { ManifestCache } from './manifest-cache.js';
import type { Storage } from '../storage/storage.js';
import { mapLimit } from '../util/concurrency.js';

export interface CatalogProblem {
  storage: string;
  key: string;
  error: string;
}

export interface Catalog {
  backups: StoredBackup[];
  /** Manifests that exist but cannot be trusted; reported, never restored from. */
  problems: CatalogProblem[];
}

const MANIFEST_READ_CONCURRENCY = 16;

/** Lists the backups of one target, or of every target when `target` is undefined. */
export async function listBackups(storage: Storage, target?: string): Promise<Catalog> {
  let objects;
  try {
    objects = await storage.list(target === undefined ? '' : `${target}/`);
  } catch (e) {
    throw toBkError(e, target, `list ${storage.name}`, 'STORAGE');
  }
  const manifests = objects.filter((o) => {
    const parts = o.key.split('/');
    return parts.length === 2 && o.key.endsWith(MANIFEST_SUFFIX) && !parts[1]!.startsWith('.');
  });
  const problems: CatalogProblem[] = [];
  const backups: StoredBackup[] = [];
  const cache = manifests.some((o) => o.etag) ? await ManifestCache.open(storage.location, target ?? '') : undefined;
  await mapLimit(manifests, MANIFEST_READ_CONCURRENCY, async (o) => {
    const [dir, file] = o.key.split('/') as [string, string];
    const id = file.slice(0, -MANIFEST_SUFFIX.length);
    const cached = o.etag ? cache?.get(o.key, o.etag, o.size) : undefined;
    let bytes: Buffer;
    try {
      bytes = cached ?? (await storage.readBytes(o.key));
    } catch (e) {
      problems.push({ storage: storage.name, key: o.key, error: (e as Error).message });
      return;
    }
    const parsed = parseManifest(bytes);
    if (!parsed.ok) {
      problems.push({ storage: storage.name, key: o.key, error: parsed.error });
      return;
    }
    const m = parsed.manifest;
    // A manifest can only describe an archive beside it; anything else is tampering or a bug.
    if (m.target !== dir || m.id !== id || !m.archive.startsWith(`${dir}/${id}.`) || m.archive.includes('/', dir.length + 1)) {
      problems.push({ storage: storage.name, key: o.key, error: 'manifest does not match its location' });
      return;
    }
    if (o.etag && !cached) cache?.put(o.key, o.etag, bytes);
    backups.push({ manifest: m, storage: storage.name });
  });
  await cache?.save();
  // Oldest first by finish time: ids order by the second only (their suffix is random).
  backups.sort((a, b) => a.manifest.finishedAt.localeCompare(b.manifest.finishedAt) || a.manifest.id.localeCompare(b.manifest.id));
  return { backups, problems };
}

/**
 * Stored size of the newest archive of a target, from the listing alone (no manifest read): the
 * best guess of the next backup's size, so a storage can size its upload parts. Undefined when
 * there is none or the storage cannot be listed (the backup itself will report that).
 */
export async function latestArchiveSize(storage: Storage, target: string): Promise<number | undefined> {
  const objects = await storage.list(`${target}/`).catch(() => undefined);
  if (!objects) return undefined;
  const ids = objects.filter((o) => o.key.endsWith(MANIFEST_SUFFIX)).map((o) => o.key.slice(target.length + 1, -MANIFEST_SUFFIX.length));
  const latest = ids.sort().pop();
  if (!latest) return undefined;
  return objects.find((o) => o.key.startsWith(`${target}/${latest}.`) && !o.key.endsWith(MANIFEST_SUFFIX))?.size;
}
