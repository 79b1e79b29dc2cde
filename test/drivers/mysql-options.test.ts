// MySQL driver options, ad-hoc flags, URLs and option files: the parts that decide what reaches a
// child process, tested without a server.
import { describe, expect, it } from 'vitest';
import { optionFileText, optionValue, parseBatch, parseVersion } from '../../src/drivers/mysql-client.js';
import { extraArgProblem, mysqlAdHoc, mysqlOptionsSchemaFor, parseMysqlUrl } from '../../src/drivers/mysql.js';
import { withoutIdentified } from '../../src/drivers/mysql-users.js';
import { resolveTarget } from '../../src/config/resolve.js';

const parse = (o: Record<string, unknown>) => mysqlOptionsSchemaFor.mysql.strict().safeParse({ driver: 'mysql', ...o });
const firstIssue = (o: Record<string, unknown>) => {
  const r = parse(o);
  return r.success ? undefined : `${r.error.issues[0]!.path.join('.')}: ${r.error.issues[0]!.message}`;
};

describe('mysql options', () => {
  it('needs exactly one of database, databases, all', () => {
    expect(parse({ database: 'app' }).success).toBe(true);
    expect(parse({ databases: ['a', 'b'] }).success).toBe(true);
    expect(parse({ all: true }).success).toBe(true);
    expect(firstIssue({})).toMatch(/database: set exactly one of database, databases or all/);
    expect(firstIssue({ database: 'a', all: true })).toMatch(/exactly one/);
    expect(firstIssue({ database: '../etc' })).toMatch(/no "\/"/);
    expect(firstIssue({ database: '-x' })).toMatch(/may not start with "-"/);
  });

  it('rejects unknown keys, users_and_grants without all, unqualified excludes with several databases', () => {
    expect(firstIssue({ database: 'a', pasword: 'x' })).toMatch(/pasword/);
    expect(firstIssue({ database: 'a', users_and_grants: true })).toMatch(/users_and_grants: .*needs all: true/);
    expect(firstIssue({ databases: ['a'], exclude_tables: ['t'] })).toMatch(/exclude_tables.0: write "db.t"/);
    expect(parse({ database: 'a', exclude_tables: ['t', 'a.u'] }).success).toBe(true);
  });

  it('refuses extra dump arguments that carry a password or break streaming and the layout', () => {
    for (const bad of ['-psecret', '-p', '--password=x', '--password', '--pass=x', '--p=x', '--PASSWORD=x', '--loose-password=x', '--defaults-file=/x', '--no-defaults', '--result-file=/tmp/x', '--databases', '--all-databases', '--compact', '--skip-comments', '--comments=0', '--xml', '--tab=/tmp', 'app', '--where 1=1']) {
      expect(extraArgProblem(bad), bad).toBeDefined();
    }
    for (const good of ['--ignore-table=a.b', '--skip-extended-insert', '--net-buffer-length=16384', '--where=id>10', '--comments', '--skip-dump-date', '--port=3307']) {
      expect(extraArgProblem(good), good).toBeUndefined();
    }
    expect(firstIssue({ database: 'a', extra_args: ['--lock-all-tables', '-pX'] })).toMatch(/extra_args.1: .*use long options/);
  });
});

describe('mysql ad hoc and URLs', () => {
  it('parses mysql:// URLs, percent-decoded, without a database meaning all', () => {
    expect(parseMysqlUrl('mysql://u%40x:p%2Fw@db.example:3307/shop')).toEqual({ host: 'db.example', port: 3307, user: 'u@x', password: 'p/w', database: 'shop', socket: undefined });
    expect(parseMysqlUrl('mariadb://[::1]/')).toMatchObject({ host: '::1', database: undefined });
    expect(parseMysqlUrl('mysql:///app?socket=/run/mysqld/mysqld.sock')).toMatchObject({ host: undefined, socket: '/run/mysqld/mysqld.sock', database: 'app' });
  });

  it('builds options from --source and BK_MYSQL_PASSWORD (or MYSQL_PWD)', () => {
    const adHoc = mysqlAdHoc('mysql');
    expect(adHoc({ source: 'mysql://bk@127.0.0.1:3307/app' }, { BK_MYSQL_PASSWORD: 'pw' })).toEqual({ driver: 'mysql', host: '127.0.0.1', port: 3307, user: 'bk', password: 'pw', database: 'app' });
    expect(adHoc({ source: 'mysql://bk@h/' }, {})).toEqual({ driver: 'mysql', host: 'h', user: 'bk', all: true });
    expect(adHoc({ source: 'app', exclude: ['logs'] }, { MYSQL_PWD: 'pw2' })).toEqual({ driver: 'mysql', database: 'app', password: 'pw2', exclude_tables: ['logs'] });
    expect(adHoc({}, {})).toMatch(/needs --source mysql:\/\//);
    // What adHoc builds passes the driver's own (strict) schema.
    const t = resolveTarget('mysql', adHoc({ source: 'mysql://bk@h:1/app' }, { BK_MYSQL_PASSWORD: 'pw' }) as { driver: string }, {}, {}, undefined, true);
    expect(t.options).toMatchObject({ database: 'app', password: 'pw' });
  });
});

describe('mysql option files and client output', () => {
  it('quotes values so any password survives the option-file parser', () => {
    expect(optionValue('a"b\\c#d;e \'f\n')).toBe('"a\\"b\\\\c#d;e \'f\\n"');
    expect(optionFileText({ host: 'h', port: 3306, user: 'u', password: 'p' })).toBe('[client]\nuser="u"\npassword="p"\nhost="h"\nprotocol=TCP\nport=3306\n');
    // "localhost" without a port is the socket to these clients: left to them.
    expect(optionFileText({ host: 'localhost' })).toBe('[client]\nhost="localhost"\n');
    expect(optionFileText({ socket: '/s', host: 'ignored' })).toBe('[client]\nsocket="/s"\nprotocol=SOCKET\n');
  });

  it('reads batch output and versions of both families', () => {
    expect(parseBatch('a\\tb\tc\\\\d\\n\nNULL\t\\0')).toEqual([['a\tb', 'c\\d\n'], ['NULL', '\0']]);
    expect(parseVersion('mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)')).toEqual([10, 11, 19]);
    expect(parseVersion('mariadb-dump from 11.4.2-MariaDB, client 10.19 for Linux')).toEqual([11, 4, 2]);
    expect(parseVersion('mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)')).toEqual([8, 0, 36]);
    expect(parseVersion('mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)')).toEqual([5, 7, 44]);
  });

  it('drops the authentication MariaDB repeats in SHOW GRANTS', () => {
    expect(withoutIdentified("GRANT USAGE ON *.* TO `ro`@`%` IDENTIFIED BY PASSWORD '*6208BD'")).toBe('GRANT USAGE ON *.* TO `ro`@`%`');
    expect(withoutIdentified("GRANT ALL PRIVILEGES ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '*AB' WITH GRANT OPTION")).toBe('GRANT ALL PRIVILEGES ON *.* TO `a`@`%` WITH GRANT OPTION');
    expect(withoutIdentified('GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA unix_socket WITH GRANT OPTION')).toBe('GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION');
  });
});
