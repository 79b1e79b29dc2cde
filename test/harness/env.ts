/**
 * Environment for child processes with every variable removed that could silently point a client
 * or server at the shared services on the standard ports (PGHOST, MYSQL_HOST, REDISCLI_AUTH, ...)
 * or inject credentials. Use with execa's `extendEnv: false`.
 */
const LEAKY = /^(PG|MYSQL|MARIADB|REDIS|AWS_|BK_)/;

export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !LEAKY.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}
