/**
 * The backup pipeline (DESIGN §5 "stream, never stage"):
 *
 *   driver stream → coalesce → sha256(raw) → gate → compress → [encrypt] → sha256(stored) → fan-out → storages
 *
 * The gate holds back the end of the stream until the dump tool has exited successfully, so a tool
 * that fails after writing all its output still fails every storage write: no archive object is
 * ever completed for a failed dump. The manifest is written last, per storage, only after that
 * storage confirmed the archive's size; a backup exists iff its manifest does.
 */
import { hostname } from 'node:os';
import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashTap } from '../codecs/checksum.js';
import { createCompressor, extensionOf, type Compression } from '../codecs/compression.js';
import { archiveKey, FORMAT_VERSION, manifestKey, newBackupId, serializeManifest, type Manifest } from '../catalog/manifest.js';
import type { Driver, DumpInfo } from '../drivers/driver.js';
import { BkError, toBkError } from '../errors.js';
import type { Logger } from '../log.js';
import { StorageError, type Storage } from '../storage/storage.js';
import { Coalesce } from '../util/coalesce.js';
import { FanOut } from './fan-out.js';

/** An encryption stage, supplied by the caller when the target is encrypted. */
export interface EncryptionStage {
  create(): Duplex | Promise<Duplex>;
  /** What the manifest records: the public recipients (never a secret), or that a passphrase was used. */
  manifest: { kind: 'age'; recipients: string[]; passphrase?: true };
  /** Archive name suffix, e.g. ".age". */
  ext: string;
}

export interface BackupJob {
  target: string;
  driver: Driver;
  storages: Storage[];
  compression: Compression;
  compressionLevel?: number;
  encryption?: EncryptionStage;
  tags?: string[];
  logger: Logger;
  signal: AbortSignal;
  clock?: () => Date;
  bkVersion: string;
  /** Size of the previous backup (or an estimate), so stores can pick part sizes; asked for only by those that use it. */
  expectedSize?: () => Promise<number | undefined>;
  onProgress?: (p: BackupProgress) => void;
}

export interface BackupProgress {
  rawBytes: number;
  storedBytes: number;
  elapsedMs: number;
}

export interface StorageOutcome {
  storage: string;
  ok: boolean;
  error?: BkError;
}

export interface BackupResult {
  target: string;
  id: string;
  status: 'ok' | 'partial' | 'failed';
  storages: StorageOutcome[];
  manifest?: Manifest;
  rawBytes: number;
  storedBytes: number;
  sha256?: string;
  seconds: number;
  /** The cause when status is not ok (the first storage's error when some storages failed). */
  error?: BkError;
}

export async function runBackup(job: BackupJob): Promise<BackupResult> {
  const clock = job.clock ?? (() => new Date());
  const started = clock();
  const id = newBackupId(started);
  const log = job.logger.child({ target: job.target });
  const ext = `${job.driver.payloadExt}${extensionOf(job.compression)}${job.encryption?.ext ?? ''}`;
  const archive = archiveKey(job.target, id, ext);
  const raw = new HashTap();
  const stored = new HashTap();
  const seconds = () => (clock().getTime() - started.getTime()) / 1000;
  const failedResult = (error: BkError): BackupResult => ({
    target: job.target,
    id,
    status: 'failed',
    storages: job.storages.map((s) => ({ storage: s.name, ok: false, error })),
    rawBytes: raw.bytes,
    storedBytes: stored.bytes,
    seconds: seconds(),
    error,
  });
  const failed = (error: BkError): BackupResult => {
    // Logged here like a storage failure is, so stderr (cron mail, log shippers) always has the cause.
    log.error(error.describe(), { step: error.step, id });
    return failedResult(error);
  };

  // With nothing to write to, every storage "succeeded" and the backup would report ok.
  if (job.storages.length === 0) {
    return failed(new BkError('USAGE', 'no storage to write to', { target: job.target, step: 'backup', hint: 'configure a storage (storages:) or pass --repo' }));
  }

  // A storage may have completed its object before the run failed (an interrupt after the last
  // byte): without a manifest it is no backup, so it goes rather than lingering as an orphan.
  const orphansRemoved = async (error: BkError): Promise<BkError> => {
    const written = await Promise.all(writes);
    await Promise.all(job.storages.map((s, i) => (written[i]!.ok ? s.delete(archive).catch(() => undefined) : undefined)));
    return error;
  };
  const failedPerStorage = (written: ({ ok: true; size: number } | { ok: false; error: BkError })[]): BackupResult => {
    const outcomes = job.storages.map((s, i) => {
      const w = written[i]!;
      return { storage: s.name, ok: false, error: w.ok ? undefined : w.error };
    });
    for (const o of outcomes) log.error(o.error?.describe() ?? 'failed', { storage: o.storage, step: o.error?.step });
    return { ...failedResult(outcomes[0]!.error!), storages: outcomes };
  };

  log.info('backup started', { step: 'dump', id, driver: job.driver.kind, storages: job.storages.map((s) => s.name) });
  // Before the dump starts; a storage that cannot get ready says why when it is written to.
  await Promise.all(job.storages.map((s) => s.prepare?.(archive).catch(() => undefined)));
  let session;
  try {
    session = await job.driver.backup({ signal: job.signal, logger: log });
  } catch (e) {
    return failed(toBkError(e, job.target, 'dump'));
  }

  let dumpError: BkError | undefined;
  let dumpInfo: DumpInfo | undefined;
  // Which side broke first decides what to report: when every storage failed on its own, the dump
  // tool's error that follows (a broken pipe) is only a consequence.
  let firstFailure: 'upstream' | 'storages' | undefined;
  session.stream.once('error', () => (firstFailure ??= 'upstream'));
  const dumpDone = session.done.then(
    (info) => {
      dumpInfo = info;
    },
    (e: unknown) => {
      firstFailure ??= 'upstream';
      dumpError = toBkError(e, job.target, 'dump');
      throw dumpError;
    },
  );
  dumpDone.catch(() => undefined);

  const fan = new FanOut(job.storages.length);
  let failedStorages = 0;
  const writes = job.storages.map((storage, i) =>
    storage.write(archive, fan.branches[i]!, { signal: job.signal, expectedSize: job.expectedSize }).then(
      (r) => ({ ok: true as const, size: r.size }),
      (e: unknown) => {
        const error = withStorageHint(toBkError(e, job.target, `write ${storage.name}`, 'STORAGE'), e, storage);
        failedStorages++;
        if (failedStorages === job.storages.length) firstFailure ??= 'storages';
        fan.drop(i, error);
        return { ok: false as const, error };
      },
    ),
  );

  const stages: (NodeJS.ReadableStream | NodeJS.WritableStream | Duplex)[] = [session.stream, new Coalesce(), raw, gateOn(dumpDone)];
  const compressor = createCompressor(job.compression, { level: job.compressionLevel });
  if (compressor) stages.push(compressor);
  try {
    if (job.encryption) stages.push(await job.encryption.create());
  } catch (e) {
    session.stream.destroy();
    return failed(toBkError(e, job.target, 'encrypt'));
  }
  stages.push(stored, fan);

  const progress = job.onProgress
    ? setInterval(() => job.onProgress!({ rawBytes: raw.bytes, storedBytes: stored.bytes, elapsedMs: clock().getTime() - started.getTime() }), 500)
    : undefined;
  let pipeError: BkError | undefined;
  try {
    await pipeline(stages as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream], { signal: job.signal });
  } catch (e) {
    pipeError = toBkError(e, job.target, 'dump');
  } finally {
    if (progress) clearInterval(progress);
  }
  const written = await Promise.all(writes);
  await dumpDone.catch(() => undefined);

  // The most useful cause first: an interruption, then whichever side broke first.
  const interrupted = job.signal.aborted ? new BkError('INTERRUPTED', 'interrupted', { target: job.target, step: 'backup' }) : undefined;
  const allStoragesFailed = written.every((w) => !w.ok);
  if (interrupted) return failed(await orphansRemoved(interrupted));
  if (allStoragesFailed && firstFailure === 'storages') return failedPerStorage(written);
  const upstream = dumpError ?? (allStoragesFailed ? undefined : pipeError);
  if (upstream) return failed(await orphansRemoved(upstream));
  if (allStoragesFailed) return failedPerStorage(written);
  if (raw.bytes === 0) {
    return failed(
      await orphansRemoved(new BkError('SOURCE', 'the dump produced no data', { target: job.target, step: 'dump', hint: 'check the source; an empty dump is never stored as a backup' })),
    );
  }

  const manifest: Manifest = {
    formatVersion: FORMAT_VERSION,
    id,
    target: job.target,
    driver: job.driver.kind,
    host: hostname(),
    startedAt: started.toISOString(),
    finishedAt: clock().toISOString(),
    bkVersion: job.bkVersion,
    tools: dumpInfo?.tools ?? [],
    ...(dumpInfo?.serverVersion ? { serverVersion: dumpInfo.serverVersion } : {}),
    payload: { kind: job.driver.kind, ext: job.driver.payloadExt },
    compression: job.compression,
    encryption: job.encryption?.manifest ?? null,
    archive,
    raw: { bytes: raw.bytes, sha256: raw.sha256 },
    stored: { bytes: stored.bytes, sha256: stored.sha256 },
    ...(dumpInfo?.contents ? { contents: dumpInfo.contents } : {}),
    tags: job.tags ?? [],
    ...(dumpInfo?.checks ? { checks: dumpInfo.checks } : {}),
    ...(dumpInfo?.extra ? { extra: dumpInfo.extra } : {}),
  };
  const body = serializeManifest(manifest);
  const outcomes: StorageOutcome[] = await Promise.all(
    job.storages.map(async (storage, i): Promise<StorageOutcome> => {
      const w = written[i]!;
      if (!w.ok) return { storage: storage.name, ok: false, error: w.error };
      try {
        if (w.size !== stored.bytes) {
          throw new BkError('STORAGE', `storage holds ${w.size} bytes of the archive, ${stored.bytes} were written`, { hint: 'check the storage; the backup was not recorded' });
        }
        await storage.writeBytes(manifestKey(job.target, id), body);
        return { storage: storage.name, ok: true };
      } catch (e) {
        await storage.delete(archive).catch(() => undefined);
        return { storage: storage.name, ok: false, error: toBkError(e, job.target, `write ${storage.name}`, 'STORAGE') };
      }
    }),
  );
  const okCount = outcomes.filter((o) => o.ok).length;
  const status = okCount === outcomes.length ? 'ok' : okCount === 0 ? 'failed' : 'partial';
  const result: BackupResult = {
    target: job.target,
    id,
    status,
    storages: outcomes,
    ...(okCount > 0 ? { manifest } : {}),
    rawBytes: raw.bytes,
    storedBytes: stored.bytes,
    sha256: stored.sha256,
    seconds: seconds(),
    error: outcomes.find((o) => !o.ok)?.error,
  };
  for (const o of outcomes) {
    if (o.ok) log.info('backup stored', { storage: o.storage, step: 'done', id, rawBytes: raw.bytes, storedBytes: stored.bytes, seconds: result.seconds });
    else log.error(o.error?.describe() ?? 'failed', { storage: o.storage, step: o.error?.step });
  }
  return result;
}

/** The fix for the storage failures whose fix is known. */
function withStorageHint(error: BkError, cause: unknown, storage: Storage): BkError {
  if (error.hint || !(cause instanceof StorageError)) return error;
  const hint =
    cause.kind === 'no-space'
      ? `free space in ${storage.location} (or prune old backups) and run the backup again`
      : cause.kind === 'permission'
        ? `let the user running bk write to ${storage.location}`
        : undefined;
  return hint ? new BkError(error.code, error.message, { target: error.target, step: error.step, hint, cause }) : error;
}

/** Passes bytes through; ends only once `done` settles, and fails the stream if `done` rejects. */
function gateOn(done: Promise<unknown>): Transform {
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      done.then(
        () => cb(),
        (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
      );
    },
  });
}
