import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { VerifyTap } from '../../src/engine/verify-tap.js';

const chunks = [Buffer.from('first chunk;'), Buffer.from('second chunk;'), Buffer.from('the last chunk')];
const whole = Buffer.concat(chunks);
const recorded = { bytes: whole.length, sha256: createHash('sha256').update(whole).digest('hex') };

/** Writes every chunk but does not end: what a consumer has received once the input is all in, before it is verified. */
async function allWritten(tap: VerifyTap): Promise<{ received: Buffer[]; ended: Promise<Error | undefined> }> {
  const received: Buffer[] = [];
  tap.on('data', (d: Buffer) => received.push(d));
  const ended = new Promise<Error | undefined>((resolve) => {
    tap.once('end', () => resolve(undefined));
    tap.once('error', resolve);
  });
  for (const c of chunks) tap.write(c);
  await new Promise((resolve) => setImmediate(resolve));
  return { received, ended };
}

describe('VerifyTap', () => {
  it('passes the bytes through unchanged when they match the manifest, the last chunk only once they are verified', async () => {
    const tap = new VerifyTap(recorded, 'archive x');
    const { received, ended } = await allWritten(tap);
    // Everything but the tail: a consumer that commits when it has read it all (pg_restore) cannot yet.
    expect(Buffer.concat(received).toString()).toBe('first chunk;second chunk;');
    tap.end();
    expect(await ended).toBeUndefined();
    expect(Buffer.concat(received).equals(whole)).toBe(true);
  });

  it.each([
    ['sha256', { ...recorded, sha256: createHash('sha256').update('other').digest('hex') }, /archive x does not match its manifest: sha256 [0-9a-f]{64} instead of/],
    ['size', { ...recorded, bytes: recorded.bytes + 1 }, /archive x does not match its manifest: \d+ bytes instead of \d+/],
  ])('on a %s mismatch fails with INTEGRITY and never hands on the last chunk', async (_name, expected, says) => {
    const tap = new VerifyTap(expected, 'archive x');
    const { received, ended } = await allWritten(tap);
    tap.end();
    const error = (await ended) as Error & { code?: string };
    expect(error?.message).toMatch(says);
    expect(error?.code).toBe('INTEGRITY');
    expect(Buffer.concat(received).toString()).toBe('first chunk;second chunk;');
  });

  it('fails as soon as more bytes arrive than the manifest recorded', async () => {
    const tap = new VerifyTap({ ...recorded, bytes: 5 }, 'archive x');
    const { ended } = await allWritten(tap);
    expect((await ended)?.message).toMatch(/more than the recorded 5 bytes/);
  });
});
