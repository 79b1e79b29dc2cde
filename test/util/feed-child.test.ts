// feedChild against a real child process: a source that breaks before the caller started feeding
// (the driver was still creating its database) must fail the feed and kill the child, not leave
// the child waiting for an EOF that never comes.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { feedChild } from '../../src/util/feed-child.js';

function cat() {
  const child = spawn('sh', ['-c', 'cat >/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, exited };
}

describe('feedChild', () => {
  it('feeds a whole source and closes stdin: the child exits 0', async () => {
    const { child, exited } = cat();
    await feedChild(Readable.from([Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 2)]), child.stdin, { kill: () => child.kill('SIGKILL') });
    expect(await exited).toEqual([0, null]);
  });

  it('a source that fails mid-way kills the child before it sees EOF', async () => {
    const { child, exited } = cat();
    const source = new PassThrough();
    const fed = feedChild(source, child.stdin, { kill: () => child.kill('SIGKILL') });
    source.write(Buffer.alloc(1024));
    source.destroy(new Error('checksum mismatch'));
    await expect(fed).rejects.toThrow('checksum mismatch');
    expect(await exited).toEqual([null, 'SIGKILL']);
  });

  it('a source destroyed before feeding began fails at once and kills the child', async () => {
    const { child, exited } = cat();
    const source = new PassThrough();
    // Whoever broke it saw the error; the events are over by the time the feeding begins.
    source.on('error', () => undefined);
    source.destroy(new Error('zstd killed by SIGKILL'));
    await new Promise((r) => source.once('close', r));
    const fed = feedChild(source, child.stdin, { kill: () => child.kill('SIGKILL') });
    await expect(fed).rejects.toThrow('zstd killed by SIGKILL');
    expect(await exited).toEqual([null, 'SIGKILL']);
  }, 10_000);
});
