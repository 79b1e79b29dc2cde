/**
 * Remembers the file key each archive header was opened to, as an age Identity that answers only
 * for headers it has seen. A restore reads an encrypted archive's header up to three times (the key
 * check before anything is touched, the engine's own check, the decrypting stream); with a
 * passphrase each open is a 256 MiB, ~1 s scrypt run, so only the first one pays it. The header's
 * MAC is still verified with the remembered key on every open.
 */
import type { Identity, Stanza } from 'age-encryption';

export class FileKeyCache implements Identity {
  private readonly keys = new Map<string, Uint8Array>();

  /** `header`: the header bytes through the MAC line, as read from the archive. */
  remember(header: Buffer, fileKey: Uint8Array): void {
    const end = header.indexOf('\n--- ');
    if (end >= 0) this.keys.set(header.subarray(0, end + 4).toString('latin1'), fileKey);
  }

  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null {
    return this.keys.get(encodeStanzas(stanzas)) ?? null;
  }
}

/** The header without its MAC, as age encodes it (age-encryption.org/v1, canonical base64 lines). */
function encodeStanzas(stanzas: Stanza[]): string {
  const lines = ['age-encryption.org/v1\n'];
  for (const s of stanzas) {
    lines.push(`-> ${s.args.join(' ')}\n`);
    const body = Buffer.from(s.body);
    for (let i = 0; i < body.length; i += 48) lines.push(`${body.subarray(i, i + 48).toString('base64').replace(/=+$/, '')}\n`);
    if (body.length % 48 === 0) lines.push('\n');
  }
  lines.push('---');
  return lines.join('');
}
