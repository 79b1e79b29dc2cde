/**
 * The restore pipeline:
 *
 *   storage → verify(stored sha256) → [decrypt] → decompress → verify(raw sha256) → driver.restore
 *
 * Before anything is applied, the stored object is read once, decoded, and both its stored and
 * its raw bytes are checked against the manifest (DESIGN §5: restore never applies bytes whose
 * checksum it has not verified). Checking only the stored bytes is not enough: a manifest whose
 * raw hash is wrong (bit rot, tampering) would be found only at the end of the second read, after
 * a client that applies statement by statement (mysql) had applied most of them. The second read,
 * which feeds the target, is checked again in flight, so an object that changed between the two
 * reads still fails the restore.
 *
 * Drivers whose restore is atomic (`restoreIsAtomic`: a staging directory, a temp file, one
 * transaction that commits after the last byte) apply nothing until the stream's end is verified,
 * so for them that in-flight check is the check: one read, not two (a files restore of the bench
 * tree: 0.35 s less locally; the bench PostgreSQL restore: 1.2 s less; from S3 a whole download
 * less). VerifyTap holds back the last chunk until it is verified, so no consumer sees the end of
 * a damaged stream. A damaged archive then fails the restore with nothing committed, and is
 * reported as the damage it is.
 */
import { PassThrough, Writable, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDecompressor } from '../codecs/compression.js';
import type { Manifest } from '../catalog/manifest.js';
import type { Driver, RestoreContext } from '../drivers/driver.js';
import { BkError, toBkError } from '../errors.js';
import type { Logger } from '../log.js';
import { StorageError, type Storage } from '../storage/storage.js';
import { Coalesce } from '../util/coalesce.js';
import { VerifyTap } from './verify-tap.js';

/** Opens encrypted archives; supplied by the caller when it has a key (codecs/encryption.ts). */
export interface DecryptionStage {
  /** Stored (encrypted) bytes in, the compressed payload out. */
  create(): Duplex | Promise<Duplex>;
  /**
   * Reads only the archive's header from `archive` (then destroys it) and rejects unless the key
   * opens it: a BkError USAGE or CONFIG when the key is wrong or unreadable, INTEGRITY when the
   * header is damaged. Restore calls it before touching its target.
   */
  checkKey(archive: Readable, manifest: Manifest): Promise<void>;
}

export interface RestoreJob {
  manifest: Manifest;
  storage: Storage;
  driver: Driver;
  to?: string;
  options?: Record<string, unknown>;
  decryption?: DecryptionStage;
  logger: Logger;
  signal: AbortSignal;
}

export interface IntegrityReport {
  ok: boolean;
  /** Stored bytes matched (size and sha256). */
  stored: boolean;
  /** Raw bytes matched after decompression; undefined when not checked (no key). */
  raw?: boolean;
  /** Why the raw bytes were not checked (encrypted, and no key or a key that does not open it). */
  rawSkipped?: string;
  error?: BkError;
}

/** Reads the archive and checks stored (and, when it can decode it, raw) size and sha256. */
export async function checkIntegrity(
  storage: Storage,
  manifest: Manifest,
  opts: { signal: AbortSignal; decryption?: DecryptionStage; storedOnly?: boolean },
): Promise<IntegrityReport> {
  const what = `${storage.name}:${manifest.archive}`;
  let decryption = opts.decryption;
  let rawSkipped: string | undefined;
  if (!opts.storedOnly && manifest.encryption && !decryption) rawSkipped = 'encrypted, and no key was given';
  const checksRaw = () => !opts.storedOnly && (manifest.encryption === null || decryption !== undefined);
  try {
    if (!opts.storedOnly && manifest.encryption && decryption) {
      // The stored bytes can be checked without a key, so a key that does not open this backup
      // (e.g. one rotated out since) narrows the check instead of failing it.
      try {
        await decryption.checkKey(await storage.read(manifest.archive, { signal: opts.signal }), manifest);
      } catch (e) {
        const keyError = toBkError(e, manifest.target, 'decrypt');
        if (keyError.code !== 'USAGE' && keyError.code !== 'CONFIG') throw keyError;
        rawSkipped = `encrypted, and ${keyError.message}`;
        decryption = undefined;
      }
    }
    const checkRaw = checksRaw();
    const stages: (Readable | Writable | Duplex)[] = [await storage.read(manifest.archive, { signal: opts.signal }), new VerifyTap(manifest.stored, `archive ${what}`)];
    if (checkRaw) {
      if (manifest.encryption) stages.push(await decryption!.create());
      const dec = createDecompressor(manifest.compression);
      if (dec) stages.push(dec);
      stages.push(new VerifyTap(manifest.raw, `decompressed payload of ${what}`));
    }
    stages.push(discard());
    await pipeline(stages as unknown as [Readable, Writable], { signal: opts.signal });
    return { ok: true, stored: true, ...(checkRaw ? { raw: true } : { rawSkipped: rawSkipped ?? 'not asked for' }) };
  } catch (e) {
    const error = e instanceof StorageError ? fromStorage(e, manifest.target, what) : toBkError(e, manifest.target, 'verify', 'INTEGRITY');
    if (error.code === 'INTERRUPTED') throw error;
    // Only a mismatch found after decoding leaves the stored bytes known good.
    const storedOk = error.code === 'INTEGRITY' && error.message.startsWith('decompressed');
    return {
      ok: false,
      stored: storedOk,
      ...(checksRaw() ? { raw: false } : rawSkipped ? { rawSkipped } : {}),
      // A decoder killed from outside (OOM killer, an operator) says nothing about the archive.
      error: error.code === 'INTEGRITY' || error.code === 'STORAGE' || killedTool(error) ? error : integrityFromRead(error, what),
    };
  }
}

/**
 * A storage that cannot be read says nothing about the archive (S3 down, credentials expired):
 * STORAGE, exit 1 — not exit 4, which tells a monitor the backups are damaged. Only an archive
 * that is not there is an integrity failure: its manifest promises a backup that does not exist.
 */
function fromStorage(e: StorageError, target: string, what: string): BkError {
  if (e.kind === 'aborted') return new BkError('INTERRUPTED', 'interrupted', { target, step: 'verify', cause: e });
  if (e.kind === 'not-found') {
    return new BkError('INTEGRITY', `archive ${what} is missing`, {
      target,
      step: 'verify',
      hint: 'its manifest lists a backup whose archive is gone; restore an older backup (bk list) and run bk verify --all',
      cause: e,
    });
  }
  return new BkError('STORAGE', `cannot read ${what}: ${e.message}`, { target, step: 'verify', hint: e.hint ?? 'check the storage, then run it again', cause: e });
}

const killedTool = (e: BkError): boolean => e.code === 'TOOL_FAILED' && /\bkilled by SIG/.test(e.message);

function integrityFromRead(e: BkError, what: string): BkError {
  return new BkError('INTEGRITY', `cannot read ${what}: ${e.message}`, {
    target: e.target,
    step: 'verify',
    hint: 'the archive is missing or damaged; restore an older backup (bk list)',
    cause: e,
  });
}

export async function runRestore(job: RestoreJob): Promise<void> {
  const m = job.manifest;
  const log = job.logger.child({ target: m.target, storage: job.storage.name });
  // A wrong or missing key is found from the header alone, before the long integrity read and
  // before the driver is handed anything.
  if (m.encryption) {
    if (!job.decryption) throw missingKey(m);
    log.info('checking the key against the archive header', { step: 'decrypt', id: m.id });
    await job.decryption.checkKey(await job.storage.read(m.archive, { signal: job.signal }), m);
  }
  // A restore that applies nothing unless its input ends verified is checked in flight only: one
  // read of the archive instead of two. Any other is checked down to the raw bytes before it is
  // handed a byte.
  const dumpInfo = { tools: m.tools, serverVersion: m.serverVersion, contents: m.contents, checks: m.checks, extra: m.extra };
  const atomic = job.driver.restoreIsAtomic?.(dumpInfo, job.options ?? {}) ?? false;
  const decryption = job.decryption ? { decryption: job.decryption } : {};
  if (atomic) {
    log.info('checking archive while restoring', { step: 'verify', id: m.id });
  } else {
    log.info('checking archive before restore', { step: 'verify', id: m.id });
    const pre = await checkIntegrity(job.storage, m, { signal: job.signal, ...decryption });
    if (!pre.ok) throw pre.error!;
  }
  try {
    await applyVerified(job, dumpInfo, log);
  } catch (e) {
    // An archive its manifest promises and the storage does not have is damage (exit 4).
    if (e instanceof StorageError && e.kind === 'not-found') throw fromStorage(e, m.target, `${job.storage.name}:${m.archive}`);
    // Checked in flight, a damaged archive shows first as whatever broke on its bytes (the
    // decompressor, the driver's tool); the damage is the cause to report (exit 4), so an atomic
    // restore that failed for another reason looks at the stored bytes before saying why. (A
    // storage that could not be read would not be read better the second time.)
    const code = e instanceof StorageError ? 'STORAGE' : toBkError(e, m.target, 'restore').code;
    const unexplained = !['INTEGRITY', 'INTERRUPTED', 'STORAGE'].includes(code) && !job.signal.aborted;
    if (atomic && unexplained) {
      const check = await checkIntegrity(job.storage, m, { signal: job.signal, storedOnly: true });
      if (!check.ok && check.error?.code === 'INTEGRITY') throw check.error;
    }
    throw e;
  }
}

/** Streams the archive into the driver, checking the stored and the raw bytes as they pass. */
async function applyVerified(job: RestoreJob, dumpInfo: RestoreContext['dumpInfo'], log: Logger): Promise<void> {
  const m = job.manifest;

  const source = await job.storage.read(m.archive, { signal: job.signal });
  const stages: (Readable | Writable | Duplex)[] = [source, new VerifyTap(m.stored, `archive ${job.storage.name}:${m.archive}`)];
  if (m.encryption) stages.push(await job.decryption!.create());
  const dec = createDecompressor(m.compression);
  if (dec) stages.push(dec);
  // The restore tool's stdin gets 512 KiB writes rather than the decompressor's 64 KiB reads.
  stages.push(new Coalesce());
  stages.push(new VerifyTap(m.raw, `decompressed payload of ${m.archive}`));
  const feed = new PassThrough({ highWaterMark: 1 << 20 });
  // Which side broke first: a stage upstream of the feed (checksum, storage, decryption), or the
  // driver, whose failure destroys the feed and so fails the upstream pipeline too.
  let firstBroke: 'upstream' | 'driver' | undefined;
  for (const stage of stages) stage.once('error', () => (firstBroke ??= 'upstream'));
  feed.once('error', () => (firstBroke ??= 'driver'));
  feed.once('close', () => {
    if (!feed.writableFinished) firstBroke ??= 'driver';
  });
  stages.push(feed);

  let upstreamError: BkError | undefined;
  // A driver may still be preparing (creating the database, a staging directory) when the input
  // breaks, and only then start reading a feed that was destroyed before it listened: its tool
  // would wait for stdin forever. So an upstream failure also cancels the driver's work.
  const upstreamFailed = new AbortController();
  const upstream = pipeline(stages as unknown as [Readable, Writable], { signal: job.signal }).catch((e: unknown) => {
    upstreamError = toBkError(e, m.target, 'read');
    feed.destroy(upstreamError);
    if (firstBroke === 'upstream') upstreamFailed.abort(upstreamError);
  });
  log.info('restoring', { step: 'restore', id: m.id, to: job.driver.describeRestoreTarget(job.to) });
  try {
    await job.driver.restore(feed, {
      signal: AbortSignal.any([job.signal, upstreamFailed.signal]),
      logger: log,
      to: job.to,
      options: job.options ?? {},
      dumpInfo,
    });
  } catch (e) {
    // An upstream failure seen before the driver's (checksum, storage) is the cause; one that the
    // driver provoked by destroying the feed (its extraction refused an entry while bytes were
    // still streaming in), or that destroying the feed below provokes, is not.
    const driverError = toBkError(e, m.target, 'restore');
    // A refused archive entry is the diagnosis whatever broke first (both exit 4): the archive
    // tried to write outside its destination.
    const upstreamFirst = firstBroke === 'upstream' && driverError.code !== 'UNSAFE_ARCHIVE' ? upstreamError : undefined;
    feed.destroy();
    await upstream;
    throw upstreamFirst ?? driverError;
  }
  await upstream;
  if (upstreamError) throw upstreamError;
}

/** The error for an encrypted backup and no key to open it; says which kind of key it needs. */
export function missingKey(m: Manifest): BkError {
  const to = m.encryption?.passphrase ? 'a passphrase' : (m.encryption?.recipients ?? []).join(', ');
  return new BkError('USAGE', `backup ${m.id} is encrypted (to ${to}) and no key was given; nothing was restored`, {
    target: m.target,
    step: 'decrypt',
    hint: m.encryption?.passphrase
      ? 'set encryption.passphrase (or passphrase_file) for this target'
      : 'give the age identity: --identity FILE, BK_AGE_IDENTITY, or encryption.identity_file',
  });
}

function discard(): Writable {
  return new Writable({
    highWaterMark: 1 << 20,
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}
