/**
 * URL edits shared by the database drivers. Credentials in a URL are registered as secrets where
 * the URL is parsed (config loading, the drivers); these helpers only rearrange its parts.
 */

/** The URL with its path replaced by one database name (query, user and password kept). */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}
