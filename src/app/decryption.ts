/** The key material a command may use to open encrypted backups of a target (crypto/identities.ts). */
import { resolve } from 'node:path';
import { createDecryptionStage } from '../codecs/encryption.js';
import type { TargetConfig } from '../config/resolve.js';
import { hasKeySource, IDENTITY_ENV, loadKeys, recipientsOf, type KeySources } from '../crypto/identities.js';
import type { CheckResult } from '../drivers/driver.js';
import type { DecryptionStage } from '../engine/restore.js';
import type { Context } from './context.js';

/** undefined when no key source is set at all; keys are read on first use, not here. */
export function decryptionFor(ctx: Context, target: TargetConfig | undefined, identityFlag?: string): DecryptionStage | undefined {
  const sources: KeySources = {
    ...(identityFlag ? { identityFlag: resolve(ctx.cwd, identityFlag) } : {}),
    ...(ctx.env[IDENTITY_ENV] ? { identityEnv: ctx.env[IDENTITY_ENV] } : {}),
    ...(target?.encryption?.identityFile ? { identityFile: resolve(ctx.cwd, target.encryption.identityFile) } : {}),
    ...(target?.encryption?.passphrase !== undefined ? { passphrase: target.encryption.passphrase } : {}),
  };
  return hasKeySource(sources) ? createDecryptionStage(sources, ctx.logger) : undefined;
}

/**
 * `bk config check` findings for a target's encryption: what it encrypts to, and whether the
 * identity this host would restore with can be read and opens backups made to those recipients.
 */
export async function encryptionChecks(ctx: Context, target: TargetConfig): Promise<CheckResult[]> {
  const enc = target.encryption;
  if (!enc) return [];
  const out: CheckResult[] = [
    {
      name: 'encryption',
      ok: true,
      detail: enc.passphrase !== undefined ? 'age, passphrase (scrypt)' : `age, to ${enc.recipients.length} recipient${enc.recipients.length === 1 ? '' : 's'}`,
    },
  ];
  const sources: KeySources = {
    ...(ctx.env[IDENTITY_ENV] ? { identityEnv: ctx.env[IDENTITY_ENV] } : {}),
    ...(enc.identityFile ? { identityFile: resolve(ctx.cwd, enc.identityFile) } : {}),
  };
  // Passphrase backups are opened by the passphrase, which the config already holds.
  if (enc.passphrase !== undefined || (!sources.identityEnv && !sources.identityFile)) return out;
  try {
    const keys = await loadKeys(sources, ctx.logger);
    const mine = await recipientsOf(keys.identities);
    const opens = mine.some((r) => enc.recipients.includes(r));
    out.push(
      opens
        ? { name: 'identity', ok: true, detail: `${keys.origin} opens backups made to the configured recipients` }
        : {
            name: 'identity',
            ok: false,
            detail: `${keys.origin} (${mine.join(', ')}) is not one of the configured recipients`,
            hint: 'new backups could not be restored with it: add its public key to recipients, or use the matching identity',
          },
    );
  } catch (e) {
    out.push({ name: 'identity', ok: false, detail: (e as Error).message, hint: (e as { hint?: string }).hint });
  }
  return out;
}
