/**
 * The Storage contract (src/storage/storage.ts) as tests, run against every implementation:
 * `describeStorage('s3', async () => new S3Storage(...))`. Each test works under its own key
 * prefix, so one storage instance serves the whole suite.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError, type Storage } from '../../src/storage/storage.js';

export interface ConformanceOptions {
  /** Size of the "large" object: big enough to take the implementation's multi-part path. */
  largeBytes?: number;
  /** Called after the suite (stop servers, remove directories). */
  teardown?: () => Promise<void>;
}

/** A body of `total` random bytes in `chunk`-sized pieces that fails (or ends early) at `failAt`. */
export function generatedBody(total: number, opts: { chunk?: number; failAt?: number; mode?: 'error' | 'destroy' } = {}): { stream: Readable; sha256: () => string } {
  const chunk = opts.chunk ?? 256 * 1024;
  const hash = createHash('sha256');
  let sent = 0;
  const stream = new Readable({
    highWaterMark: chunk,
    read() {
      if (opts.failAt !== undefined && sent >= opts.failAt) {
        // Let the consumer see the bytes so far before the failure.
        void tick().then(() => (opts.mode === 'destroy' ? this.destroy() : this.destroy(new Error('source failed mid-stream'))));
        return;
      }
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk, total - sent);
      const buf = randomBytes(n);
      hash.update(buf);
      sent += n;
      this.push(buf);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function describeStorage(name: string, make: () => Promise<Storage>, opts: ConformanceOptions = {}): void {
  const large = opts.largeBytes ?? 3 * 1024 * 1024;
  describe(`Storage conformance: ${name}`, () => {
    let storage: Storage;
    let n = 0;
    /** A fresh key prefix per test. */
    const dir = () => `conf-${++n}-${randomBytes(3).toString('hex')}`;

    beforeAll(async () => {
      storage = await make();
    });
    afterAll(async () => {
      await opts.teardown?.();
    });

    it('check() passes on a usable location and leaves nothing listed', async () => {
      await storage.check();
      const all = await storage.list('');
      expect(all.filter((o) => /check|tmp/.test(o.key))).toEqual([]);
    });

    it('writes a large stream and reads back the same bytes', async () => {
      const d = dir();
      const body = generatedBody(large);
      const r = await storage.write(`${d}/a.bin`, body.stream, { expectedSize: async () => large });
      expect(r.size).toBe(large);
      const st = await storage.stat(`${d}/a.bin`);
      expect(st?.size).toBe(large);
      expect(st?.modified).toBeInstanceOf(Date);
      const back = await readAll(await storage.read(`${d}/a.bin`));
      expect(back.length).toBe(large);
      expect(sha(back)).toBe(body.sha256());
    });

    it('writes a small stream (one part) and an empty one', async () => {
      const d = dir();
      await storage.write(`${d}/small`, Readable.from([Buffer.from('hello '), Buffer.from('world')]));
      expect((await storage.readBytes(`${d}/small`)).toString()).toBe('hello world');
      const r = await storage.write(`${d}/empty`, Readable.from([]));
      expect(r.size).toBe(0);
      expect((await storage.readBytes(`${d}/empty`)).length).toBe(0);
    });

    for (const [label, total, failAt, mode] of [
      ['fails early (before one part)', large, 64 * 1024, 'error'],
      ['fails after more than a part', large, large - 256 * 1024, 'error'],
      ['is destroyed without an error', large, large - 256 * 1024, 'destroy'],
    ] as const) {
      it(`a write whose body ${label} rejects and leaves nothing`, async () => {
        const d = dir();
        const body = generatedBody(total, { failAt, mode });
        await expect(storage.write(`${d}/bad.bin`, body.stream)).rejects.toThrow();
        expect(await storage.stat(`${d}/bad.bin`)).toBeUndefined();
        expect(await storage.list(`${d}/`)).toEqual([]);
        await expect(storage.read(`${d}/bad.bin`)).rejects.toMatchObject({ kind: 'not-found' });
      });
    }

    it('a write aborted through its signal rejects as aborted and leaves nothing', async () => {
      const d = dir();
      const ac = new AbortController();
      const body = generatedBody(large);
      let seen = 0;
      body.stream.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen > large / 2) ac.abort(new Error('stop'));
      });
      const err = await storage.write(`${d}/aborted.bin`, body.stream, { signal: ac.signal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).kind).toBe('aborted');
      expect(await storage.list(`${d}/`)).toEqual([]);
    });

    it('a failed write does not touch an existing object under the same key', async () => {
      const d = dir();
      await storage.writeBytes(`${d}/keep`, Buffer.from('old'));
      await expect(storage.write(`${d}/keep`, generatedBody(large, { failAt: large - 256 * 1024 }).stream)).rejects.toThrow();
      expect((await storage.readBytes(`${d}/keep`)).toString()).toBe('old');
    });

    it('writeBytes replaces an object atomically; readBytes reads it whole', async () => {
      const d = dir();
      await storage.writeBytes(`${d}/m.json`, Buffer.from('{"v":1}'));
      await storage.writeBytes(`${d}/m.json`, Buffer.from('{"v":2}'));
      expect((await storage.readBytes(`${d}/m.json`)).toString()).toBe('{"v":2}');
      expect((await storage.stat(`${d}/m.json`))?.size).toBe(7);
    });

    it('reads from an offset (start)', async () => {
      const d = dir();
      const data = randomBytes(300_000);
      await storage.writeBytes(`${d}/r`, data);
      expect(sha(await readAll(await storage.read(`${d}/r`, { start: 123_456 })))).toBe(sha(data.subarray(123_456)));
      expect((await readAll(await storage.read(`${d}/r`, { start: data.length - 1 }))).equals(data.subarray(-1))).toBe(true);
      expect((await readAll(await storage.read(`${d}/r`, { start: data.length }))).length).toBe(0);
    });

    it('missing objects: read and readBytes fail as not-found, stat is undefined, delete is a no-op', async () => {
      const d = dir();
      await expect(storage.read(`${d}/nope`)).rejects.toMatchObject({ kind: 'not-found' });
      await expect(storage.readBytes(`${d}/nope`)).rejects.toMatchObject({ kind: 'not-found' });
      expect(await storage.stat(`${d}/nope`)).toBeUndefined();
      await storage.delete(`${d}/nope`);
    });

    it('lists by prefix, sorted, with sizes; a prefix is a string prefix, not a directory', async () => {
      const d = dir();
      await storage.writeBytes(`${d}/db/1.manifest.json`, Buffer.from('x'));
      await storage.writeBytes(`${d}/db/1.sql.zst`, Buffer.from('xyz'));
      await storage.writeBytes(`${d}/db2/1.manifest.json`, Buffer.from('x'));
      await storage.writeBytes(`${d}/dbx`, Buffer.from('x'));
      expect((await storage.list(`${d}/db/`)).map((o) => [o.key, o.size])).toEqual([
        [`${d}/db/1.manifest.json`, 1],
        [`${d}/db/1.sql.zst`, 3],
      ]);
      expect((await storage.list(`${d}/db`)).map((o) => o.key)).toEqual([`${d}/db/1.manifest.json`, `${d}/db/1.sql.zst`, `${d}/db2/1.manifest.json`, `${d}/dbx`]);
      expect(await storage.list(`${d}/none/`)).toEqual([]);
    });

    it('lists more than 1,000 objects (every page)', async () => {
      const d = dir();
      const keys = Array.from({ length: 1001 }, (_, i) => `${d}/many/${String(i).padStart(5, '0')}.manifest.json`);
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < keys.length) await storage.writeBytes(keys[next++]!, Buffer.from('{}'));
        }),
      );
      const listed = await storage.list(`${d}/many/`);
      expect(listed.length).toBe(1001);
      expect(listed.map((o) => o.key)).toEqual(keys);
    });

    it('deletes', async () => {
      const d = dir();
      await storage.writeBytes(`${d}/x`, Buffer.from('x'));
      await storage.delete(`${d}/x`);
      expect(await storage.stat(`${d}/x`)).toBeUndefined();
      expect(await storage.list(`${d}/`)).toEqual([]);
    });

    it('rejects keys that could escape its root', async () => {
      for (const key of ['', '/abs', '../up', 'a/../../b', 'a/./b', 'nul\0x']) {
        await expect(storage.writeBytes(key, Buffer.from('x')), key).rejects.toBeInstanceOf(StorageError);
        await expect(storage.write(key, Readable.from([Buffer.from('x')])), key).rejects.toBeInstanceOf(StorageError);
        await expect(storage.read(key), key).rejects.toBeInstanceOf(StorageError);
        await expect(storage.readBytes(key), key).rejects.toBeInstanceOf(StorageError);
        await expect(storage.stat(key), key).rejects.toBeInstanceOf(StorageError);
        await expect(storage.delete(key), key).rejects.toBeInstanceOf(StorageError);
      }
    });

    it('names itself: location and describeObject hold no secret and point at the object', () => {
      expect(storage.name).toBeTruthy();
      expect(storage.location).toBeTruthy();
      expect(storage.describeObject('t/1.sql.zst')).toContain('t/1.sql.zst');
    });
  });
}
