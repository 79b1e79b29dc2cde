/**
 * The SQL bk runs through psql on a PostgreSQL server. Names travel as psql variables
 * (`-v db=…`, interpolated as :'db' literals), never spliced into SQL text by bk.
 */

/**
 * Start of a backup: the snapshot pg_dump will import, and facts for the manifest, as one JSON line.
 * The timeouts are off as in pg_dump's own session: the transaction stays open, mostly idle, for as
 * long as the dump runs, and the counts may take long on big tables.
 */
export const OPEN_SNAPSHOT = `SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT json_build_object(
  'snapshot', pg_export_snapshot(),
  'database', current_database(),
  'serverVersion', current_setting('server_version'),
  'serverVersionNum', current_setting('server_version_num')::int,
  'encoding', pg_encoding_to_char(d.encoding))
FROM pg_database d WHERE d.datname = current_database();`;

/**
 * Exact row counts of every table and populated materialized view the dump restores, as one JSON
 * object line {"schema.table": n}. Left out: system schemas, other sessions' temporary tables
 * (unreadable), and tables that belong to an extension (CREATE EXTENSION recreates them).
 * row_security off, as pg_dump sets it: a policy that would hide rows makes this fail, as it makes
 * pg_dump fail, instead of silently counting fewer rows.
 */
export const COUNT_ROWS = `SET row_security = off;
SELECT coalesce(
  'SELECT coalesce(json_object_agg(t, n), ''{}'') FROM (' ||
    string_agg(format('SELECT %L AS t, count(*) AS n FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname), ' UNION ALL ') ||
  ') s',
  'SELECT ''{}''::json')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND (c.relkind <> 'm' OR c.relispopulated)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
\\gexec`;

/** Preflight facts as one JSON line, including tables the user cannot read (pg_dump would fail on them). */
export const PREFLIGHT = `SELECT json_build_object(
  'serverVersion', current_setting('server_version'),
  'serverVersionNum', current_setting('server_version_num')::int,
  'user', current_user,
  'database', current_database(),
  'unreadable', (SELECT coalesce(json_agg(n.nspname || '.' || c.relname ORDER BY 1), '[]')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm', 'S', 'v') AND c.relpersistence <> 't'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      AND NOT has_table_privilege(c.oid, 'SELECT')));`;

/** Server facts for a globals backup, and the roles it holds (for the manifest). */
export const GLOBALS_FACTS = `SELECT json_build_object(
  'serverVersion', current_setting('server_version'),
  'serverVersionNum', current_setting('server_version_num')::int,
  'roles', (SELECT coalesce(json_agg(rolname ORDER BY rolname), '[]') FROM pg_roles WHERE rolname !~ '^pg_'));`;

/** Creates database :'db' unless it exists; from a clean template, as pg_restore's docs advise. */
export const CREATE_DATABASE = `SELECT format('CREATE DATABASE %I TEMPLATE template0', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\\gexec`;

/** Drops database :'db', ending its sessions (FORCE needs PostgreSQL 13; older servers: terminate first). */
export const DROP_DATABASE = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'db' AND pid <> pg_backend_pid();
SELECT format('DROP DATABASE IF EXISTS %I', :'db')
\\gexec`;

/** The database's size on disk: a generous guess of its dump's size (indexes are not dumped). */
export const DATABASE_SIZE = `SELECT json_build_object('bytes', pg_database_size(current_database()));`;
