// The redis driver over TLS: a throwaway redis-server with a test CA, backed up through bin/bk.js
// with `rediss://` and `tls.cacert` (redis-cli --tls --cacert, and node:tls for the RESP client),
// restored live over TLS, and a clear failure when the certificate cannot be verified.
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, freePort, makeTmpDir, rmrf } from '../harness/index.js';
import { spawnServer, type ServerProcess } from '../harness/proc.js';
import { runBk } from '../helpers/run-bk.js';

const PASSWORD = `tls-Pw-${process.pid}`;
let tmp: string;
let port: number;
let server: ServerProcess;
let configPath: string;

const openssl = (args: string[]) => execa('openssl', args, { cwd: tmp, env: cleanEnv(), extendEnv: false });
const cli = (args: string[]) =>
  execa('redis-cli', ['-p', String(port), '--tls', '--cacert', join(tmp, 'ca.crt'), ...args], { env: cleanEnv({ REDISCLI_AUTH: PASSWORD }), extendEnv: false }).then((r) => r.stdout);

beforeAll(async () => {
  tmp = await makeTmpDir('bk-redis-tls-');
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=bk-test-ca']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  await writeFile(join(tmp, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf']);
  port = await freePort();
  const conf = join(tmp, 'redis.conf');
  await writeFile(
    conf,
    [
      'port 0',
      `tls-port ${port}`,
      'bind 127.0.0.1',
      `tls-cert-file ${join(tmp, 'server.crt')}`,
      `tls-key-file ${join(tmp, 'server.key')}`,
      `tls-ca-cert-file ${join(tmp, 'ca.crt')}`,
      'tls-auth-clients no',
      `dir ${tmp}`,
      'save ""',
      'appendonly no',
      'repl-diskless-sync-delay 0',
      `requirepass "${PASSWORD}"`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  server = spawnServer('redis-server', [conf], { name: 'redis-server (TLS)', cwd: tmp });
  await server.waitFor('PING over TLS', async () => (await cli(['PING'])) === 'PONG');
  await cli(['SET', 'greeting', 'hello over tls']);
  await cli(['SET', 'ttl', 'x', 'EX', '3000']);
  await cli(['-n', '3', 'HSET', 'h', 'f', 'v']);
  configPath = join(tmp, 'backup.config.yaml');
  await writeFile(
    configPath,
    `storages:
  local: { type: local, path: ${join(tmp, 'repo')} }
targets:
  secure:
    driver: redis
    url: rediss://localhost:${port}
    password: \${TLS_PW}
    tls: { cacert: ${join(tmp, 'ca.crt')} }
  unverified:
    driver: redis
    url: rediss://localhost:${port}
    password: \${TLS_PW}
`,
    { mode: 0o600 },
  );
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await rmrf(tmp);
});

const bk = (args: string[], env: Record<string, string> = {}) => runBk(['--config', configPath, ...args], { env: { TLS_PW: PASSWORD, ...env }, cwd: tmp });

describe('redis driver over TLS', () => {
  it('backs up with rediss:// and tls.cacert, and restores live over TLS', async () => {
    const b = await bk(['backup', 'secure']);
    expect(b.exitCode, b.stdout + b.stderr).toBe(0);
    await cli(['FLUSHALL']);
    await cli(['SET', 'stale', '1']);
    const unconfirmed = await bk(['restore', 'secure']);
    expect(unconfirmed.exitCode).toBe(2); // into the source, no terminal: needs --yes
    expect(await cli(['EXISTS', 'stale'])).toBe('1');
    const r = await bk(['restore', 'secure', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(await cli(['GET', 'greeting'])).toBe('hello over tls');
    expect(Number(await cli(['TTL', 'ttl']))).toBeGreaterThan(2900);
    expect(await cli(['-n', '3', 'HGET', 'h', 'f'])).toBe('v');
    expect(await cli(['EXISTS', 'stale'])).toBe('0');
  });

  it('fails with a TLS hint when the server certificate cannot be verified', async () => {
    const r = await bk(['backup', 'unverified']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/certificate/i);
    expect(r.stdout + r.stderr).toMatch(/fix: check tls/);
  });
});
