/** age key pairs for tests, written the way age-keygen writes them (comments, 0600). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';

export interface AgeKey {
  identity: string;
  recipient: string;
  /** Path of the identity file. */
  file: string;
}

export async function makeAgeKey(dir: string, name: string): Promise<AgeKey> {
  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  const file = join(dir, `${name}.txt`);
  await writeFile(file, `# created: 2024-01-01T00:00:00Z\n# public key: ${recipient}\n${identity}\n`, { mode: 0o600 });
  return { identity, recipient, file };
}
