/**
 * A storage seen from outside bk: every object with its hash, and what a crash can leave behind
 * (temp files, incomplete uploads, archives without a manifest, lock objects). The fault tests
 * judge bk by these, not by bk's own listing code.
 */
import { CopyObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export interface ObjectDigest {
  size: number;
  sha256: string;
}

export interface StorageView {
  /** Storage name in the config. */
  readonly name: string;
  /** The `storages:` entry for backup.config.yaml (YAML lines, indented under the name). */
  configLines(): string[];
  /** Every object under the root: key → size and sha256. Incomplete uploads are not objects. */
  objects(): Promise<Map<string, ObjectDigest>>;
  /** Bytes of writes in progress (temp files, uploaded parts); 0 when none. */
  inProgressBytes(): Promise<number>;
  /** Things a crash leaves that are not backups: temp files, incomplete uploads. */
  incomplete(): Promise<string[]>;
  /**
   * Copies a backup under a new id at an earlier time (archive first, then manifest, as bk
   * commits), so prune has something to remove without running many real backups.
   */
  cloneBackup(manifestKey: string, at: Date): Promise<string>;
}

/** The manifest of `manifest` moved to a new id (same archive bytes, so the same hashes). */
export function movedManifest(manifest: Buffer, at: Date): { id: string; body: Buffer; from: string; to: string } {
  const m = JSON.parse(manifest.toString('utf8')) as { id: string; archive: string; startedAt: string; finishedAt: string };
  const id = `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')}-${randomBytes(2).toString('hex')}`;
  const from = m.archive;
  const to = `${m.archive.slice(0, m.archive.lastIndexOf('/') + 1)}${id}${m.archive.slice(m.archive.lastIndexOf('/') + 1 + m.id.length)}`;
  const body = Buffer.from(`${JSON.stringify({ ...m, id, archive: to, startedAt: at.toISOString(), finishedAt: new Date(at.getTime() + 1000).toISOString() }, null, 2)}\n`);
  return { id, body, from, to };
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(full)));
    else out.push(full);
  }
  return out;
}

export const TEMP_PREFIX = '.bk-tmp-';

/** A local directory storage. */
export function localView(name: string, root: string): StorageView {
  const key = (full: string) => relative(root, full).split(sep).join('/');
  return {
    name,
    configLines: () => [`type: local`, `path: ${JSON.stringify(root)}`],
    async objects() {
      const out = new Map<string, ObjectDigest>();
      for (const f of await walk(root)) {
        const s = await stat(f).catch(() => undefined);
        if (!s) continue;
        if (f.slice(f.lastIndexOf('/') + 1).startsWith(TEMP_PREFIX)) continue;
        out.set(key(f), { size: s.size, sha256: await sha256File(f) });
      }
      return out;
    },
    async inProgressBytes() {
      let total = 0;
      for (const f of await walk(root)) {
        if (!f.slice(f.lastIndexOf('/') + 1).startsWith(TEMP_PREFIX)) continue;
        total += (await stat(f).catch(() => undefined))?.size ?? 0;
      }
      return total;
    },
    async incomplete() {
      return (await walk(root)).filter((f) => f.slice(f.lastIndexOf('/') + 1).startsWith(TEMP_PREFIX)).map(key);
    },
    async cloneBackup(manifestKey, at) {
      const moved = movedManifest(await readFile(join(root, manifestKey)), at);
      await copyFile(join(root, moved.from), join(root, moved.to));
      await writeFile(join(root, manifestKey.slice(0, manifestKey.lastIndexOf('/') + 1) + `${moved.id}.manifest.json`), moved.body, { mode: 0o600 });
      return moved.id;
    },
  };
}

/** Manifest keys and the archive key each one names, from a set of objects. */
export function backupsIn(objects: Map<string, ObjectDigest>): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of objects.keys()) {
    const m = /^(.+)\/(\d{8}T\d{6}Z-[0-9a-f]{4,})\.manifest\.json$/.exec(k);
    if (m) out.set(k, `${m[1]}/${m[2]}`);
  }
  return out;
}

/**
 * Archives with no manifest beside them (a backup that never committed, or a prune cut between
 * its two deletes), and lock objects: both must be gone after a completed prune.
 */
export function strays(objects: Map<string, ObjectDigest>): string[] {
  const ids = new Set([...backupsIn(objects).values()]);
  return [...objects.keys()].filter((k) => {
    if (k.endsWith('.manifest.json')) return false;
    if (k.endsWith('/.lock')) return true;
    const m = /^(.+\/\d{8}T\d{6}Z-[0-9a-f]{4,})\./.exec(k);
    return m !== null && !ids.has(m[1]!);
  });
}

/**
 * A prefix of an s3rver bucket, read from s3rver's directory (objects are `<key>._S3rver_object`
 * files; multipart uploads in progress are directories under `<bucket>/._S3rver_uploads`), so
 * nothing here goes through the fault proxy or depends on bk's S3 code.
 */
export function s3View(name: string, o: { dir: string; bucket: string; prefix: string; endpoint: string; client: S3Client; extra?: string[] }): StorageView {
  const bucketDir = join(o.dir, o.bucket);
  const uploadsDir = join(bucketDir, '._S3rver_uploads');
  const OBJECT = '._S3rver_object';
  const uploads = async (): Promise<{ key: string; id: string; bytes: number }[]> => {
    const out: { key: string; id: string; bytes: number }[] = [];
    for (const id of await readdir(uploadsDir).catch(() => [] as string[])) {
      const key = await readFile(join(uploadsDir, id, 'key'), 'utf8').catch(() => undefined);
      if (key === undefined || !key.startsWith(`${o.prefix}/`)) continue;
      let bytes = 0;
      for (const part of await readdir(join(uploadsDir, id)).catch(() => [] as string[])) {
        if (/^\d+$/.test(part)) bytes += (await stat(join(uploadsDir, id, part)).catch(() => undefined))?.size ?? 0;
      }
      out.push({ key, id, bytes });
    }
    return out;
  };
  return {
    name,
    configLines: () => [
      'type: s3',
      `bucket: ${o.bucket}`,
      `prefix: ${o.prefix}`,
      `endpoint: ${o.endpoint}`,
      'access_key_id: S3RVER',
      'secret_access_key: S3RVER',
      ...(o.extra ?? []),
    ],
    async objects() {
      const out = new Map<string, ObjectDigest>();
      const root = join(bucketDir, ...o.prefix.split('/'));
      for (const f of await walk(root)) {
        if (!f.endsWith(OBJECT)) continue;
        const s = await stat(f).catch(() => undefined);
        if (!s) continue;
        out.set(relative(root, f).split(sep).join('/').slice(0, -OBJECT.length), { size: s.size, sha256: await sha256File(f) });
      }
      return out;
    },
    async inProgressBytes() {
      return (await uploads()).reduce((n, u) => n + u.bytes, 0);
    },
    async incomplete() {
      return (await uploads()).map((u) => `multipart upload of ${u.key} (${u.id})`);
    },
    async cloneBackup(manifestKey, at) {
      const full = (k: string) => `${o.prefix}/${k}`;
      const res = await o.client.send(new GetObjectCommand({ Bucket: o.bucket, Key: full(manifestKey) }));
      const moved = movedManifest(Buffer.from(await res.Body!.transformToByteArray()), at);
      await o.client.send(new CopyObjectCommand({ Bucket: o.bucket, Key: full(moved.to), CopySource: `${o.bucket}/${full(moved.from)}` }));
      await o.client.send(new PutObjectCommand({ Bucket: o.bucket, Key: full(`${manifestKey.slice(0, manifestKey.lastIndexOf('/') + 1)}${moved.id}.manifest.json`), Body: moved.body }));
      return moved.id;
    },
  };
}
