/**
 * Environment for child processes with every variable removed that could silently point a client
 * or server at the shared services on the standard ports (PGHOST, MYSQL_HOST, REDISCLI_AUTH, ...)
 * or inject credentials. Use with execa's `extendEnv: false`. BK_CACHE_DIR stays: the test run's
 * own cache directory (global-setup.ts).
 */
const LEAKY = /^(PG|MYSQL|MARIADB|REDIS|AWS_|BK_)/;

export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && (!LEAKY.test(k) || k === 'BK_CACHE_DIR')) env[k] = v;
  }
  return { ...env, ...extra };
}
