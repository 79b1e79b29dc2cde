/**
 * S3 and S3-compatible object storage (AWS, MinIO, Ceph RGW, R2, B2, Wasabi).
 *
 * Archives stream up as multipart uploads (s3-multipart.ts) with bounded memory: a few parts in
 * flight, part size grown from the expected size so big dumps stay under 10,000 parts. A multipart
 * upload is invisible until completed, which makes writes atomic; a failed or aborted write sends
 * AbortMultipartUpload and waits for it before rejecting with the error that caused it. Downloads
 * stream, and a connection dropped mid-body is resumed with a ranged GET from the byte reached.
 * Every SDK error becomes a StorageError in one place, `translateS3Error`.
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAbortError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { redact } from '../secrets.js';
import {
  chooseQueueSize,
  choosePartSize,
  describeS3Options,
  normalizePrefix,
  registerCredentials,
  s3ClientConfig,
  s3Location,
  s3ManualReadCommand,
  s3Url,
  type S3Options,
} from './s3-config.js';
import { uploadStream, type SentParts } from './s3-multipart.js';
import { SignedGet } from './s3-signed-get.js';
import {
  assertSafeKey,
  StorageError,
  type IncompleteWrite,
  type ObjectInfo,
  type ReadOptions,
  type Storage,
  type StorageErrorKind,
  type WriteOptions,
  type WriteResult,
} from './storage.js';

/** Consecutive resumes of one download without a byte of progress before giving up. */
const MAX_READ_RESUMES = 5;
/** Prefix of the probe object `check()` writes and deletes. */
const CHECK_PREFIX = '.bk-check-';

export interface S3StorageDeps {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** A ready client (tests); built from the options otherwise. */
  client?: S3Client;
}

export class S3Storage implements Storage {
  private readonly client: S3Client;
  /** Manifest reads without the SDK's per-request cost, where the URL is plain (path style). */
  private readonly signedGet: SignedGet | undefined;
  private readonly root: string;
  private readonly log: Logger;

  constructor(
    readonly name: string,
    private readonly options: S3Options,
    deps: S3StorageDeps = {},
  ) {
    const env = deps.env ?? {};
    registerCredentials(options, env);
    this.root = normalizePrefix(options.prefix);
    this.log = (deps.logger ?? silentLogger).child({ storage: name });
    // The SDK warns on stderr once per process that its 2027 releases need Node 22. That is news
    // for whoever upgrades bk's dependencies, not for a cron job that must stay silent on success.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const config = s3ClientConfig(options, env);
    this.client = deps.client ?? new S3Client(config);
    this.signedGet = options.endpoint && config.forcePathStyle ? new SignedGet(this.client, options.endpoint, options.bucket, config.region as string) : undefined;
    this.log.debug('s3 storage', { options: describeS3Options(options) });
  }

  get location(): string {
    return s3Location(this.options);
  }

  async check(): Promise<void> {
    const key = this.objectKey(`${CHECK_PREFIX}${randomBytes(6).toString('hex')}`);
    try {
      await this.client.send(new PutObjectCommand({ ...this.putParams(key, false), Body: Buffer.from('bk check\n') }));
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
    } catch (e) {
      throw this.translate(e, 'writing a probe object');
    }
  }

  async write(key: string, body: Readable, options: WriteOptions = {}): Promise<WriteResult> {
    const objectKey = this.objectKey(key);
    const { signal } = options;
    // Our own record of what went wrong first: an interrupted upload rejects with whichever request
    // the interrupt cancelled, and the run must say it was interrupted.
    let cause: unknown;
    const onBodyError = (e: unknown) => {
      // An AbortError without an interrupt is the upload letting go of the body after it failed;
      // the upload's own error is the cause then.
      if (isAbortError(e) && !signal?.aborted) return;
      cause ??= e;
    };
    body.on('error', onBodyError);
    // Cancels part uploads in flight, so an interrupt does not wait for them to finish.
    const inFlight = new AbortController();
    const onAbort = () => {
      cause ??= abortReason(signal);
      inFlight.abort();
      body.destroy(abortReason(signal));
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });

    // A size the store cannot learn only costs the default part size.
    const expectedSize = options.expectedSize ? await options.expectedSize().catch(() => undefined) : undefined;
    const partSize = choosePartSize(this.options.part_size, expectedSize);
    this.log.debug('upload started', { key, partSize, expectedSize: expectedSize ?? null });
    const started = new Date();
    const parts: SentParts = { sizes: new Map(), completing: false };
    try {
      // A body that errors or is destroyed before its end rejects the upload, so it is never
      // completed (tested in test/storage/conformance.ts).
      await uploadStream(body, {
        client: this.client,
        params: { ...this.putParams(objectKey, true), ...(options.contentType ? { ContentType: options.contentType } : {}) },
        partSize,
        queueSize: chooseQueueSize(this.options.queue_size, partSize),
        signal: inFlight.signal,
        sent: parts,
        // Some servers (s3rver: 405) have no AbortMultipartUpload; the bucket lifecycle rule collects such leftovers.
        onAbort: (e) =>
          this.log.debug(
            e === undefined ? 'multipart upload aborted' : `could not abort the multipart upload (parts stay until the bucket's lifecycle rule removes them): ${describeSdkError(e)}`,
            { key },
          ),
      });
    } catch (e) {
      body.destroy();
      if (cause === undefined && parts.completing && (await this.completedAnyway(objectKey, parts, started))) {
        this.log.debug('CompleteMultipartUpload failed after the upload had completed (a lost answer); the object is whole', { key });
      } else {
        throw this.translate(cause ?? e, `uploading ${key}`);
      }
    } finally {
      // onBodyError stays: a late error on the body must not become an unhandled 'error' event.
      signal?.removeEventListener('abort', onAbort);
    }
    if (cause !== undefined) {
      // Interrupted after the last part was sent: the object exists but must not count.
      await this.delete(key).catch(() => undefined);
      throw this.translate(cause, `uploading ${key}`);
    }
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: objectKey }));
      return { size: head.ContentLength ?? 0 };
    } catch (e) {
      throw this.translate(e, `confirming ${key}`);
    }
  }

  async writeBytes(key: string, data: Uint8Array): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      // A Buffer body: a stream body with default checksums corrupts objects on some S3 clones.
      await this.client.send(new PutObjectCommand({ ...this.putParams(objectKey, false), Body: Buffer.from(data), ContentLength: data.byteLength }));
    } catch (e) {
      throw this.translate(e, `writing ${key}`);
    }
  }

  /**
   * PutObject with `If-None-Match: *`: AWS S3, MinIO and R2 answer 412 when the key exists. Servers
   * that ignore the header overwrite instead, which is why this storage does not claim
   * `exclusiveCreate` and the lock reads its object back.
   */
  async createBytes(key: string, data: Uint8Array): Promise<boolean> {
    const objectKey = this.objectKey(key);
    try {
      await this.client.send(new PutObjectCommand({ ...this.putParams(objectKey, false), Body: Buffer.from(data), ContentLength: data.byteLength, IfNoneMatch: '*' }));
      return true;
    } catch (e) {
      // 409 ConditionalRequestConflict: a concurrent conditional write to the same key won.
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || status === 409) return false;
      throw this.translate(e, `creating ${key}`);
    }
  }

  async read(key: string, options: ReadOptions = {}): Promise<Readable> {
    const objectKey = this.objectKey(key);
    const start = options.start ?? 0;
    let first: GetObjectCommandOutput;
    try {
      first = await this.get(objectKey, start, undefined, options.signal);
    } catch (e) {
      if (start > 0 && errorName(e) === 'InvalidRange') return Readable.from([]);
      throw this.translate(e, `reading ${key}`);
    }
    return Readable.from(this.resumingBody(key, objectKey, first, start, options.signal), { objectMode: false, highWaterMark: 1 << 20 });
  }

  async readBytes(key: string): Promise<Buffer> {
    const objectKey = this.objectKey(key);
    const bytes = await this.signedGet?.get(objectKey);
    if (bytes) return bytes;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: objectKey }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (e) {
      throw this.translate(e, `reading ${key}`);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const objectKey = this.objectKey(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: objectKey }));
      return { key, size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0) };
    } catch (e) {
      const err = this.translate(e, `stat ${key}`);
      if (err.kind === 'not-found') return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    if (prefix.split('/').some((p) => p === '..')) throw new StorageError('other', this.name, `unsafe prefix: ${JSON.stringify(prefix)}`);
    const base = this.root ? `${this.root}/` : '';
    const out: ObjectInfo[] = [];
    try {
      for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.options.bucket, Prefix: `${base}${prefix}` })) {
        for (const o of page.Contents ?? []) {
          if (!o.Key) continue;
          const key = o.Key.slice(base.length);
          if (key.startsWith(CHECK_PREFIX)) continue;
          out.push({ key, size: o.Size ?? 0, modified: o.LastModified ?? new Date(0), ...(o.ETag ? { etag: o.ETag } : {}) });
        }
      }
    } catch (e) {
      throw this.translate(e, `listing ${prefix || '/'}`);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: objectKey }));
    } catch (e) {
      const err = this.translate(e, `deleting ${key}`);
      if (err.kind === 'not-found') return;
      throw err;
    }
  }

  /** Multipart uploads under `prefix` that were never completed or aborted (a killed bk's). */
  async listIncomplete(prefix: string): Promise<IncompleteWrite[]> {
    if (prefix.split('/').some((p) => p === '..')) throw new StorageError('other', this.name, `unsafe prefix: ${JSON.stringify(prefix)}`);
    const base = this.root ? `${this.root}/` : '';
    const out: IncompleteWrite[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      for (;;) {
        const page = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.options.bucket, Prefix: `${base}${prefix}`, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
        for (const u of page.Uploads ?? []) {
          if (u.Key && u.UploadId) out.push({ key: u.Key.slice(base.length), id: u.UploadId, started: u.Initiated ?? new Date(0) });
        }
        if (!page.IsTruncated) break;
        keyMarker = page.NextKeyMarker;
        uploadIdMarker = page.NextUploadIdMarker;
      }
    } catch (e) {
      throw this.translate(e, `listing incomplete uploads under ${prefix || '/'}`);
    }
    return out;
  }

  async abortIncomplete(write: IncompleteWrite): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.objectKey(write.key), UploadId: write.id }));
    } catch (e) {
      // Gone already: completed or aborted by someone else since it was listed.
      if (errorName(e) === 'NoSuchUpload') return;
      throw this.translate(e, `aborting the upload of ${write.key}`);
    }
  }

  describeObject(key: string): string {
    return s3Url(this.options, key);
  }

  manualReadCommand(key: string): string {
    return s3ManualReadCommand(this.options, key);
  }

  /** Full object key under the prefix; rejects keys that could leave it. */
  private objectKey(key: string): string {
    try {
      assertSafeKey(key);
    } catch (e) {
      throw new StorageError('other', this.name, (e as Error).message);
    }
    return this.root ? `${this.root}/${key}` : key;
  }

  /** Bucket, key, and encryption; the storage class only for archives (`archive`). */
  private putParams(objectKey: string, archive: boolean): PutObjectCommandInput {
    const o = this.options;
    return {
      Bucket: o.bucket,
      Key: objectKey,
      ...(archive && o.storage_class ? { StorageClass: o.storage_class } : {}),
      ...(o.sse ? { ServerSideEncryption: o.sse } : {}),
      ...(o.kms_key_id ? { SSEKMSKeyId: o.kms_key_id } : {}),
    };
  }

  /**
   * Whether a multipart upload whose CompleteMultipartUpload "failed" did in fact complete: the
   * first attempt succeeded but its answer was lost, and the retry found the upload gone (S3:
   * NoSuchUpload; s3rver: 500). True only for an object under our (unique) key, written since we
   * started (give or take clock skew), holding exactly the bytes of the parts we sent.
   */
  private async completedAnyway(objectKey: string, parts: SentParts, started: Date): Promise<boolean> {
    const sent = [...parts.sizes.values()].reduce((a, b) => a + b, 0);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: objectKey }));
      return parts.sizes.size > 0 && head.ContentLength === sent && (head.LastModified?.getTime() ?? 0) >= started.getTime() - 300_000;
    } catch {
      return false;
    }
  }

  private async get(objectKey: string, start: number, etag: string | undefined, signal: AbortSignal | undefined): Promise<GetObjectCommandOutput> {
    const res = await this.client.send(
      new GetObjectCommand({
        Bucket: this.options.bucket,
        Key: objectKey,
        ...(start > 0 ? { Range: `bytes=${start}-` } : {}),
        // A resumed read must continue the same object, not a newer one under the same key.
        ...(etag ? { IfMatch: etag } : {}),
      }),
      signal ? { abortSignal: signal } : {},
    );
    // A server that ignores Range would send the object from byte 0; never splice that in.
    if (start > 0 && !res.ContentRange?.startsWith(`bytes ${start}-`)) {
      (res.Body as Readable | undefined)?.destroy();
      throw new StorageError('other', this.name, `the server ignored the Range header (asked for byte ${start}, got ${res.ContentRange ?? 'the whole object'})`);
    }
    return res;
  }

  /**
   * The object's bytes from `start`; when the connection drops (or stalls past the idle timeout)
   * mid-body, a ranged GET continues from the byte reached. The consumer sees one stream.
   */
  private async *resumingBody(key: string, objectKey: string, first: GetObjectCommandOutput, start: number, signal?: AbortSignal): AsyncGenerator<Buffer> {
    const end = start + (first.ContentLength ?? Number.NaN);
    const etag = first.ETag;
    let body = first.Body as Readable;
    let pos = start;
    let failures = 0;
    let resumedAt = -1;
    for (;;) {
      try {
        for await (const chunk of body) {
          pos += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        if (!(pos < end)) return;
        throw Object.assign(new Error(`connection closed at byte ${pos} of ${end}`), { code: 'ECONNRESET' });
      } catch (e) {
        body.destroy();
        if (signal?.aborted) throw this.translate(abortReason(signal), `reading ${key}`);
        failures = pos > resumedAt ? 1 : failures + 1;
        if (!isRetryableRead(e) || failures > MAX_READ_RESUMES) throw this.translate(e, `reading ${key}`);
        this.log.debug('download interrupted, resuming', { key, at: pos, error: describeSdkError(e), attempt: failures });
        resumedAt = pos;
        await sleep(Math.min(5000, 200 * 2 ** (failures - 1)), undefined, signal ? { signal } : {}).catch(() => undefined);
        try {
          body = (await this.get(objectKey, pos, etag, signal)).Body as Readable;
        } catch (err) {
          throw this.translate(err, `resuming ${key} at byte ${pos}`);
        }
      }
    }
  }

  private translate(e: unknown, what: string): StorageError {
    return translateS3Error(e, { storage: this.name, location: this.location, endpoint: this.options.endpoint, bucket: this.options.bucket, what });
  }
}

interface TranslateContext {
  storage: string;
  location: string;
  endpoint?: string;
  bucket: string;
  /** What bk was doing: "uploading db/2024….sql.zst". */
  what: string;
}

/** The one place SDK and network errors become StorageErrors with a kind and, when known, the fix. */
export function translateS3Error(e: unknown, ctx: TranslateContext): StorageError {
  if (e instanceof StorageError) return e;
  const name = errorName(e);
  const status = (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  const code = (e as { code?: string } | null)?.code ?? '';
  const where = ctx.endpoint ? `${ctx.location} at ${ctx.endpoint}` : ctx.location;
  const make = (kind: StorageErrorKind, reason: string, hint?: string) =>
    new StorageError(kind, ctx.storage, redact(`${ctx.what} in ${where}: ${reason}`), { cause: e, ...(hint ? { hint } : {}) });

  if (isAbortError(e) || name === 'AbortError' || code === 'ABORT_ERR') return make('aborted', 'interrupted');
  if (name === 'NoSuchBucket') {
    // Not "not-found": that kind means a missing object, and callers may treat it as absent.
    return make('other', `bucket "${ctx.bucket}" does not exist`, `create it (aws s3 mb s3://${ctx.bucket}) or fix the bucket name${ctx.endpoint ? ' and endpoint' : ' and region'}`);
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchUpload')) return make('not-found', 'no such object');
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(messageOf(e))) {
    return make('permission', 'no S3 credentials found', 'set access_key_id and secret_access_key (or *_file), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an AWS profile, or an instance role');
  }
  if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired'].includes(name)) {
    return make('permission', `credentials rejected (${name})`, 'check access_key_id, secret_access_key and session_token for this endpoint');
  }
  if (name === 'AccessDenied' || name === 'AllAccessDisabled' || status === 403) {
    return make('permission', `access denied (${name})`, 'the credentials need s3:PutObject, s3:GetObject, s3:DeleteObject, s3:ListBucket and s3:AbortMultipartUpload on this bucket and prefix (docs/storage/s3.md)');
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || name === 'IllegalLocationConstraintException') {
    return make('other', `wrong region (${name})`, 'set region to the bucket\'s region');
  }
  if (/Exceeded \d+ parts/.test(messageOf(e)) || name === 'EntityTooLarge') {
    return make('other', messageOf(e), 'set a larger part_size (64MiB allows archives up to ~625 GiB)');
  }
  if (name === 'QuotaExceeded' || name === 'XMinioStorageFull' || code === 'ENOSPC') return make('no-space', `storage full (${name})`);
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code) || name === 'TimeoutError') {
    return make('unavailable', `cannot reach the server (${code || name}: ${messageOf(e)})`, ctx.endpoint ? `check endpoint ${ctx.endpoint} and that the server is up` : 'check the network and the region');
  }
  if (status !== undefined && status >= 500) return make('unavailable', `server error ${status} (${name}), retries exhausted`, 'try again later; raise max_attempts if this repeats');
  if (name === 'SlowDown' || status === 429) return make('unavailable', `throttled (${name}), retries exhausted`, 'try again later; raise max_attempts if this repeats');
  return make('other', describeSdkError(e));
}

function errorName(e: unknown): string {
  return (e as { name?: string } | null)?.name ?? '';
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** "NoSuchBucket (404): The specified bucket does not exist" */
export function describeSdkError(e: unknown): string {
  const name = errorName(e);
  const status = (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  const message = messageOf(e);
  const label = name && name !== 'Error' ? `${name}${status ? ` (${status})` : ''}` : status ? `HTTP ${status}` : '';
  return label && message && message !== name ? `${label}: ${message}` : label || message;
}

/** Network failures of a body in flight; anything else (an abort, a 412 on resume) is final. */
function isRetryableRead(e: unknown): boolean {
  if (isAbortError(e)) return false;
  const code = (e as { code?: string } | null)?.code ?? '';
  return ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code) || errorName(e) === 'TimeoutError' || messageOf(e) === 'aborted';
}

function abortReason(signal: AbortSignal | undefined): Error {
  return Object.assign(new Error('interrupted'), { name: 'AbortError', cause: signal?.reason });
}
