import { readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BkError } from '../../src/errors.js';
import { acquireHostLock, holderState, lockPath, processStart, type HostLockInfo } from '../../src/locks/host-lock.js';
import { makeTmpDir, rmrf } from '../harness/index.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTmpDir('bk-hostlock-');
});
afterAll(async () => {
  await rmrf(dir);
});

const take = (target: string, locations = ['/backups']) => acquireHostLock({ dir, target, locations, command: 'bk test' });

async function deadPid(): Promise<number> {
  const child = execa('true');
  const pid = child.pid!;
  await child;
  return pid;
}

async function plant(target: string, location: string, info: Partial<HostLockInfo>): Promise<string> {
  const path = lockPath(dir, target, location);
  const full: HostLockInfo = { target, location, pid: 1, startedAt: '2024-01-01T00:00:00.000Z', hostname: hostname(), command: 'bk backup', nonce: 'planted', ...info };
  await writeFile(path, JSON.stringify(full));
  return path;
}

describe('host lock', () => {
  it('is exclusive: a second run gets LOCKED (exit 5) naming the holder pid and start time', async () => {
    const lock = await take('db');
    const err = await take('db').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BkError);
    expect((err as BkError).code).toBe('LOCKED');
    expect((err as BkError).exitCode).toBe(5);
    expect((err as BkError).message).toMatch(new RegExp(`locked by pid ${process.pid} \\(bk test, started \\d{4}-\\d{2}-\\d{2}T`));
    await lock.release();
    const again = await take('db');
    await again.release();
    expect((await readdir(dir)).filter((f) => f.startsWith('db@'))).toEqual([]);
  });

  it('records pid, process start time and host', async () => {
    const lock = await take('meta');
    const info = JSON.parse(await readFile(lock.paths[0]!, 'utf8')) as HostLockInfo;
    expect(info).toMatchObject({ pid: process.pid, hostname: hostname(), command: 'bk test', target: 'meta' });
    expect(info.processStart).toBe(await processStart(process.pid));
    await lock.release();
  });

  it('other targets and other storage locations are independent', async () => {
    const a = await take('app', ['/a']);
    const b = await take('app', ['/b']);
    const c = await take('other', ['/a']);
    const err = await take('app', ['/c', '/a']).catch((e: unknown) => e);
    expect((err as BkError).code).toBe('LOCKED');
    // All or nothing: the /c lock taken before /a failed was given back.
    const d = await take('app', ['/c']);
    await Promise.all([a, b, c, d].map((l) => l.release()));
  });

  it('takes over the lock of a process that is gone', async () => {
    const path = await plant('stale', '/backups', { pid: await deadPid() });
    const lock = await take('stale');
    expect((JSON.parse(await readFile(path, 'utf8')) as HostLockInfo).pid).toBe(process.pid);
    await lock.release();
  });

  it('takes over when the pid was reused by a younger process (start time differs)', async () => {
    const info = { pid: process.pid, processStart: '1', hostname: hostname() } as HostLockInfo;
    expect(await holderState(info)).toBe('dead');
    await plant('reused', '/backups', { pid: process.pid, processStart: '1' });
    const lock = await take('reused');
    await lock.release();
  });

  it('honours a live holder and a lock from another host', async () => {
    await plant('live', '/backups', { pid: process.pid, processStart: await processStart(process.pid) });
    expect(((await take('live').catch((e: unknown) => e)) as BkError).code).toBe('LOCKED');
    await plant('remote', '/backups', { pid: 1, hostname: 'elsewhere.example' });
    const err = (await take('remote').catch((e: unknown) => e)) as BkError;
    expect(err.message).toMatch(/on host elsewhere.example/);
  });

  it('exactly one of many concurrent takers wins a stale lock', async () => {
    await plant('race', '/backups', { pid: await deadPid() });
    const outcomes = await Promise.allSettled(Array.from({ length: 12 }, () => take('race')));
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as BkError).code).toBe('LOCKED');
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof take>>>).value.release();
    expect((await readdir(dir)).filter((f) => f.startsWith('race@'))).toEqual([]);
  });

  it('never releases a lock that is no longer its own', async () => {
    const lock = await take('mine');
    await plant('mine', '/backups', { pid: process.pid, nonce: 'someone-else' });
    await lock.release();
    expect((JSON.parse(await readFile(lock.paths[0]!, 'utf8')) as HostLockInfo).nonce).toBe('someone-else');
  });
});
