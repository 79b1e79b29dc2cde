/**
 * Config value substitution, applied to the parsed YAML tree before validation:
 * `${VAR}`, `${VAR:-default}` (default when unset or empty), `$$` for a literal `$`, and
 * `<key>_file: /path` for secret keys, which reads the secret from a file (Docker/K8s secrets).
 * Every value that lands in a secret key is registered for redaction.
 */
import { readFileSync } from 'node:fs';
import { BkError } from '../errors.js';
import { registerSecret } from '../secrets.js';

/** Keys whose values are secrets: never logged, redacted everywhere, `<key>_file` allowed. */
export const SECRET_KEYS = new Set([
  'password',
  'passphrase',
  'secret_access_key',
  'access_key_id',
  'session_token',
  'url',
  'token',
  'auth',
  'webhook',
  'smtp_password',
]);

const PATTERN = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function interpolateString(value: string, env: NodeJS.ProcessEnv, path: string): string {
  return value.replace(PATTERN, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$$') return '$';
    const v = env[name!];
    if (v !== undefined && (fallback === undefined || v !== '')) return v;
    if (fallback !== undefined) return fallback;
    throw new BkError('CONFIG', `${path}: environment variable ${name} is not set`, {
      step: 'config',
      hint: `export ${name}=…, or write \${${name}:-default}`,
    });
  });
}

export function interpolate(tree: unknown, env: NodeJS.ProcessEnv, path = ''): unknown {
  if (typeof tree === 'string') return interpolateString(tree, env, path || '(root)');
  if (Array.isArray(tree)) return tree.map((v, i) => interpolate(v, env, `${path}[${i}]`));
  if (tree && typeof tree === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, raw] of Object.entries(tree)) {
      const keyPath = path ? `${path}.${key}` : key;
      const value = interpolate(raw, env, keyPath);
      const base = key.endsWith('_file') ? key.slice(0, -'_file'.length) : undefined;
      if (base && SECRET_KEYS.has(base)) {
        if (typeof value !== 'string') throw new BkError('CONFIG', `${keyPath}: expected a file path`, { step: 'config' });
        if (key in out || base in (tree as object)) {
          throw new BkError('CONFIG', `${keyPath}: set either ${base} or ${key}, not both`, { step: 'config' });
        }
        out[base] = readSecretFile(value, keyPath);
      } else {
        out[key] = value;
      }
      if (SECRET_KEYS.has(base ?? key)) registerSecretValue(out[base ?? key], (base ?? key) === 'url');
    }
    return out;
  }
  return tree;
}

function readSecretFile(file: string, keyPath: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new BkError('CONFIG', `${keyPath}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      step: 'config',
      hint: 'check the path and that bk may read it',
    });
  }
}

/**
 * A connection URL is secret only in its password: redacting the whole URL would also hide the
 * host from every message that names it.
 */
function registerSecretValue(v: unknown, passwordOnly = false): void {
  if (typeof v !== 'string') return;
  if (!passwordOnly || !/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) registerSecret(v);
  // A URL's password is a secret even when the rest of the URL is not.
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:([^@/]*)@/i.exec(v);
  if (m?.[1]) {
    registerSecret(m[1]);
    try {
      registerSecret(decodeURIComponent(m[1]));
    } catch {
      /* not percent-encoded */
    }
  }
}
