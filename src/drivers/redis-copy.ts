/**
 * Copying a keyspace from one server to another with DUMP / RESTORE … REPLACE: every key of every
 * database, in its own database, with its remaining time to live. Keys travel as DUMP payloads
 * (the server's own serialization, CRC-checked by RESTORE), so types, encodings, stream consumer
 * groups and binary values arrive unchanged. Commands are pipelined in batches of SCAN results.
 *
 * TTLs are copied as the remaining milliseconds (PTTL), which is right even when the two servers'
 * clocks disagree; a key whose TTL runs out during the copy is skipped, not made persistent.
 */
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';
import { asText, RespError, type RespArg, type RespClient, type RespValue } from './redis-resp.js';

export interface CopyOptions {
  /** Database numbers to copy. */
  databases: number[];
  /** Keys per SCAN batch. */
  batch?: number;
  signal?: AbortSignal;
  logger?: Logger;
  target?: string;
}

export interface CopyResult {
  /** Keys restored per database ("db0" → n). */
  keys: Record<string, number>;
  total: number;
  /** Keys that expired (or vanished) between SCAN and DUMP. */
  skipped: number;
  functions: boolean;
}

/** Keys per DUMP pipeline. */
const DUMP_GROUP = 200;
/** DUMP payloads held before they are written, so memory stays bounded whatever the key sizes. */
const MAX_PENDING_BYTES = 16 << 20;

export async function copyKeyspace(src: RespClient, dst: RespClient, opts: CopyOptions): Promise<CopyResult> {
  const batch = opts.batch ?? 1000;
  const result: CopyResult = { keys: {}, total: 0, skipped: 0, functions: false };
  const fail = (message: string, e: unknown, hint?: string) =>
    new BkError('FAILED', message, { target: opts.target, step: 'restore', hint, toolOutput: e instanceof Error ? e.message : undefined, cause: e });

  for (const db of opts.databases) {
    await src.call('SELECT', db);
    try {
      await dst.call('SELECT', db);
    } catch (e) {
      throw fail(`the destination has no database ${db}`, e, 'raise `databases` in the destination redis.conf, or restore into a server configured like the source');
    }
    let count = 0;
    let cursor = '0';
    // One write in flight on the destination while the next keys are read from the source.
    let inflight: Promise<void> = Promise.resolve();
    let pending: RespArg[][] = [];
    let pendingBytes = 0;
    const write = async (restores: RespArg[][]): Promise<void> => {
      const written = await dst.pipeline(restores);
      const bad = written.findIndex((r) => r instanceof RespError);
      if (bad >= 0) {
        const err = written[bad] as RespError;
        throw fail(`RESTORE of key ${printable(restores[bad]![1] as Buffer)} into database ${db} failed; the destination is partly restored`, err, restoreHint(err));
      }
      count += restores.length;
    };
    const flush = async (): Promise<void> => {
      await inflight;
      const restores = pending;
      pending = [];
      pendingBytes = 0;
      inflight = restores.length ? write(restores) : Promise.resolve();
      inflight.catch(() => undefined);
    };
    do {
      if (opts.signal?.aborted) throw new BkError('INTERRUPTED', 'interrupted during the copy; the destination is partly restored', { target: opts.target, step: 'restore' });
      const scan = (await src.call('SCAN', cursor, 'COUNT', batch)) as RespValue[];
      cursor = asText(scan[0]!);
      const keys = scan[1] as Buffer[];
      // DUMP in groups, and write whenever the payloads held add up: big values do not pile up in memory.
      for (let g = 0; g < keys.length; g += DUMP_GROUP) {
        const group = keys.slice(g, g + DUMP_GROUP);
        const read = await src.pipeline(group.flatMap((k) => [['PTTL', k], ['DUMP', k]]));
        for (let i = 0; i < group.length; i++) {
          const ttl = read[2 * i];
          const payload = read[2 * i + 1];
          if (ttl instanceof RespError) throw fail(`reading key ${printable(group[i]!)} from the backup failed`, ttl);
          if (payload instanceof RespError) throw fail(`reading key ${printable(group[i]!)} from the backup failed`, payload);
          // -2: gone; 0: expires within the millisecond (RESTORE with 0 would make it persistent).
          if (payload === null || ttl === -2 || ttl === 0) {
            result.skipped++;
            continue;
          }
          pending.push(['RESTORE', group[i]!, typeof ttl === 'number' && ttl > 0 ? ttl : 0, payload as Buffer, 'REPLACE']);
          pendingBytes += (payload as Buffer).length;
        }
        if (pendingBytes >= MAX_PENDING_BYTES) await flush();
      }
      if (pending.length >= batch) await flush();
    } while (cursor !== '0');
    await flush();
    await inflight;
    result.keys[`db${db}`] = count;
    result.total += count;
    opts.logger?.info(`database ${db}: ${count} keys restored`, { step: 'restore' });
  }
  result.functions = await copyFunctions(src, dst, fail);
  return result;
}

/** Redis 7 functions live outside the keyspace: FUNCTION DUMP / FUNCTION RESTORE … REPLACE. */
async function copyFunctions(src: RespClient, dst: RespClient, fail: (m: string, e: unknown, h?: string) => BkError): Promise<boolean> {
  let libraries: RespValue;
  try {
    libraries = await src.call('FUNCTION', 'LIST');
  } catch (e) {
    if (e instanceof RespError) return false; // a server before 7.0: no functions in its RDBs either
    throw e;
  }
  if (!Array.isArray(libraries) || libraries.length === 0) return false;
  const payload = await src.call('FUNCTION', 'DUMP');
  try {
    await dst.call('FUNCTION', 'RESTORE', payload as Buffer, 'REPLACE');
  } catch (e) {
    throw fail('restoring the Redis functions of the backup failed', e, 'the destination needs Redis 7 or newer for functions');
  }
  return true;
}

function restoreHint(err: RespError): string | undefined {
  if (/payload version or checksum/i.test(err.message)) {
    return 'the destination runs an older Redis than the one that read the backup; restore into a server at least as new, or use --mode file with a matching redis-server';
  }
  if (err.kind === 'READONLY') return 'the destination is a read-only replica; restore into its primary';
  if (err.kind === 'MOVED' || err.kind === 'CROSSSLOT' || err.kind === 'ASK') return 'the destination is a Redis Cluster, which a live restore does not support; restore into a standalone server';
  if (err.kind === 'OOM') return 'the destination ran out of memory (maxmemory); raise it or free space';
  if (err.kind === 'NOPERM') return 'the ACL user lacks permission for RESTORE (needs +restore and access to every key)';
  return undefined;
}

/** A key name for messages: printable ASCII as is, anything else escaped. */
export function printable(key: Buffer): string {
  const s = key.toString('latin1');
  const shown = s.length > 80 ? `${s.slice(0, 80)}…` : s;
  return JSON.stringify(shown.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)).replace(/\\\\x/g, '\\x');
}
