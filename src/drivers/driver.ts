/**
 * The driver seam: turns a live source into a byte stream and back (DESIGN §3). Drivers know nothing
 * of storages, compression or the CLI; the engine composes them.
 *
 * Contract every implementation keeps (tested by test/drivers/conformance.ts):
 * - `backup()` returns at once with the raw stream; `done` rejects if the tool failed (non-zero
 *   exit, stderr captured, empty or truncated output) even when the stream ended normally.
 * - `restore()` applies a raw stream and rejects on the first error; it never resolves after a
 *   partial restore.
 * - No secret appears in a child's argv: passwords travel in the environment or 0600 files.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../log.js';

export interface ToolVersion {
  name: string;
  version: string;
}

/** One preflight finding: what was checked and whether it passed. */
export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

/** What a restore test can check afterwards; driver-specific, recorded in the manifest. */
export type RestoreCheckData = Record<string, unknown>;

export interface DumpInfo {
  /** Versions of the tools used, e.g. pg_dump 15.4. */
  tools: ToolVersion[];
  /** Version of the source server, when there is one. */
  serverVersion?: string;
  /** Databases, directories or keyspaces included. */
  contents?: string[];
  /** Facts a restore test can check (table row counts, key counts, file hashes). */
  checks?: RestoreCheckData;
  /** Anything else worth keeping: binlog position, GTID, … */
  extra?: Record<string, unknown>;
}

export interface DumpSession {
  /** The raw dump. The engine consumes it with backpressure. */
  stream: Readable;
  /** Settles after the stream ended and the tool exited; rejects with a BkError on failure. */
  done: Promise<DumpInfo>;
}

export interface BackupContext {
  signal: AbortSignal;
  logger: Logger;
}

export interface RestoreContext {
  signal: AbortSignal;
  logger: Logger;
  /** Where to restore: a driver-specific destination (directory, database name, URL), or the source. */
  to?: string;
  /** Extra restore options from the CLI, already validated by the driver's own parser. */
  options: Record<string, unknown>;
  /** The manifest's driver-specific data (e.g. payload format) of the backup being restored. */
  dumpInfo: DumpInfo;
}

export interface Driver {
  /** The driver name, e.g. "files", "postgres". */
  readonly kind: string;
  /** Extension of the raw payload, e.g. "tar", "sql", "pgdump", "rdb" (DESIGN §4). */
  readonly payloadExt: string;
  check(): Promise<CheckResult[]>;
  backup(ctx: BackupContext): Promise<DumpSession>;
  /**
   * Optional: a cheap, generous guess of the raw dump's size in bytes (database size on disk, the
   * tree's bytes), or undefined when unknown. S3 sizes its upload parts from it when the target has
   * no earlier backup to go by: 10,000 parts of the default size hold only 78 GiB.
   */
  estimateSize?(ctx: BackupContext): Promise<number | undefined>;
  restore(stream: Readable, ctx: RestoreContext): Promise<void>;
  /**
   * Optional: true when `restore()` of this backup applies nothing unless its input ended cleanly
   * — a staging directory, a temp file — so a checksum that fails at the end of the stream leaves
   * the destination as it was. The engine then checks the stored and raw bytes in flight only,
   * instead of reading and decoding the archive once before restoring. The engine's checksum holds
   * back the stream's last chunk until it is verified, so a tool that commits once it has read all
   * it needs (pg_restore in one transaction) cannot commit a damaged archive either.
   */
  restoreIsAtomic?(dumpInfo: DumpInfo, options: Record<string, unknown>): boolean;
  /**
   * Human description of the restore destination, for the plan printed before restoring.
   * `options` are the restore options (`RestoreContext.options`, e.g. redis `mode`).
   */
  describeRestoreTarget(to?: string, options?: Record<string, unknown>): string;
  /**
   * The shell pipeline a human would run to apply the decompressed payload from stdin; `dumpInfo`
   * is the backup's (from its manifest), for drivers whose command depends on it.
   */
  manualRestoreCommand(to?: string, options?: Record<string, unknown>, dumpInfo?: DumpInfo): string;
}

/**
 * A restore drill (`bk verify --restore-test`): a throwaway destination that a restore can target,
 * then be inspected and dropped. Drivers that support drills implement `prepareDrill`.
 */
export interface RestoreDrill {
  /** Destination to pass as `to` to `restore()`: a temp database, a temp redis-server, a temp dir. */
  to: string;
  /** Facts of the restored data, shaped like the `checks` the driver records in DumpInfo. */
  inspect(): Promise<RestoreCheckData>;
  /** Drops the throwaway destination, whatever happened before. */
  dispose(): Promise<void>;
}

export interface DrillCapable {
  /**
   * `options` holds the target's drill settings: `{ url }` from `verify.url` when set (the server to
   * create a throwaway database on). `inspect()` must return the same keys `backup()` recorded in
   * `checks`; the engine compares them key by key (nested objects too) and always calls `dispose()`.
   */
  prepareDrill(ctx: { signal: AbortSignal; logger: Logger; options: Record<string, unknown> }): Promise<RestoreDrill>;
}
