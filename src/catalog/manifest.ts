/**
 * The manifest: the record that makes a backup exist (DESIGN §4). Written last, after the archive is
 * durable; parsed strictly, because restore trusts its hashes.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { COMPRESSIONS } from '../codecs/compression.js';

export const FORMAT_VERSION = 1;
export const MANIFEST_SUFFIX = '.manifest.json';

const toolVersion = z.object({ name: z.string(), version: z.string() }).strict();

export const manifestSchema = z
  .object({
    formatVersion: z.literal(FORMAT_VERSION),
    id: z.string().regex(/^\d{8}T\d{6}Z-[0-9a-f]{4,}$/),
    target: z.string().min(1),
    driver: z.string().min(1),
    host: z.string(),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime(),
    bkVersion: z.string(),
    tools: z.array(toolVersion),
    serverVersion: z.string().optional(),
    payload: z.object({ kind: z.string(), ext: z.string() }).strict(),
    compression: z.enum(COMPRESSIONS),
    encryption: z
      .object({ kind: z.literal('age'), recipients: z.array(z.string()), passphrase: z.literal(true).optional() })
      .strict()
      .nullable(),
    archive: z.string().min(1),
    raw: z.object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
    stored: z.object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
    contents: z.array(z.string()).optional(),
    tags: z.array(z.string()),
    checks: z.record(z.string(), z.unknown()).optional(),
    extra: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type Manifest = z.infer<typeof manifestSchema>;

/** A manifest as found in one storage. */
export interface StoredBackup {
  manifest: Manifest;
  storage: string;
}

/** `20240101T020000Z-3f9a`: sorts by time, reads as one, unique enough for one target. */
export function newBackupId(at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

export const manifestKey = (target: string, id: string): string => `${target}/${id}${MANIFEST_SUFFIX}`;
export const archiveKey = (target: string, id: string, ext: string): string => `${target}/${id}.${ext}`;

export function serializeManifest(m: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
}

export type ManifestParse = { ok: true; manifest: Manifest } | { ok: false; error: string };

export function parseManifest(bytes: Buffer): ManifestParse {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { ok: false, error: 'manifest is not valid JSON' };
  }
  const version = (json as { formatVersion?: unknown } | null)?.formatVersion;
  if (typeof version === 'number' && version > FORMAT_VERSION) {
    return { ok: false, error: `manifest format ${version} is newer than this bk understands (${FORMAT_VERSION}); upgrade bk` };
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `manifest is invalid: ${issue?.path.join('.') || '(root)'}: ${issue?.message}` };
  }
  return { ok: true, manifest: parsed.data };
}
