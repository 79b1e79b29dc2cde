/**
 * Users, roles and grants as SQL, for whole-server backups (`all: true` with `users_and_grants`).
 *
 * Built from SHOW CREATE USER and SHOW GRANTS rather than by dumping the `mysql` schema as table
 * data, which is fragile across server versions (research/semantics.md §5.1). The statements are
 * idempotent on restore: CREATE … IF NOT EXISTS keeps existing accounts (and their passwords) as
 * they are, and GRANT only adds. They are appended after the data, because table- and
 * routine-level grants need their objects to exist.
 */
import type { Logger } from '../log.js';
import { literal } from './mysql-client.js';
import type { Flavor } from './mysql-client.js';

/** Internal accounts the server creates itself. */
const SYSTEM_ACCOUNTS = new Set(['mariadb.sys', 'mysql.sys', 'mysql.session', 'mysql.infoschema']);

export interface Account {
  user: string;
  host: string;
  /** A MariaDB role (CREATE ROLE, no host). */
  role: boolean;
}

export type Query = (sql: string, opts?: { force?: boolean }) => Promise<string[][]>;

export interface UsersSql {
  sql: string;
  accounts: number;
  skipped: string[];
}

export async function usersAndGrantsSql(query: Query, serverFlavor: Flavor, logger: Logger): Promise<UsersSql> {
  const accountRows = await query(
    serverFlavor === 'mariadb' ? 'SELECT User, Host, is_role FROM mysql.user ORDER BY is_role DESC, User, Host' : "SELECT User, Host, 'N' FROM mysql.user ORDER BY User, Host",
  );
  const accounts: Account[] = accountRows
    .map(([user, host, isRole]) => ({ user: user!, host: host!, role: isRole === 'Y' }))
    .filter((a) => !SYSTEM_ACCOUNTS.has(a.user));

  // One client run for every account; a tag row before each account's results says whose they
  // are, and --force keeps going past accounts the server cannot show (e.g. host-name accounts
  // under skip-name-resolve), which are reported as skipped.
  const batch: string[] = [];
  // MySQL 8 prints authentication strings as binary unless asked for hex.
  if (serverFlavor === 'mysql') batch.push('SET SESSION print_identified_with_as_hex = ON;');
  accounts.forEach((a, i) => {
    batch.push(`SELECT '#account', ${i};`);
    if (!a.role) batch.push(`SHOW CREATE USER ${accountName(a)};`);
    batch.push(`SHOW GRANTS FOR ${a.role ? literal(a.user) : accountName(a)};`);
  });
  const rows = accounts.length > 0 ? await query(batch.join('\n'), { force: true }) : [];

  const creates: string[] = [];
  const grants: string[] = [];
  const defaults: string[] = [];
  const seen = new Set<number>();
  let current = -1;
  let hasCreate = false;
  const skipped: string[] = [];
  let proxies = 0;
  const close = () => {
    const a = accounts[current];
    if (a && !a.role && !hasCreate) skipped.push(display(a));
  };
  for (const row of rows) {
    if (row[0] === '#account') {
      close();
      current = Number(row[1]);
      seen.add(current);
      hasCreate = false;
      const a = accounts[current]!;
      if (a.role) creates.push(`CREATE ROLE IF NOT EXISTS ${quoteName(a.user)};`);
      continue;
    }
    const stmt = row[0] ?? '';
    if (/^CREATE USER /i.test(stmt)) {
      hasCreate = true;
      creates.push(`${stmt.replace(/^CREATE USER /i, 'CREATE USER IF NOT EXISTS ')};`);
    } else if (/^GRANT PROXY /i.test(stmt)) {
      // Proxy grants are set up by the server's installer and need the PROXY privilege with grant
      // option on that exact account, which an ordinary admin user lacks: a restore would stop there.
      proxies++;
    } else if (/^GRANT /i.test(stmt)) {
      grants.push(`${withoutIdentified(stmt)};`);
    } else if (/^SET DEFAULT ROLE /i.test(stmt)) {
      defaults.push(`${stmt};`);
    }
  }
  close();
  if (seen.size !== accounts.length) {
    throw new Error(`could not read the grants of ${accounts.length - seen.size} of ${accounts.length} accounts`);
  }
  for (const s of skipped) logger.warn('account left out of the backup: the server cannot show it', { account: s });
  if (proxies > 0) logger.info('GRANT PROXY statements left out (server-managed)', { count: proxies });
  const sql = [
    '',
    '--',
    '-- Users, roles and grants (bk users_and_grants: CREATE … IF NOT EXISTS keeps existing accounts)',
    '--',
    '',
    ...creates,
    ...grants,
    ...defaults,
    '',
  ].join('\n');
  return { sql, accounts: accounts.length - skipped.length, skipped };
}

function accountName(a: Account): string {
  return `${literal(a.user)}@${literal(a.host)}`;
}

function quoteName(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

function display(a: Account): string {
  return a.role ? a.user : `${a.user}@${a.host}`;
}

/**
 * MariaDB's SHOW GRANTS repeats the authentication (`IDENTIFIED BY PASSWORD '…'`, `IDENTIFIED VIA …`);
 * CREATE USER already carries it, and a GRANT with it would reset the password of an existing account.
 */
export function withoutIdentified(grant: string): string {
  return grant.replace(/ IDENTIFIED (?:BY PASSWORD '[^']*'|VIA .*?)(?= WITH |$)/, '');
}
