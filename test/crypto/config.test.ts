// The encryption: and verify: config keys: validation with key paths, defaults, and opting out.
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';

const RECIPIENT = 'age1n58sa7tvsld5x5xujcvndynr3lqdf7t049a2rxknxr64uy5zggfqwd78h3';
const OTHER = 'age1fcdr909xkre5w66psltwfl3g07au2wchne3zufrtc7fr0nzgpqysv8mrg0';

const config = (target: Record<string, unknown>, defaults: Record<string, unknown> = {}) => ({
  defaults,
  storages: { local: { type: 'local', path: '/tmp/x' } },
  targets: { docs: { driver: 'files', source: '/srv', ...target } },
});
const problem = (target: Record<string, unknown>, defaults: Record<string, unknown> = {}): string => {
  try {
    resolveConfig(config(target, defaults));
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('accepted');
};

describe('encryption config', () => {
  it('resolves recipients, identity file and passphrase; the target replaces the default whole', () => {
    const withDefault = resolveConfig(config({}, { encryption: { recipients: [RECIPIENT], identity_file: '/etc/bk/key.txt' } }));
    expect(withDefault.targets.docs!.encryption).toEqual({ recipients: [RECIPIENT], identityFile: '/etc/bk/key.txt' });
    const own = resolveConfig(config({ encryption: { recipients: [OTHER] } }, { encryption: { recipients: [RECIPIENT], identity_file: '/k' } }));
    expect(own.targets.docs!.encryption).toEqual({ recipients: [OTHER] });
    const off = resolveConfig(config({ encryption: false }, { encryption: { recipients: [RECIPIENT] } }));
    expect(off.targets.docs!.encryption).toBeUndefined();
    const pass = resolveConfig(config({ encryption: { passphrase: 'long enough words' } }));
    expect(pass.targets.docs!.encryption).toEqual({ recipients: [], passphrase: 'long enough words' });
    expect(resolveConfig(config({})).targets.docs!.encryption).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a malformed recipient', { recipients: ['age1notakey'] }, /targets\.docs\.encryption\.recipients\.0: not an age recipient/],
    ['an SSH key as recipient', { recipients: ['ssh-ed25519 AAAAC3Nza'] }, /not an age recipient/],
    ['recipients and a passphrase', { recipients: [RECIPIENT], passphrase: 'long enough words' }, /not both/],
    ['neither', { identity_file: '/k' }, /targets\.docs\.encryption: set recipients \(age public keys\) or a passphrase/],
    ['a short passphrase', { passphrase: 'short' }, /at least 8 characters/],
    ['an empty recipient list', { recipients: [] }, /recipients/],
    ['a misspelt key', { recipient: [RECIPIENT] }, /unknown key/],
  ])('rejects %s', (_name, encryption, message) => {
    expect(problem({ encryption })).toMatch(message);
  });

  it('checks defaults too', () => {
    expect(problem({}, { encryption: { recipients: ['nope'] } })).toMatch(/defaults\.encryption\.recipients\.0|encryption/);
  });
});

describe('verify config', () => {
  it('resolves key by key over defaults', () => {
    const r = resolveConfig(config({ verify: { restore_test: true } }, { verify: { schedule: '0 4 * * 0' } }));
    expect(r.targets.docs!.verify).toEqual({ schedule: '0 4 * * 0', restoreTest: true });
    expect(resolveConfig(config({})).targets.docs!.verify).toBeUndefined();
  });

  it('rejects a bad schedule and unknown keys', () => {
    expect(problem({ verify: { schedule: 'every sunday' } })).toMatch(/targets\.docs\.verify\.schedule: not a cron expression/);
    expect(problem({ verify: { restore_tests: true } })).toMatch(/unknown key/);
  });
});
