/**
 * A storage whose implementation is loaded on first use. Importing the AWS SDK costs ~0.75 s on
 * the reference machine (measured: `node -e "await import('@aws-sdk/client-s3')"`), which `bk
 * --help`, local-only backups and config errors should not pay. The parts that never touch the
 * network (name, location, object names) are answered without loading anything.
 */
import type { Readable } from 'node:stream';
import type { IncompleteWrite, ObjectInfo, ReadOptions, Storage, WriteOptions, WriteResult } from './storage.js';

export interface EagerParts {
  name: string;
  location: string;
  describeObject(key: string): string;
  manualReadCommand?(key: string): string;
}

export function lazyStorage(eager: EagerParts, load: () => Promise<Storage>): Storage {
  let loading: Promise<Storage> | undefined;
  const real = () => (loading ??= load());
  return {
    name: eager.name,
    location: eager.location,
    describeObject: (key) => eager.describeObject(key),
    ...(eager.manualReadCommand ? { manualReadCommand: (key: string) => eager.manualReadCommand!(key) } : {}),
    check: async () => (await real()).check(),
    write: async (key: string, body: Readable, options?: WriteOptions): Promise<WriteResult> => (await real()).write(key, body, options),
    writeBytes: async (key: string, data: Uint8Array) => (await real()).writeBytes(key, data),
    read: async (key: string, options?: ReadOptions): Promise<Readable> => (await real()).read(key, options),
    readBytes: async (key: string) => (await real()).readBytes(key),
    stat: async (key: string): Promise<ObjectInfo | undefined> => (await real()).stat(key),
    list: async (prefix: string) => (await real()).list(prefix),
    delete: async (key: string) => (await real()).delete(key),
    // Optional methods are forwarded too. A store without a conditional create gets a plain write,
    // which exclusiveCreate (absent here) tells the caller to read back.
    createBytes: async (key: string, data: Uint8Array) => {
      const r = await real();
      if (r.createBytes) return r.createBytes(key, data);
      await r.writeBytes(key, data);
      return true;
    },
    // Without these prune never sees (and never aborts) the multipart uploads a killed bk left
    // behind. A store without incomplete writes simply has none.
    listIncomplete: async (prefix: string) => (await (await real()).listIncomplete?.(prefix)) ?? [],
    abortIncomplete: async (write: IncompleteWrite) => (await real()).abortIncomplete?.(write),
  } satisfies Storage;
}
