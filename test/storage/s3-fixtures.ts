/** Shared pieces of the end-to-end S3 tests: configs, source trees, and a look into the bucket. */
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { S3Server } from '../harness/index.js';

export const MiB = 1024 * 1024;

/** Writes a config file (0600, as bk expects for files holding secrets) and returns its path. */
export async function writeConfig(dir: string, yaml: string, name = 'backup.config.yaml'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, yaml, { mode: 0o600 });
  return path;
}

/** YAML for an s3 storage block (indented for `storages:`). */
export function s3StorageYaml(name: string, o: { endpoint: string; prefix?: string; bucket?: string; extra?: Record<string, string | number> }): string {
  const lines = [
    `  ${name}:`,
    '    type: s3',
    `    bucket: ${o.bucket ?? 'backups'}`,
    `    prefix: ${o.prefix ?? 'bk'}`,
    `    endpoint: ${o.endpoint}`,
    '    access_key_id: S3RVER',
    '    secret_access_key: S3RVER',
    ...Object.entries(o.extra ?? {}).map(([k, v]) => `    ${k}: ${v}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** A directory of random (incompressible) files with assorted modes, `totalBytes` in all. */
export async function makeSourceTree(dir: string, totalBytes: number, files = 8): Promise<void> {
  await mkdir(join(dir, 'sub'), { recursive: true });
  const each = Math.floor(totalBytes / files);
  for (let i = 0; i < files; i++) {
    const path = join(dir, i % 2 ? 'sub' : '', `f${i}.bin`);
    // Written in 4 MiB pieces so a large tree does not need one large buffer.
    const pieces: Buffer[] = [];
    for (let left = i === files - 1 ? totalBytes - each * (files - 1) : each; left > 0; left -= 4 * MiB) pieces.push(randomBytes(Math.min(4 * MiB, left)));
    await writeFile(path, Buffer.concat(pieces));
    await chmod(path, i % 3 === 0 ? 0o600 : 0o644);
  }
  await writeFile(join(dir, 'note.txt'), 'hello\n');
}

/** Relative path → mode and sha256 of every file: what a restore must reproduce. */
export async function treeDigest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const mode = ((await stat(p)).mode & 0o777).toString(8);
        out[relative(dir, p)] = `${mode} ${createHash('sha256').update(await readFile(p)).digest('hex')}`;
      }
    }
  };
  await walk(dir);
  return out;
}

export function bucketClient(s3: S3Server): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client(s3.clientConfig);
}

/** Every key in the bucket under `prefix`, sorted. */
export async function bucketKeys(client: S3Client, prefix: string, bucket = 'backups'): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.NextContinuationToken;
  } while (token);
  return keys.sort();
}

/** Keys of committed backups (manifests) and of archives under `prefix`. */
export async function backupsInBucket(client: S3Client, prefix: string): Promise<{ manifests: string[]; archives: string[] }> {
  const keys = await bucketKeys(client, prefix);
  return { manifests: keys.filter((k) => k.endsWith('.manifest.json')), archives: keys.filter((k) => !k.endsWith('.manifest.json')) };
}

