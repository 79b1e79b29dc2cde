/**
 * The header of an age file (age-encryption.org/v1): a version line, one stanza per recipient
 * ("-> X25519 …", "-> scrypt …"), and a MAC line ("--- …"). It is all bk needs to read to know
 * whether a key opens a backup, so a wrong key is found without reading the archive.
 */
import type { Readable } from 'node:stream';

const VERSION_LINE = 'age-encryption.org/v1\n';
/** Generous: an X25519 stanza is ~100 bytes, a post-quantum one ~1.6 KB. */
const MAX_HEADER = 1 << 20;

export class NotAgeError extends Error {}

/** Reads the header bytes (through the MAC line's newline) and destroys the stream. */
export async function readAgeHeader(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      parts.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      const head = Buffer.concat(parts, length);
      if (head.length >= VERSION_LINE.length && !head.subarray(0, VERSION_LINE.length).equals(Buffer.from(VERSION_LINE))) {
        throw new NotAgeError('the archive does not start with an age header');
      }
      const mac = head.indexOf('\n--- ');
      const end = mac < 0 ? -1 : head.indexOf('\n', mac + 1);
      if (end >= 0) return head.subarray(0, end + 1);
      if (head.length > MAX_HEADER) throw new NotAgeError(`no end of the age header in the first ${MAX_HEADER} bytes`);
    }
    throw new NotAgeError('the archive ends inside its age header');
  } finally {
    stream.destroy();
  }
}

/** Stanza types in a header ("X25519", "scrypt", "mlkem768x25519", …), for messages. */
export function stanzaTypes(header: Buffer): string[] {
  return [...header.toString('latin1').matchAll(/^-> (\S+)/gm)].map((m) => m[1]!);
}
