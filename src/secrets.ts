/**
 * Known secret values, registered as config is loaded, redacted from every message that leaves bk
 * (logs, errors, notifications, JSON output). Redaction by value catches secrets echoed back by tools.
 */
const secrets = new Set<string>();

/** Secrets shorter than this would redact ordinary words; they are still never logged by key. */
const MIN_LENGTH = 4;

export function registerSecret(value: string | undefined): void {
  if (value && value.length >= MIN_LENGTH) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('***');
  return out;
}

/** Redacts credentials written inline in URLs: scheme://user:pass@host → scheme://user:***@host. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

export function knownSecrets(): readonly string[] {
  return [...secrets];
}
