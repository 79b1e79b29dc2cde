/**
 * Stores an arbitrary tar as if bk had backed it up: compressed with the zstd CLI, written through
 * the storage API, with a manifest whose sizes and hashes match. Lets tests feed restore archives
 * bk itself would never write (malicious ones).
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { archiveKey, FORMAT_VERSION, manifestKey, newBackupId, serializeManifest, type Manifest } from '../../src/catalog/manifest.js';
import { LocalStorage } from '../../src/storage/local.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function storeForeignTar(repo: string, target: string, tar: Buffer, source: string, at = new Date()): Promise<Manifest> {
  const storage = new LocalStorage('repo', repo);
  const stored = Buffer.from((await execa('zstd', ['-q', '-c'], { input: tar, encoding: 'buffer' })).stdout);
  const id = newBackupId(at);
  const archive = archiveKey(target, id, 'tar.zst');
  await storage.write(archive, Readable.from([stored]));
  const manifest: Manifest = {
    formatVersion: FORMAT_VERSION,
    id,
    target,
    driver: 'files',
    host: hostname(),
    startedAt: at.toISOString(),
    finishedAt: at.toISOString(),
    bkVersion: 'test',
    tools: [],
    payload: { kind: 'files', ext: 'tar' },
    compression: 'zstd',
    encryption: null,
    archive,
    raw: { bytes: tar.length, sha256: sha256(tar) },
    stored: { bytes: stored.length, sha256: sha256(stored) },
    contents: [source],
    tags: [],
  };
  await storage.writeBytes(manifestKey(target, id), serializeManifest(manifest));
  return manifest;
}
