import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { interpolate, interpolateString } from '../../src/config/interpolate.js';
import { BkError } from '../../src/errors.js';
import { knownSecrets, redact } from '../../src/secrets.js';

function thrown(fn: () => unknown): BkError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BkError);
    return e as BkError;
  }
  throw new Error('expected a BkError');
}

describe('interpolateString', () => {
  const env = { HOST: 'db.internal', EMPTY: '', PORT: '5432' };
  it.each([
    ['${HOST}', 'db.internal'],
    ['${HOST}:${PORT}', 'db.internal:5432'],
    ['pre-${HOST}-post', 'pre-db.internal-post'],
    ['${MISSING:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${HOST:-fallback}', 'db.internal'],
    ['${MISSING:-}', ''],
    ['${EMPTY}', ''],
    ['$$', '$'],
    ['pa$$word', 'pa$word'],
    ['$${HOST}', '${HOST}'],
    ['$$$$', '$$'],
    ['a $ b', 'a $ b'],
    ['$HOST', '$HOST'],
    ['${MISSING:-a b:c}', 'a b:c'],
    ['no vars', 'no vars'],
  ])('%s → %s', (input, expected) => {
    expect(interpolateString(input, env, 'x')).toBe(expected);
  });

  it('names the key path and the variable when a variable is unset', () => {
    const e = thrown(() => interpolateString('${NOPE}', {}, 'targets.db.password'));
    expect(e.code).toBe('CONFIG');
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('targets.db.password');
    expect(e.message).toContain('NOPE');
    expect(e.hint).toContain('NOPE');
  });
});

describe('interpolate (tree)', () => {
  it('walks objects and arrays and names nested key paths in errors', () => {
    const tree = { targets: { app: { source: '${SRC}', exclude: ['a', '${X:-b}'] } }, n: 3, flag: true, nothing: null };
    expect(interpolate(tree, { SRC: '/srv' })).toEqual({ targets: { app: { source: '/srv', exclude: ['a', 'b'] } }, n: 3, flag: true, nothing: null });
    const e = thrown(() => interpolate({ targets: { app: { exclude: ['ok', '${GONE}'] } } }, {}));
    expect(e.message).toMatch(/^targets\.app\.exclude\[1\]: /);
  });

  it('reads <secret>_file into the secret key, strips one trailing newline, and registers it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bk-interp-'));
    const file = join(dir, 'pw');
    writeFileSync(file, 's3cr3t-from-file\n', { mode: 0o600 });
    const out = interpolate({ targets: { db: { password_file: file } } }, {}) as { targets: { db: Record<string, unknown> } };
    expect(out.targets.db).toEqual({ password: 's3cr3t-from-file' });
    expect(knownSecrets()).toContain('s3cr3t-from-file');
    expect(redact('connecting with s3cr3t-from-file')).toBe('connecting with ***');
  });

  it('interpolates the path of a *_file key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bk-interp-'));
    writeFileSync(join(dir, 'tok'), 'tok-value-123', { mode: 0o600 });
    const out = interpolate({ token_file: '${DIR}/tok' }, { DIR: dir });
    expect(out).toEqual({ token: 'tok-value-123' });
  });

  it('refuses both <key> and <key>_file, and an unreadable file, naming the key path', () => {
    const both = thrown(() => interpolate({ db: { password: 'x', password_file: '/etc/hostname' } }, {}));
    expect(both.message).toContain('db.password_file');
    expect(both.message).toContain('not both');
    const missing = thrown(() => interpolate({ db: { password_file: '/nonexistent/pw' } }, {}));
    expect(missing.code).toBe('CONFIG');
    expect(missing.message).toContain('db.password_file');
    expect(missing.message).toContain('ENOENT');
    const notString = thrown(() => interpolate({ db: { password_file: 42 } }, {}));
    expect(notString.message).toContain('db.password_file');
  });

  it('leaves *_file keys that are not secrets alone', () => {
    expect(interpolate({ identity_file: '/k', cache_file: '${X:-c}' }, {})).toEqual({ identity_file: '/k', cache_file: 'c' });
  });

  it('registers secret values from env interpolation, and the password inside a URL', () => {
    interpolate({ s3: { secret_access_key: '${AWS_SK}' }, notify: { url: 'https://user:url-pass-999@hooks.example/x' } }, { AWS_SK: 'sk-from-env-777' });
    expect(redact('key sk-from-env-777')).toBe('key ***');
    expect(redact('p=url-pass-999')).toBe('p=***');
  });

  it('does not register values of ordinary keys', () => {
    interpolate({ source: '/srv/not-a-secret-path' }, {});
    expect(knownSecrets()).not.toContain('/srv/not-a-secret-path');
  });
});
