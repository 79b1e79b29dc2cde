/**
 * age encryption for the backup and restore pipelines. The stored object is a standard age file
 * (age-encryption.org/v1), so `age -d -i key.txt X.tar.zst.age | zstd -d | tar -x` restores it
 * without bk.
 *
 * Implementation: age-encryption (typage, by age's author) in process, through its web-stream API.
 * Measured against the `age` binary behind a pipe (bench/age.mjs: incompressible input, Node 20,
 * 2 cores; MiB/s on a quiet machine, and MiB per CPU second, which holds on a busy one; RSS is the
 * peak of the whole Node process, plus the age child's):
 *
 *   encrypt  in-process 143 MiB/s (141-163 /cpu-s), 103-106 MiB RSS
 *            age 1.1.1  806 MiB/s (732-874 /cpu-s),  91-104 MiB + 5 MiB
 *   decrypt  in-process 141 MiB/s (132-151 /cpu-s), 107-109 MiB RSS
 *            age 1.1.1  624 MiB/s (488-558 /cpu-s),  93-97 MiB + 11-14 MiB
 *
 * RSS was the same for 256 MiB and 1 GiB: memory does not grow with the archive. The binary is
 * 4-6x faster (the cipher here is pure-JS ChaCha20-Poly1305), but encryption runs after
 * compression: 143 MiB/s of zstd output is ~650 MB/s of SQL, above zstd -3's ~285 MB/s, so it only
 * limits incompressible data. In process wins on what matters more here: passphrase mode works (the
 * age CLI reads passphrases only from a terminal), no key is written to a temp file or handed to a
 * child, and there is nothing extra to install.
 */
import type { Decrypter } from 'age-encryption';
import { age } from '../crypto/age.js';
import type { Duplex, Readable } from 'node:stream';
import type { Manifest } from '../catalog/manifest.js';
import type { EncryptionConfig } from '../config/encryption.js';
import { readAgeHeader, NotAgeError, stanzaTypes } from '../crypto/age-header.js';
import { loadKeys, recipientsOf, type KeySources, type LoadedKeys } from '../crypto/identities.js';
import { FileKeyCache } from '../crypto/file-key-cache.js';
import { WebDuplex } from '../crypto/web-duplex.js';
import type { EncryptionStage } from '../engine/backup.js';
import type { DecryptionStage } from '../engine/restore.js';
import { BkError, isAbortError, toBkError } from '../errors.js';
import type { Logger } from '../log.js';

export const AGE_EXT = '.age';

export function createEncryptionStage(cfg: EncryptionConfig): EncryptionStage {
  return {
    manifest: { kind: 'age', recipients: [...cfg.recipients], ...(cfg.passphrase !== undefined ? { passphrase: true as const } : {}) },
    ext: AGE_EXT,
    async create(): Promise<Duplex> {
      const encrypter = new (age().Encrypter)();
      if (cfg.passphrase !== undefined) encrypter.setPassphrase(cfg.passphrase);
      else for (const r of cfg.recipients) encrypter.addRecipient(r);
      const input = new TransformStream<Uint8Array, Uint8Array>();
      return new WebDuplex(
        input.writable,
        encrypter.encrypt(input.readable),
        (e) => toBkError(e, undefined, 'encrypt'),
      );
    },
  };
}

/**
 * Opens encrypted backups with the keys from `sources`, read on first use (a backup host without
 * the identity file can still load the config and back up).
 */
export function createDecryptionStage(sources: KeySources, logger?: Logger): DecryptionStage {
  let keys: Promise<LoadedKeys> | undefined;
  const opened = new FileKeyCache();
  const decrypter = async (): Promise<{ decrypter: Decrypter; keys: LoadedKeys }> => {
    keys ??= loadKeys(sources, logger);
    const k = await keys;
    const d = new (age().Decrypter)();
    d.addIdentity(opened);
    for (const i of k.identities) d.addIdentity(i);
    if (k.passphrase !== undefined) d.addPassphrase(k.passphrase);
    return { decrypter: d, keys: k };
  };

  return {
    async create(): Promise<Duplex> {
      const { decrypter: d, keys: k } = await decrypter();
      const input = new TransformStream<Uint8Array, Uint8Array>();
      return new WebDuplex(input.writable, d.decrypt(input.readable), (e) => streamError(e, k));
    },

    async checkKey(archive: Readable, manifest: Manifest): Promise<void> {
      const what = `backup ${manifest.id} of ${manifest.target}`;
      let header: Buffer;
      try {
        header = await readAgeHeader(archive);
      } catch (e) {
        if (e instanceof NotAgeError) throw damaged(what, e.message);
        throw toBkError(e, manifest.target, 'decrypt');
      }
      const { decrypter: d, keys: k } = await decrypter();
      try {
        opened.remember(header, await d.decryptHeader(header));
      } catch (e) {
        if (!isNoMatch(e)) throw damaged(what, ageMessage(e));
        throw await keyMismatch(what, manifest, header, k);
      }
    },
  };
}

const isNoMatch = (e: unknown): boolean => /no identity matched/i.test(ageMessage(e));
const ageMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));

function damaged(what: string, detail: string): BkError {
  return new BkError('INTEGRITY', `${what} is not a readable age file: ${detail}`, {
    step: 'decrypt',
    hint: 'the archive is damaged; restore an older backup (bk list) and run bk verify --all',
  });
}

/** Says which key the backup wants and which one was given, so a rotated key is easy to spot. */
async function keyMismatch(what: string, manifest: Manifest, header: Buffer, k: LoadedKeys): Promise<BkError> {
  const types = stanzaTypes(header);
  if (types.includes('scrypt')) {
    return new BkError('USAGE', `${what} was encrypted with a passphrase, and ${k.passphrase === undefined ? 'no passphrase was given' : 'the passphrase given does not open it'}`, {
      target: manifest.target,
      step: 'decrypt',
      hint: 'set encryption.passphrase (or passphrase_file) to the passphrase used when the backup was made',
    });
  }
  const wanted = manifest.encryption?.recipients ?? [];
  const have = await recipientsOf(k.identities);
  const given = k.identities.length === 0 ? 'no identity was given' : `the identity from ${k.origin} (${have.join(', ')}) does not open it`;
  return new BkError('USAGE', `${what} is encrypted to ${wanted.length ? wanted.join(', ') : `${types.join(', ')} recipients`}; ${given}`, {
    target: manifest.target,
    step: 'decrypt',
    hint: 'give the identity whose public key is listed (--identity FILE, BK_AGE_IDENTITY or encryption.identity_file); after a key rotation, old backups need the old key',
  });
}

function streamError(e: unknown, k: LoadedKeys): BkError {
  if (e instanceof BkError || isAbortError(e)) return toBkError(e, undefined, 'decrypt');
  if (isNoMatch(e)) {
    return new BkError('USAGE', `the key from ${k.origin} does not open this backup`, { step: 'decrypt', hint: 'give the identity the backup was encrypted to' });
  }
  return new BkError('INTEGRITY', `the archive is not a readable age file: ${ageMessage(e)}`, {
    step: 'decrypt',
    hint: 'the archive is damaged; restore an older backup (bk list) and run bk verify --all',
    cause: e,
  });
}
