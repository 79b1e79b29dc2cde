/**
 * The storage seam. A storage holds opaque objects under slash-separated keys relative to its own
 * root (a directory, or a bucket prefix). bk's format (DESIGN §4) lives above this interface: a
 * storage knows nothing of manifests, targets or drivers.
 *
 * Contract every implementation keeps (tested by test/storage/conformance.ts):
 * - `write` is atomic: the object becomes visible under `key` only once every byte is durable; a
 *   failed or aborted write leaves nothing that `list` returns under `key`.
 * - `list(prefix)` returns every object whose key starts with `prefix`, however many there are.
 * - `read` of a missing key and `delete` of a missing key raise / ignore as documented below.
 * - Errors are StorageErrors with a `kind`, so callers never match message strings.
 */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  size: number;
  modified: Date;
  /** The storage's version tag of the object's content (S3's ETag), where it has one. */
  etag?: string;
}

export interface WriteOptions {
  /**
   * Best guess of the final size, so a store can pick part sizes; may be absent. Asked for only
   * by a store that uses it: finding it out can take a listing or a query of the source, which a
   * local write should not wait for.
   */
  expectedSize?: () => Promise<number | undefined>;
  contentType?: string;
  signal?: AbortSignal;
}

export interface WriteResult {
  /** Bytes the storage confirms it holds under the key. */
  size: number;
}

export interface ReadOptions {
  /** First byte to return (for resumed reads). */
  start?: number;
  signal?: AbortSignal;
}

export interface Storage {
  /** Name from the config (`local`, `offsite`, …), used in messages and in `list` output. */
  readonly name: string;
  /** Where it is, for humans: a path or `s3://bucket/prefix`. Never contains a secret. */
  readonly location: string;

  /** Preflight: the location exists or can be created, and is writable. */
  check(): Promise<void>;
  /**
   * Optional: makes ready what a write of `key` needs (a local directory) before the dump starts,
   * so that a repository inside the tree being backed up is not created under tar while it reads
   * that tree ("file changed as we read it" on a first run). Best effort: the write reports
   * whatever went wrong.
   */
  prepare?(key: string): Promise<void>;
  /** Streams `body` into `key` atomically; rejects (leaving nothing) if `body` errors. */
  write(key: string, body: Readable, options?: WriteOptions): Promise<WriteResult>;
  /** Small objects (manifests, locks) written atomically in one go. */
  writeBytes(key: string, data: Uint8Array): Promise<void>;
  /** A stream of the object's bytes; StorageError kind "not-found" when it does not exist. */
  read(key: string, options?: ReadOptions): Promise<Readable>;
  /**
   * Optional: writes a small object only if nothing exists under `key` (atomic create-if-absent);
   * resolves false when something does. Lock objects use it where the store can do it (O_EXCL or
   * link on a filesystem; `If-None-Match: *` on S3 that honours it).
   */
  createBytes?(key: string, data: Uint8Array): Promise<boolean>;
  /**
   * True when `createBytes` is known to be exclusive (link(2) on a filesystem). S3-compatible servers
   * that ignore `If-None-Match` make it a plain write, so without this the caller also reads back.
   */
  readonly exclusiveCreate?: boolean;
  /** The whole object; for small objects only. */
  readBytes(key: string): Promise<Buffer>;
  /** Size and time of one object, or undefined when it does not exist. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Removes the object; a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Physical URL or path of an object, for the hand-restore pipeline printed by `--dry-run`. */
  describeObject(key: string): string;
  /**
   * A shell command that writes the object to stdout (`aws s3 cp s3://… -`), for hand-restore
   * pipelines; absent when `describeObject` is a path tools can open themselves.
   */
  manualReadCommand?(key: string): string;
  /**
   * Optional: writes that were started and never finished or aborted under `prefix` — S3 multipart
   * uploads of a bk that was killed. They are not objects (`list` never shows them) but they hold
   * space, so prune collects them like temp files. Stores whose temp objects `list` returns
   * (local: `.bk-tmp-*`) have none.
   */
  listIncomplete?(prefix: string): Promise<IncompleteWrite[]>;
  /** Drops one incomplete write; one already gone is not an error. */
  abortIncomplete?(write: IncompleteWrite): Promise<void>;
}

export interface IncompleteWrite {
  /** The key the write was for. */
  key: string;
  /** The store's handle for it (the S3 upload id). */
  id: string;
  started: Date;
}

export type StorageErrorKind = 'not-found' | 'permission' | 'no-space' | 'unavailable' | 'aborted' | 'other';

export class StorageError extends Error {
  readonly kind: StorageErrorKind;
  readonly storage: string;
  /** What to do about it, when known; becomes the BkError's hint. */
  readonly hint?: string;
  constructor(kind: StorageErrorKind, storage: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StorageError';
    this.kind = kind;
    this.storage = storage;
    if (options?.hint) this.hint = options.hint;
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof StorageError && e.kind === 'not-found';

/** Rejects keys that could escape a storage root; keys come from target names and ids. */
export function assertSafeKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((p) => p === '..' || p === '.') || key.includes('\0')) {
    throw new StorageError('other', '', `unsafe object key: ${JSON.stringify(key)}`);
  }
}
