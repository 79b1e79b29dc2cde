// The dump scanner against hand-written dumps in the shapes mysqldump and mariadb-dump write,
// fed whole and in every small chunk size, so a split anywhere (inside a string, an escape, an
// identifier, a line head) cannot change what it finds.
import { describe, expect, it } from 'vitest';
import { DumpScanner, identifierPath, type ScanResult } from '../../src/drivers/mysql-dump-scan.js';

function scan(sql: string | Buffer, chunk?: number): ScanResult {
  const buf = Buffer.isBuffer(sql) ? sql : Buffer.from(sql);
  const s = new DumpScanner();
  const size = chunk ?? buf.length;
  for (let i = 0; i < buf.length; i += size) s.feed(buf.subarray(i, i + size));
  return s.result();
}

function everyChunking(sql: string): ScanResult {
  const whole = scan(sql);
  for (const size of [1, 2, 3, 5, 7, 16, 61, 4096]) expect(scan(sql, size)).toEqual(whole);
  return whole;
}

const HEADER = `/*M!999999\\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: 127.0.0.1    Database: app
/*!40101 SET NAMES utf8mb4 */;
`;

// mariadb-dump 10.11 style: one tuple per line after "INSERT … VALUES".
const MARIADB_STYLE = `${HEADER}
DROP TABLE IF EXISTS \`customers\`;
CREATE TABLE \`customers\` (
  \`id\` int(11) NOT NULL AUTO_INCREMENT,
  \`name\` varchar(100) NOT NULL,
  PRIMARY KEY (\`id\`)
) ENGINE=InnoDB;
LOCK TABLES \`customers\` WRITE;
INSERT INTO \`customers\` VALUES
(1,'Zoë 😀','it\\'s \\"quoted\\"\\\\ and\\nnewline),(',12.5,'{\\"a\\": [1, (2), {\\"b\\": null}]}'),
(2,'名前',NULL,-0.0001,NULL),
(3,'semi;colon',0x00FF00270A0D5C,'''',0x28);
UNLOCK TABLES;
CREATE TABLE \`empty_t\` (\`id\` int) ENGINE=InnoDB;
CREATE TABLE \`odd\`\`name\` (\`id\` int);
INSERT INTO \`odd\`\`name\` VALUES (1),(2);
DELIMITER ;;
/*!50003 CREATE*/ /*!50003 TRIGGER trg BEFORE INSERT ON customers FOR EACH ROW
INSERT INTO \`customers\` VALUES (99,'not data') */;;
DELIMITER ;
DELIMITER ;;
CREATE DEFINER=\`root\`@\`localhost\` PROCEDURE \`p\`()
INSERT INTO \`customers\` VALUES (100,'also not data'),(101,'x')
;;
DELIMITER ;
/*!50001 CREATE VIEW \`v\` AS SELECT
 1 AS \`id\` */;

-- Dump completed on 2024-01-01  0:00:00
`;

// mysqldump style: whole statement on one line, column list with --complete-insert.
const MYSQL_STYLE = `-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;
/*!40101 SET NAMES utf8mb4 */;
CREATE DATABASE /*!32312 IF NOT EXISTS*/ \`shop\` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;
USE \`shop\`;
CREATE TABLE \`orders\` (\`id\` int, \`note\` text);
INSERT INTO \`orders\` (\`id\`, \`note\`) VALUES (1,'a'),(2,'b (c)'),(3,NULL);
INSERT INTO \`orders\` (\`id\`, \`note\`) VALUES (4,'d');
REPLACE INTO \`orders\` VALUES (5,'e');
INSERT IGNORE INTO \`orders\` VALUES (6,'f');
USE \`crm\`;
CREATE TABLE \`orders\` (\`id\` int);
INSERT INTO \`orders\` VALUES (1);
-- Dump completed on 2024-01-01  0:00:00
`;

describe('DumpScanner', () => {
  it('counts rows of a mariadb-dump style dump, ignoring stored program bodies', () => {
    const r = everyChunking(MARIADB_STYLE);
    expect(r.tables).toEqual({ customers: 3, empty_t: 0, 'odd`name': 2 });
    expect(r.completed).toBe(true);
    expect(r.usedDatabases).toEqual([]);
    expect(r.createsDatabase).toBe(false);
    expect(r.binlog).toEqual({});
  });

  it('keys tables by database after USE, handles column lists, REPLACE and INSERT IGNORE', () => {
    const r = everyChunking(MYSQL_STYLE);
    expect(r.tables).toEqual({ 'shop.orders': 6, 'crm.orders': 1 });
    expect(r.usedDatabases).toEqual(['shop', 'crm']);
    expect(r.createsDatabase).toBe(true);
    expect(r.binlog).toEqual({ file: 'binlog.000002', position: 157 });
  });

  it('reads mariadb-dump --master-data=2 --gtid coordinates', () => {
    const sql = `${HEADER}-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=3394;\n-- SET GLOBAL gtid_slave_pos='0-1-13';\n-- Dump completed\n`;
    expect(everyChunking(sql).binlog).toEqual({ file: 'mysql-bin.000001', position: 3394, gtid: '0-1-13' });
  });

  it('sees a dump cut short: no trailer, trailer not last, or inside an INSERT', () => {
    const cut = MARIADB_STYLE.slice(0, MARIADB_STYLE.indexOf('(2,'));
    expect(scan(cut).completed).toBe(false);
    expect(scan('').completed).toBe(false);
    expect(scan(`${HEADER}-- Dump completed on x\nDROP TABLE t;\n`).completed).toBe(false);
    expect(scan(`${HEADER}-- Dump completed on x\n\n\n`).completed).toBe(true);
    // A trailer-looking line inside a string value is not the trailer.
    expect(scan(`INSERT INTO \`t\` VALUES ('\n-- Dump completed\n`).completed).toBe(false);
  });

  it('counts a row far longer than a chunk, with quotes and backslashes split everywhere', () => {
    const big = `'${"ab\\\\cd\\'ef),(".repeat(5000)}'`;
    const sql = `INSERT INTO \`t\` VALUES (1,${big},0x${'00'.repeat(10000)}),(2,${big},NULL);\n-- Dump completed\n`;
    const r = everyChunking(sql);
    expect(r.tables).toEqual({ t: 2 });
    expect(r.completed).toBe(true);
  });

  it('parses identifiers', () => {
    expect(identifierPath('`a``b`.`c` x', 0)).toEqual({ parts: ['a`b', 'c'], end: 10 });
    expect(identifierPath('plain_1 VALUES', 0)).toEqual({ parts: ['plain_1'], end: 7 });
    expect(identifierPath('`unterminated', 0)).toBeUndefined();
  });
});
