// The age stages as streams: round trips across age's 64 KiB chunk boundaries, output the
// reference implementation reads, truncation and damage caught, keys checked from the header,
// and backpressure (bounded memory) through the web-stream adapter.
import { randomBytes } from 'node:crypto';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Decrypter, Encrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDecryptionStage, createEncryptionStage } from '../../src/codecs/encryption.js';
import { parseIdentities } from '../../src/crypto/identities.js';
import { BkError } from '../../src/errors.js';
import type { Manifest } from '../../src/catalog/manifest.js';

let identity: string;
let recipient: string;
let other: string;

beforeAll(async () => {
  identity = await generateIdentity();
  recipient = await identityToRecipient(identity);
  other = await generateIdentity();
});

async function through(stage: Duplex, input: Buffer, chunk = 100_000): Promise<Buffer> {
  const out: Buffer[] = [];
  const parts = Array.from({ length: Math.ceil(input.length / chunk) }, (_, i) => input.subarray(i * chunk, (i + 1) * chunk));
  await pipeline(
    Readable.from(parts),
    stage,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

const encrypt = async (data: Buffer) => through(await createEncryptionStage({ recipients: [recipient] }).create(), data);
const decrypt = async (data: Buffer, key = identity) => through(await createDecryptionStage({ identityEnv: key }).create(), data);
const manifest = { id: '20240101T000000Z-abcd', target: 't', encryption: { kind: 'age', recipients: [] } } as unknown as Manifest;

describe('age stages', () => {
  it.each([0, 1, 65_535, 65_536, 65_537, 3 * 65_536, 3 * (1 << 20) + 7])('round-trips %i bytes; the reference decrypter reads the output', async (size) => {
    const plain = randomBytes(size);
    const sealed = await encrypt(plain);
    expect(sealed.subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    expect((await decrypt(sealed)).equals(plain)).toBe(true);
    const reference = new Decrypter();
    reference.addIdentity(identity);
    expect(Buffer.from(await reference.decrypt(sealed)).equals(plain)).toBe(true);
  });

  it('reads what the reference encrypter wrote', async () => {
    const e = new Encrypter();
    e.addRecipient(recipient);
    const plain = randomBytes(200_000);
    expect((await decrypt(Buffer.from(await e.encrypt(plain)))).equals(plain)).toBe(true);
  });

  it('fails on truncation (mid-chunk and at a chunk boundary) and on a flipped bit, as INTEGRITY', async () => {
    const sealed = await encrypt(randomBytes(3 * 65_536 + 100));
    const lastChunk = 100 + 16;
    for (const damaged of [
      sealed.subarray(0, sealed.length - 10),
      sealed.subarray(0, sealed.length - lastChunk),
      Buffer.concat([sealed.subarray(0, 300), Buffer.from([sealed[300]! ^ 1]), sealed.subarray(301)]),
    ]) {
      const e = await decrypt(damaged).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(BkError);
      expect((e as BkError).code).toBe('INTEGRITY');
    }
  });

  it('a key that does not match fails as USAGE, in the stream and from the header alone', async () => {
    const sealed = await encrypt(randomBytes(1000));
    const inStream = await decrypt(sealed, other).catch((e: unknown) => e);
    expect((inStream as BkError).code).toBe('USAGE');

    const stage = createDecryptionStage({ identityEnv: other });
    const m = { ...manifest, encryption: { kind: 'age' as const, recipients: [recipient] } };
    const fromHeader = await stage.checkKey(Readable.from([sealed]), m).catch((e: unknown) => e);
    expect((fromHeader as BkError).code).toBe('USAGE');
    expect((fromHeader as BkError).message).toContain(`encrypted to ${recipient}`);
    expect((fromHeader as BkError).message).toContain(await identityToRecipient(other));
    await expect(createDecryptionStage({ identityEnv: identity }).checkKey(Readable.from([sealed]), m)).resolves.toBeUndefined();

    const notAge = await createDecryptionStage({ identityEnv: identity }).checkKey(Readable.from([Buffer.from('PK\x03\x04 not age at all')]), m).catch((e: unknown) => e);
    expect((notAge as BkError).code).toBe('INTEGRITY');
  });

  it('passphrase mode: the right passphrase opens it, a wrong one says a passphrase is needed', async () => {
    expect(createEncryptionStage({ recipients: [], passphrase: 'a good long passphrase' }).manifest).toEqual({ kind: 'age', recipients: [], passphrase: true });
    // A low scrypt work factor keeps the test fast; bk itself encrypts at age's default (2^18),
    // which the end-to-end test exercises.
    const e = new Encrypter();
    e.setPassphrase('a good long passphrase');
    e.setScryptWorkFactor(10);
    const plain = randomBytes(70_000);
    const sealed = Buffer.from(await e.encrypt(plain));
    const open = createDecryptionStage({ passphrase: 'a good long passphrase' });
    await open.checkKey(Readable.from([sealed]), manifest);
    expect((await through(await open.create(), sealed)).equals(plain)).toBe(true);
    const wrong = await createDecryptionStage({ passphrase: 'not the passphrase' }).checkKey(Readable.from([sealed]), manifest).catch((err: unknown) => err);
    expect((wrong as BkError).message).toMatch(/encrypted with a passphrase, and the passphrase given does not open it/);
  });

  it('holds back writes when nobody reads (backpressure, not buffering)', async () => {
    const stage = await createEncryptionStage({ recipients: [recipient] }).create();
    let written = 0;
    while (written < 64 << 20 && stage.write(randomBytes(1 << 20))) written += 1 << 20;
    // Node's 1 MiB buffers on each side plus age's one-chunk queue: a few MiB, never the input.
    expect(written).toBeLessThan(8 << 20);
    stage.destroy();
  });
});

describe('identity files', () => {
  it('reads age-keygen files and rejects what bk cannot use, naming the line', async () => {
    expect(parseIdentities(`# created: now\n# public key: ${recipient}\n\n${identity}\n`, 'key.txt')).toEqual([identity]);
    expect(() => parseIdentities(`# comment\nssh-ed25519 AAAA\n`, 'key.txt')).toThrow(/key.txt: line 2 is not an age identity/);
    expect(() => parseIdentities('# only comments\n', 'key.txt')).toThrow(/no age identity found/);
  });
});
