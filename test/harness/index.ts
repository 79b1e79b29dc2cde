// Integration-test harness: private, throwaway servers on free ports, plus an S3 fault proxy.
export { freePort } from './free-port.js';
export { makeTmpDir, rmrf } from './tmp.js';
export { cleanEnv } from './env.js';
export { startMariadb, mariadbString, type MariadbOptions, type MariadbQueryOptions, type MariadbServer } from './mariadb.js';
export { startPostgres, pgIdent, pgString, type PostgresOptions, type PsqlOptions, type PostgresServer } from './postgres.js';
export { startRedis, type RedisOptions, type RedisServer } from './redis.js';
export { startS3, type S3Options, type S3Server } from './s3.js';
export {
  startFaultProxy,
  type Fault,
  type FaultPhase,
  type FaultProxy,
  type FaultRule,
  type ProxiedRequest,
  type ProxyLogEntry,
  type ProxyStats,
} from './fault-proxy.js';
