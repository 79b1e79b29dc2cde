import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Coalesce } from '../../src/util/coalesce.js';

/** The chunks as Coalesce emits them ('data' events: reading would join them again). */
async function through(chunks: Buffer[], size: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const c = Readable.from(chunks).pipe(new Coalesce(size));
  c.on('data', (d: Buffer) => out.push(d));
  await new Promise((resolve) => c.on('end', resolve));
  return out;
}

describe('Coalesce', () => {
  it.each([
    // [chunk sizes in, threshold, chunk sizes out]
    [[10, 10, 10, 10, 10], 25, [30, 20]],
    [[100], 25, [100]],
    [[5, 100, 5], 25, [105, 5]],
    [[25, 25], 25, [25, 25]],
    [[1], 25, [1]],
    [[], 25, []],
  ])('%j with threshold %i → %j, bytes unchanged and in order', async (sizes, size, expected) => {
    let n = 0;
    const chunks = sizes.map((len) => Buffer.from(Array.from({ length: len }, () => n++ % 251)));
    const out = await through(chunks, size);
    expect(out.map((c) => c.length)).toEqual(expected);
    expect(Buffer.concat(out).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('passes a large chunk on as it is, without copying it', async () => {
    const big = Buffer.alloc(100, 7);
    const [out] = await through([big], 25);
    expect(out!.buffer).toBe(big.buffer);
  });
});
