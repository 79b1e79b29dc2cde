/**
 * The `encryption:` key of a target (or of `defaults:`). Backups are encrypted to age recipients
 * (public keys: the backup host holds no secret) or to a passphrase (scrypt); restore and verify
 * open them with the matching identity or the same passphrase (crypto/identities.ts).
 *
 * A target's `encryption:` replaces the default one as a whole; `encryption: false` turns a
 * default off for one target.
 */
import { z } from 'zod';
import { age } from '../crypto/age.js';

const recipient = z.string().superRefine((value, ctx) => {
  try {
    new (age().Encrypter)().addRecipient(value);
  } catch (e) {
    ctx.addIssue({
      code: 'custom',
      message: `not an age recipient (${(e as Error).message}); use the public key age-keygen prints (age1…)`,
    });
  }
});

export const encryptionSchema = z.union([
  z.literal(false),
  z
    .object({
      /** Public keys (age1…) every backup is encrypted to; any one matching identity opens it. */
      recipients: z.array(recipient).min(1).optional(),
      /** age identity file (age-keygen's output) for restore and verify; read only when needed. */
      identity_file: z.string().min(1).optional(),
      /** Instead of recipients: a passphrase (also `passphrase_file`); scrypt, work factor 2^18. */
      passphrase: z.string().min(8, 'use at least 8 characters (better: 4-5 random words)').optional(),
    })
    .strict()
    .refine((e) => e.recipients !== undefined || e.passphrase !== undefined, {
      message: 'set recipients (age public keys) or a passphrase',
    })
    .refine((e) => !(e.recipients && e.passphrase), {
      message: 'age encrypts to recipients or to a passphrase, not both; choose one',
    }),
]);

export type EncryptionSetting = z.infer<typeof encryptionSchema>;

export interface EncryptionConfig {
  /** age1… public keys; empty in passphrase mode. */
  recipients: string[];
  passphrase?: string;
  identityFile?: string;
}

/** The target's setting, else the default's; `false` (or neither) means not encrypted. */
export function resolveEncryption(target: EncryptionSetting | undefined, defaults: EncryptionSetting | undefined): EncryptionConfig | undefined {
  const e = target ?? defaults;
  if (!e) return undefined;
  return {
    recipients: e.recipients ?? [],
    ...(e.passphrase !== undefined ? { passphrase: e.passphrase } : {}),
    ...(e.identity_file !== undefined ? { identityFile: e.identity_file } : {}),
  };
}
