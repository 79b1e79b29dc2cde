// The drill engine with a stand-in driver: check comparison, unsupported drivers, and that the
// throwaway destination is disposed of on every path (restore fails, inspect fails, mismatch).
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.js';
import type { DrillCapable, Driver, DumpInfo, RestoreContext, RestoreDrill } from '../../src/drivers/driver.js';
import { runBackup } from '../../src/engine/backup.js';
import { compareChecks, runRestoreDrill } from '../../src/engine/drill.js';
import { createLogger } from '../../src/log.js';
import { LocalStorage } from '../../src/storage/local.js';
import { makeTmpDir, rmrf } from '../harness/index.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const signal = new AbortController().signal;

/** A driver whose "server" is a map: restore writes the payload under `to`, inspect counts lines. */
class MemoryDriver implements Driver {
  readonly kind = 'memory';
  readonly payloadExt = 'txt';
  readonly restored = new Map<string, string>();
  constructor(private readonly payload: string) {}
  check = async () => [];
  async backup() {
    const done: Promise<DumpInfo> = Promise.resolve({ tools: [], checks: { lines: this.payload.split('\n').length, tables: { a: 1, b: 2 } } });
    return { stream: Readable.from([Buffer.from(this.payload)]), done };
  }
  async restore(stream: Readable, ctx: RestoreContext) {
    let text = '';
    for await (const c of stream) text += String(c);
    if (text.includes('fail-restore')) throw new Error('restore tool failed');
    this.restored.set(ctx.to!, text);
  }
  describeRestoreTarget = (to?: string) => `memory ${to}`;
  manualRestoreCommand = () => 'cat';
}

class DrillableMemoryDriver extends MemoryDriver implements DrillCapable {
  disposed: string[] = [];
  constructor(
    payload: string,
    private readonly found: (text: string) => Record<string, unknown>,
  ) {
    super(payload);
  }
  async prepareDrill(): Promise<RestoreDrill> {
    const to = `drill-${this.disposed.length}`;
    return {
      to,
      inspect: async () => {
        const text = this.restored.get(to) ?? '';
        if (text.includes('fail-inspect')) throw new Error('cannot inspect');
        return this.found(text);
      },
      dispose: async () => {
        this.disposed.push(to);
        this.restored.delete(to);
      },
    };
  }
}

let dir: string;
let storage: LocalStorage;

async function backupOf(driver: Driver): Promise<Manifest> {
  const r = await runBackup({ target: 't', driver, storages: [storage], compression: 'gzip', logger, signal, bkVersion: 'test' });
  expect(r.status).toBe('ok');
  return r.manifest!;
}

beforeAll(async () => {
  dir = await makeTmpDir('bk-drill-unit-');
  storage = new LocalStorage('local', dir);
});
afterAll(async () => {
  if (dir) await rmrf(dir);
});

describe('compareChecks', () => {
  it('compares every recorded key, nested objects key by key from both sides', () => {
    const checks = compareChecks(
      { files: 3, tables: { app: { users: 10, orders: 5 } }, list: [1, 2] },
      { files: 3, tables: { app: { users: 9, orders: 5, extra: 1 } }, list: [1, 2], onlyNow: 7 },
    );
    expect(checks).toEqual([
      { name: 'files', expected: 3, actual: 3, ok: true },
      { name: 'tables.app.extra', expected: null, actual: 1, ok: false },
      { name: 'tables.app.orders', expected: 5, actual: 5, ok: true },
      { name: 'tables.app.users', expected: 10, actual: 9, ok: false },
      { name: 'list', expected: [1, 2], actual: [1, 2], ok: true },
    ]);
    expect(compareChecks({ digest: 'abc' }, {})).toEqual([{ name: 'digest', expected: 'abc', actual: null, ok: false }]);
  });
});

describe('runRestoreDrill', () => {
  const counts = (text: string) => ({ lines: text.split('\n').length, tables: { a: 1, b: 2 } });

  it('passes when the restored data matches and disposes', async () => {
    const driver = new DrillableMemoryDriver('one\ntwo', counts);
    const r = await runRestoreDrill({ manifest: await backupOf(driver), storage, driver, logger, signal });
    expect(r.status).toBe('passed');
    expect(r.checks.map((c) => c.name)).toEqual(['lines', 'tables.a', 'tables.b']);
    expect(driver.disposed).toEqual(['drill-0']);
    expect(driver.restored.size).toBe(0);
  });

  it('reports a mismatch as INTEGRITY and disposes', async () => {
    const driver = new DrillableMemoryDriver('one\ntwo', (text) => ({ ...counts(text), tables: { a: 1, b: 3 } }));
    const r = await runRestoreDrill({ manifest: await backupOf(driver), storage, driver, logger, signal });
    expect(r.status).toBe('mismatch');
    expect(r.error?.code).toBe('INTEGRITY');
    expect(r.error?.message).toContain('tables.b');
    expect(driver.disposed).toHaveLength(1);
  });

  it.each(['fail-restore', 'fail-inspect'])('fails on %s and still disposes', async (payload) => {
    const driver = new DrillableMemoryDriver(payload, counts);
    const r = await runRestoreDrill({ manifest: await backupOf(driver), storage, driver, logger, signal });
    expect(r.status).toBe('failed');
    expect(r.error?.message).toMatch(/restore tool failed|cannot inspect/);
    expect(driver.disposed).toHaveLength(1);
  });

  it('says clearly when a driver has no drill', async () => {
    const driver = new MemoryDriver('x');
    const r = await runRestoreDrill({ manifest: await backupOf(driver), storage, driver, logger, signal });
    expect(r.status).toBe('unsupported');
    expect(r.error?.message).toBe('the memory driver cannot run restore tests');
  });
});
