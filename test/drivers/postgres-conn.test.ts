// Connection handling of the postgres driver without a server: URL parsing, conninfo quoting, the
// passfile, and the option checks that keep passwords off command lines.
import { readFile, stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { childCredentials, conninfo, parsePostgresUrl } from '../../src/drivers/postgres-conn.js';
import { postgresOptionsSchema } from '../../src/drivers/postgres.js';
import { redact } from '../../src/secrets.js';

describe('parsePostgresUrl', () => {
  it('splits user, password, hosts, ports, database and parameters the way libpq does', () => {
    const c = parsePostgresUrl('postgresql://app%40corp:p%3Ass%40w@db1:5432,db2:5433/my%20db?sslmode=verify-full&application_name=x');
    expect(c.password).toBe('p:ss@w');
    expect(c.params).toEqual({ user: 'app@corp', host: 'db1,db2', port: '5432,5433', dbname: 'my db', sslmode: 'verify-full', application_name: 'x' });
    // The password found in a URL is redacted from everything bk prints.
    expect(redact('failed for p:ss@w')).toBe('failed for ***');
  });

  it('reads sockets, IPv6 and the password parameter', () => {
    expect(parsePostgresUrl('postgres:///app?host=/run/postgresql').params).toEqual({ dbname: 'app', host: '/run/postgresql' });
    expect(parsePostgresUrl('postgres://%2Ftmp%2Fpg/app').params).toEqual({ host: '/tmp/pg', dbname: 'app' });
    expect(parsePostgresUrl('postgres://[::1]:6543/x').params).toEqual({ host: '::1', port: '6543', dbname: 'x' });
    expect(parsePostgresUrl('postgres://u@h/d?password=secret-param').password).toBe('secret-param');
    expect(parsePostgresUrl('postgres://u@h/d?password=secret-param').params).not.toHaveProperty('password');
  });

  it('rejects what is not a postgres URL', () => {
    expect(() => parsePostgresUrl('mysql://u@h/d')).toThrow(/not a postgres URL/);
  });
});

describe('conninfo', () => {
  it('quotes only values that need it, escaping quotes and backslashes', () => {
    expect(conninfo({ host: '127.0.0.1', dbname: "it's a \\ db", user: '' })).toBe("host=127.0.0.1 dbname='it\\'s a \\\\ db' user=''");
  });
});

describe('childCredentials', () => {
  it('writes a 0600 passfile with libpq escaping, drops PGPASSWORD, and removes the file on dispose', async () => {
    const creds = await childCredentials('a:b\\c', { PGPASSWORD: 'other', PATH: '/bin' });
    const file = creds.env.PGPASSFILE!;
    expect(creds.env.PGPASSWORD).toBeUndefined();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toBe('*:*:*:*:a\\:b\\\\c\n');
    await creds.dispose();
    await expect(stat(file)).rejects.toThrow();
  });

  it('without a password leaves libpq its own environment', async () => {
    const creds = await childCredentials(undefined, { PGPASSWORD: 'from-env' });
    expect(creds.env).toEqual({ PGPASSWORD: 'from-env' });
  });
});

describe('postgres options', () => {
  const parse = (o: Record<string, unknown>) => postgresOptionsSchema.strict().safeParse({ driver: 'postgres', ...o });

  it('accepts a full target', () => {
    const r = parse({ url: 'postgres://bk@db/app', port: '6432', sslmode: 'require', format: 'plain', extra_args: ['--exclude-table-data=audit.*', '--no-comments'] });
    expect(r.success).toBe(true);
  });

  it('refuses password flags, flags bk sets itself, unknown keys, and custom-format globals', () => {
    expect(parse({ extra_args: ['-W'] }).error?.issues[0]?.message).toMatch(/prompts for a password/);
    expect(parse({ extra_args: ['--dbname=host=x password=y'] }).error?.issues[0]?.message).toMatch(/never be on a command line/);
    expect(parse({ extra_args: ['-Fd'] }).error?.issues[0]?.message).toMatch(/-F is set by bk/);
    expect(parse({ extra_args: ['--compress=9'] }).error?.issues[0]?.message).toMatch(/--compress is set by bk/);
    expect(parse({ databases: ['a'] }).success).toBe(false);
    expect(parse({ globals: true, format: 'custom' }).error?.issues[0]?.path).toEqual(['format']);
    expect(parse({ globals: true }).success).toBe(true);
  });
});
