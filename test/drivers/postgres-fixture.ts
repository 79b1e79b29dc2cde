/**
 * A realistic PostgreSQL database for fidelity tests, and a fingerprint of a database — every
 * table's rows in a fixed order plus the definitions a dump must carry — so "restored equals
 * source" is one string comparison that fails with a readable diff.
 */
import type { PostgresServer } from '../harness/index.js';

export const SEED_SQL = String.raw`
CREATE SCHEMA sales;
CREATE SCHEMA "Ünïcode ☃";
CREATE TYPE sales.status AS ENUM ('new', 'paid', 'shipped', 'returned');
CREATE DOMAIN sales.money_amount AS numeric(14,4) CHECK (VALUE >= 0);
CREATE SEQUENCE sales.invoice_no START 1000 INCREMENT 7;
CREATE TABLE sales.customers (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  email text UNIQUE,
  note text,
  created timestamptz NOT NULL,
  tags text[],
  profile jsonb
);
CREATE TABLE sales.orders (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES sales.customers (id) ON DELETE CASCADE,
  status sales.status NOT NULL DEFAULT 'new',
  amount sales.money_amount,
  invoice integer NOT NULL DEFAULT nextval('sales.invoice_no'),
  placed timestamptz,
  payload bytea
);
CREATE INDEX orders_customer_placed_idx ON sales.orders (customer_id, placed DESC);
CREATE TABLE sales.order_log (id bigserial PRIMARY KEY, order_id bigint NOT NULL, action text NOT NULL);
CREATE FUNCTION sales.log_order() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO sales.order_log (order_id, action) VALUES (NEW.id, TG_OP);
  RETURN NEW;
END
$fn$;
CREATE TRIGGER orders_log AFTER INSERT OR UPDATE ON sales.orders FOR EACH ROW EXECUTE FUNCTION sales.log_order();
CREATE VIEW sales.customer_totals AS
  SELECT c.id, c.name, coalesce(sum(o.amount), 0) AS total FROM sales.customers c LEFT JOIN sales.orders o ON o.customer_id = c.id GROUP BY c.id, c.name;
CREATE MATERIALIZED VIEW sales.status_counts AS SELECT status, count(*) AS n FROM sales.orders GROUP BY status;
CREATE TABLE public.measurements (sensor int NOT NULL, at date NOT NULL, value double precision) PARTITION BY RANGE (at);
CREATE TABLE public.measurements_2023 PARTITION OF public.measurements FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE public.measurements_2024 PARTITION OF public.measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE "Ünïcode ☃"."Tëst tablé" (k text PRIMARY KEY, v text, n numeric);
COMMENT ON TABLE sales.orders IS 'Orders — ünïcode comment';
COMMENT ON COLUMN sales.customers.email IS 'unique when set';

INSERT INTO sales.customers (name, email, note, created, tags, profile)
SELECT 'Customer ' || g || CASE WHEN g % 5 = 0 THEN ' Ünïcödé 日本語 😀' ELSE '' END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE 'c' || g || '@example.com' END,
       CASE WHEN g % 3 = 0 THEN NULL WHEN g % 3 = 1 THEN E'line1\nline2\ttab \\ backslash' ELSE '' END,
       timestamptz '2023-01-01 00:00:00+00' + g * interval '37 minutes 13.123456 seconds',
       CASE WHEN g % 4 = 0 THEN NULL ELSE ARRAY['t' || (g % 10), 'quote"d', 'comma,here', NULL] END,
       CASE WHEN g % 6 = 0 THEN NULL ELSE jsonb_build_object('tier', g % 3, 'nested', jsonb_build_object('x', g, 'u', 'ü'), 'list', jsonb_build_array(1, 'two', NULL)) END
FROM generate_series(1, 400) g;
INSERT INTO sales.orders (customer_id, status, amount, placed, payload)
SELECT 1 + (g % 400), (ARRAY['new', 'paid', 'shipped', 'returned'])[1 + g % 4]::sales.status,
       CASE WHEN g % 11 = 0 THEN NULL ELSE round((g * 13.3719)::numeric, 4) END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE timestamptz '2024-02-29 23:59:59.999999+05:30' - g * interval '1 hour' END,
       CASE WHEN g % 9 = 0 THEN NULL WHEN g % 9 = 1 THEN '\x'::bytea ELSE decode(md5(g::text) || '00ff00', 'hex') END
FROM generate_series(1, 1500) g;
UPDATE sales.orders SET status = 'paid' WHERE id % 50 = 0;
SELECT setval('sales.invoice_no', 987654, true);
REFRESH MATERIALIZED VIEW sales.status_counts;
INSERT INTO public.measurements SELECT g % 10, date '2023-01-01' + (g % 700), CASE WHEN g % 97 = 0 THEN 'NaN' ELSE g / 7.0 END FROM generate_series(1, 2000) g;
INSERT INTO "Ünïcode ☃"."Tëst tablé" VALUES
  ('ключ', 'значение', 1e-20), ('🔑', NULL, NULL), (E'tab\there', E'back\\slash', -0.5), ('', 'empty key', 12345678901234567890.123456789);
SELECT lo_from_bytea(0, '\x00010203ff00'::bytea);
`;

/** Every user table and materialized view, as schema-qualified identifiers. */
const TABLES = `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1`;

/** The definitions a dump must carry, one sorted line each. */
const CATALOG = String.raw`SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'function ' || p.oid::regprocedure || ': ' || pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE NOT t.tgisinternal
  UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'view ' || schemaname || '.' || viewname || ': ' || definition FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'matview ' || schemaname || '.' || matviewname || ': ' || definition FROM pg_matviews
  UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace NOT IN (SELECT oid FROM pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema'))
  UNION ALL SELECT 'sequence ' || schemaname || '.' || sequencename || ' last ' || coalesce(last_value::text, 'not called') || ' by ' || increment_by FROM pg_sequences
  UNION ALL SELECT 'enum ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid GROUP BY t.typname
  UNION ALL SELECT 'comment ' || c.oid::regclass || ' ' || d.objsubid || ': ' || d.description FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
  UNION ALL SELECT 'large object ' || oid || ' ' || encode(lo_get(oid), 'hex') FROM pg_largeobject_metadata
  UNION ALL SELECT 'partition ' || c.oid::regclass || ' ' || pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relispartition
  UNION ALL SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
) s(line)`;

/** Rows of every table (COPY text, ordered) and the catalog lines: equal fingerprints, equal databases. */
export async function fingerprint(pg: PostgresServer, db: string): Promise<string> {
  const tables = (await pg.psql(TABLES, db)).split('\n').filter(Boolean);
  const copies = tables.map((t) => `\\echo '-- ${t.replace(/'/g, "\\'")}'\nCOPY (SELECT t.* FROM ${t} t ORDER BY t::text COLLATE "C") TO STDOUT;`).join('\n');
  const rows = await pg.psql(copies, db);
  const catalog = await pg.psql(CATALOG, db);
  return `${rows}\n-- catalog\n${catalog}`;
}

/** Exact row counts per table, shaped like the driver's manifest checks. */
export async function rowCounts(pg: PostgresServer, db: string): Promise<Record<string, number>> {
  const tables = (await pg.psql(`SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1`, db))
    .split('\n')
    .filter(Boolean);
  const out: Record<string, number> = {};
  for (const t of tables) {
    const [schema, ...rest] = t.split('.');
    const ident = `"${schema!.replace(/"/g, '""')}"."${rest.join('.').replace(/"/g, '""')}"`;
    out[t] = Number(await pg.psql(`SELECT count(*) FROM ${ident}`, db));
  }
  return out;
}
