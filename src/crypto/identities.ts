/**
 * Where the keys that open a backup come from, read only when a backup must be opened: the backup
 * host needs no secret (recipients are public keys), so a restore-only key file may be absent there.
 *
 * Sources, first one set wins:
 *   1. `--identity FILE` (restore, verify)
 *   2. `BK_AGE_IDENTITY`: the key itself (a value containing "AGE-SECRET-KEY-", one or more lines in
 *      age's identity-file format) or else the path of an identity file
 *   3. `encryption.identity_file` of the target (or of defaults)
 * plus `encryption.passphrase` (or `passphrase_file`) when the target has one.
 *
 * Identity files are age's format (as written by `age-keygen`): one `AGE-SECRET-KEY-1…` (or
 * `AGE-SECRET-KEY-PQ-1…`) per line, `#` comments and blank lines ignored. Every key read is
 * registered as a secret, so no log line, error or JSON document can show it.
 */
import { readFile, stat } from 'node:fs/promises';
import { age } from './age.js';
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';
import { registerSecret } from '../secrets.js';

export const IDENTITY_ENV = 'BK_AGE_IDENTITY';

export interface KeySources {
  /** `--identity FILE`. */
  identityFlag?: string;
  /** Value of BK_AGE_IDENTITY. */
  identityEnv?: string;
  /** `encryption.identity_file`. */
  identityFile?: string;
  /** `encryption.passphrase` (already a registered secret). */
  passphrase?: string;
}

export interface LoadedKeys {
  identities: string[];
  passphrase?: string;
  /** Where the identities came from, for messages ("--identity /root/key.txt"). Never the key. */
  origin: string;
}

export const hasKeySource = (s: KeySources): boolean =>
  Boolean(s.identityFlag || s.identityEnv || s.identityFile || s.passphrase);

export async function loadKeys(s: KeySources, logger?: Logger): Promise<LoadedKeys> {
  let identities: string[] = [];
  let origin = 'encryption.passphrase';
  if (s.identityFlag) {
    identities = await readIdentityFile(s.identityFlag, `--identity ${s.identityFlag}`, logger);
    origin = `--identity ${s.identityFlag}`;
  } else if (s.identityEnv) {
    if (s.identityEnv.includes('AGE-SECRET-KEY-')) {
      registerSecret(s.identityEnv);
      identities = parseIdentities(s.identityEnv, IDENTITY_ENV);
      origin = IDENTITY_ENV;
    } else {
      identities = await readIdentityFile(s.identityEnv, `${IDENTITY_ENV} (${s.identityEnv})`, logger);
      origin = `${IDENTITY_ENV} (${s.identityEnv})`;
    }
  } else if (s.identityFile) {
    identities = await readIdentityFile(s.identityFile, `encryption.identity_file (${s.identityFile})`, logger);
    origin = `encryption.identity_file (${s.identityFile})`;
  }
  return { identities, ...(s.passphrase ? { passphrase: s.passphrase } : {}), origin };
}

async function readIdentityFile(path: string, origin: string, logger?: Logger): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new BkError('CONFIG', `${origin}: cannot read the identity file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      step: 'decrypt',
      hint: 'check the path and that bk may read it (the file age-keygen wrote)',
    });
  }
  const mode = (await stat(path)).mode;
  if ((mode & 0o077) !== 0) logger?.warn(`identity file ${path} is readable by other users; run: chmod 600 ${path}`, { step: 'decrypt' });
  return parseIdentities(text, origin);
}

/** The identities in age's identity-file format; a line bk cannot use is an error naming its number. */
export function parseIdentities(text: string, origin: string): string[] {
  const out: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    registerSecret(line);
    try {
      new (age().Decrypter)().addIdentity(line);
    } catch {
      throw new BkError('CONFIG', `${origin}: line ${i + 1} is not an age identity`, {
        step: 'decrypt',
        hint: 'use a key from age-keygen (AGE-SECRET-KEY-1…); SSH keys, plugins and passphrase-protected identity files are not supported',
      });
    }
    out.push(line);
  }
  if (out.length === 0) {
    throw new BkError('CONFIG', `${origin}: no age identity found`, { step: 'decrypt', hint: 'generate one with: age-keygen -o key.txt' });
  }
  return out;
}

/** The public keys of identities, to compare with a manifest's recipients in messages. */
export async function recipientsOf(identities: readonly string[]): Promise<string[]> {
  return Promise.all(identities.map((i) => age().identityToRecipient(i).catch(() => '?')));
}
