/**
 * Options of the `s3` storage: the config schema, `s3://bucket/prefix` for `--repo` (with
 * BK_S3_ENDPOINT and AWS_* from the environment), part sizing, and the SDK client config built from
 * them. Credentials are secrets: registered for redaction here and never part of `describe()`.
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { shellQuote } from '../codecs/compression.js';
import { registerSecret } from '../secrets.js';

const MiB = 1024 * 1024;
/** S3 limits (research/semantics.md §4.3): parts 5 MiB–5 GiB, at most 10,000 of them. */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;
/** 8 MiB × 4 in flight measured ~210 MiB peak RSS, flat from 300 MiB to 1 GiB (toolchain.md §2). */
export const DEFAULT_PART_SIZE = 8 * MiB;
export const DEFAULT_QUEUE_SIZE = 4;
/** Parts in flight are held in memory; above this budget the queue shrinks instead. */
const IN_FLIGHT_BUDGET = 256 * MiB;

export const STORAGE_CLASSES = [
  'STANDARD',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
  'GLACIER',
  'DEEP_ARCHIVE',
  'REDUCED_REDUNDANCY',
] as const;

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;
const UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB, g: 1024 * MiB, gb: 1024 * MiB, gib: 1024 * MiB };

/** "64MiB", "64 MB", "1g" or a number of bytes; binary units throughout (S3's limits are). */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  const m = SIZE.exec(value.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()]!);
}

const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected a size such as 16MiB or a number of bytes' });
    return z.NEVER;
  }
  if (n < MIN_PART_SIZE || n > MAX_PART_SIZE) {
    ctx.addIssue({ code: 'custom', message: 'must be between 5MiB and 5GiB (S3 part size limits)' });
    return z.NEVER;
  }
  return n;
});

export const s3OptionsSchema = z
  .object({
    type: z.literal('s3'),
    bucket: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/, 'not a bucket name'),
    /** Key prefix inside the bucket ("" = the bucket root). */
    prefix: z
      .string()
      .refine((p) => !p.split('/').some((s) => s === '..' || s === '.'), 'must not contain "." or ".." segments')
      .optional(),
    /** Default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1. */
    region: z.string().min(1).optional(),
    /** S3-compatible servers (MinIO, Ceph RGW, R2, B2, Wasabi): https://host[:port]. */
    endpoint: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
    /** http://host/bucket/key instead of http://bucket.host/key; default: true with endpoint. */
    force_path_style: z.boolean().optional(),
    /** Without these, the SDK's default chain: AWS_* env, ~/.aws profiles, SSO, instance role. */
    access_key_id: z.string().min(1).optional(),
    secret_access_key: z.string().min(1).optional(),
    session_token: z.string().min(1).optional(),
    /** For archives only; manifests stay STANDARD so listing never needs a restore. */
    storage_class: z.enum(STORAGE_CLASSES).optional(),
    sse: z.enum(['AES256', 'aws:kms']).optional(),
    kms_key_id: z.string().min(1).optional(),
    /** Multipart part size; grows on its own with the previous backup's size. Default 8MiB. */
    part_size: size.optional(),
    /** Parts uploaded at once (memory ≈ part_size × (queue_size + 2)). Default 4. */
    queue_size: z.number().int().min(1).max(32).optional(),
    /** Attempts per request (throttling, 5xx, network errors), with exponential backoff. Default 6. */
    max_attempts: z.number().int().min(1).max(20).optional(),
    /** standard, or adaptive (also rate-limits the client after throttling). */
    retry_mode: z.enum(['standard', 'adaptive']).optional(),
    /** Seconds a connection may make no progress before the request is retried. Default 60. */
    idle_timeout: z.number().positive().max(3600).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.kms_key_id && o.sse !== 'aws:kms') ctx.addIssue({ code: 'custom', path: ['kms_key_id'], message: 'needs sse: aws:kms' });
    if (Boolean(o.access_key_id) !== Boolean(o.secret_access_key)) {
      ctx.addIssue({ code: 'custom', path: [o.access_key_id ? 'secret_access_key' : 'access_key_id'], message: 'set access_key_id and secret_access_key together' });
    }
    if (o.session_token && !o.access_key_id) ctx.addIssue({ code: 'custom', path: ['session_token'], message: 'needs access_key_id and secret_access_key' });
  });

export type S3Options = z.infer<typeof s3OptionsSchema>;

/** Env variables that hold credentials the SDK may pick up on its own: redacted like config secrets. */
const CREDENTIAL_ENV = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];

export function registerCredentials(options: S3Options, env: NodeJS.ProcessEnv): void {
  registerSecret(options.access_key_id);
  registerSecret(options.secret_access_key);
  registerSecret(options.session_token);
  for (const k of CREDENTIAL_ENV) registerSecret(env[k]);
}

/** `bucket/prefix` without leading, trailing or doubled slashes. */
export function normalizePrefix(prefix: string | undefined): string {
  return (prefix ?? '').split('/').filter(Boolean).join('/');
}

/** `s3://bucket/prefix` for messages and `location`; never holds a secret. */
export function s3Url(options: Pick<S3Options, 'bucket' | 'prefix'>, key?: string): string {
  return `s3://${[options.bucket, normalizePrefix(options.prefix), key].filter(Boolean).join('/')}`;
}

/**
 * Storage options for `--repo s3://bucket/prefix`. Where the bucket is and who may write to it
 * come from the environment: BK_S3_ENDPOINT (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL),
 * BK_S3_REGION / AWS_REGION, BK_S3_FORCE_PATH_STYLE, and AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 * (+ AWS_SESSION_TOKEN), else the SDK's default chain (profiles, instance role).
 */
export function s3OptionsFromRepo(repo: string, env: NodeJS.ProcessEnv): Record<string, unknown> | undefined {
  const m = /^s3:\/\/([^/?#]+)\/?([^?#]*)$/i.exec(repo);
  if (!m) return undefined;
  const endpoint = env.BK_S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const region = env.BK_S3_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined;
  const pathStyle = env.BK_S3_FORCE_PATH_STYLE;
  const keys = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY;
  return {
    type: 's3',
    bucket: m[1],
    ...(m[2] ? { prefix: normalizePrefix(m[2]) } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(region ? { region } : {}),
    ...(pathStyle ? { force_path_style: !/^(0|false|no|off)$/i.test(pathStyle) } : {}),
    ...(keys
      ? {
          access_key_id: env.AWS_ACCESS_KEY_ID,
          secret_access_key: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { session_token: env.AWS_SESSION_TOKEN } : {}),
        }
      : {}),
  };
}

/**
 * Part size for an upload: the configured (or default) size, grown so that twice the expected size
 * fits in 10,000 parts — the guess is the previous backup's size, and dumps grow. Whole MiB.
 */
export function choosePartSize(configured: number | undefined, expectedSize: number | undefined): number {
  const base = configured ?? DEFAULT_PART_SIZE;
  if (!expectedSize || expectedSize <= 0) return base;
  const needed = Math.ceil((expectedSize * 2) / MAX_PARTS / MiB) * MiB;
  return Math.min(MAX_PART_SIZE, Math.max(base, needed));
}

/** Parts in flight: the configured queue, or as many as fit the memory budget (1–4). */
export function chooseQueueSize(configured: number | undefined, partSize: number): number {
  if (configured) return configured;
  return Math.max(1, Math.min(DEFAULT_QUEUE_SIZE, Math.floor(IN_FLIGHT_BUDGET / partSize / 2)));
}

export const DEFAULT_MAX_ATTEMPTS = 6;
export const DEFAULT_IDLE_TIMEOUT = 60;

/** The SDK client config. Custom endpoints get path style and WHEN_REQUIRED checksums. */
export function s3ClientConfig(options: S3Options, env: NodeJS.ProcessEnv): S3ClientConfig {
  const custom = options.endpoint !== undefined;
  return {
    region: options.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'),
    ...(custom
      ? {
          endpoint: options.endpoint,
          // The SDK's default (WHEN_SUPPORTED) sends aws-chunked bodies with CRC trailers that
          // S3 clones store verbatim or reject (toolchain.md §2, semantics.md §4.6).
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }
      : { followRegionRedirects: true }),
    forcePathStyle: options.force_path_style ?? custom,
    ...(options.access_key_id && options.secret_access_key
      ? {
          credentials: {
            accessKeyId: options.access_key_id,
            secretAccessKey: options.secret_access_key,
            ...(options.session_token ? { sessionToken: options.session_token } : {}),
          },
        }
      : {}),
    // The middleware stack resolved once per command type, not on every request: bk list reads a
    // manifest per backup.
    cacheMiddleware: true,
    maxAttempts: options.max_attempts ?? DEFAULT_MAX_ATTEMPTS,
    retryMode: options.retry_mode ?? 'standard',
    requestHandler: {
      connectionTimeout: 10_000,
      // An idle (not total) timeout: a stalled connection is cut and the request retried.
      socketTimeout: (options.idle_timeout ?? DEFAULT_IDLE_TIMEOUT) * 1000,
    },
  };
}

/** The options for a debug log line: credentials masked. */
export function describeS3Options(options: S3Options): Record<string, unknown> {
  const out: Record<string, unknown> = { ...options };
  for (const k of ['access_key_id', 'secret_access_key', 'session_token'] as const) if (out[k] !== undefined) out[k] = '***';
  return out;
}

/** The `aws s3 cp … -` command that streams an object to stdout, for hand-restore instructions. */
export function s3ManualReadCommand(o: S3Options, key: string): string {
  const flags = [o.endpoint ? `--endpoint-url ${shellQuote(o.endpoint)}` : '', o.region ? `--region ${shellQuote(o.region)}` : ''].filter(Boolean).join(' ');
  return `aws s3 cp ${flags ? `${flags} ` : ''}${shellQuote(s3Url(o, key))} -`;
}

/**
 * Where the storage is, for messages and host-lock keys: the bucket URL, plus the endpoint when it
 * is not AWS, so the same bucket name on two servers is never taken for one storage.
 */
export function s3Location(o: S3Options): string {
  return o.endpoint ? `${s3Url(o)} at ${o.endpoint}` : s3Url(o);
}
