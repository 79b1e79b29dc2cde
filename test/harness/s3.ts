import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { fileURLToPath } from 'node:url';
import { spawnServer, serverLifecycle } from './proc.js';
import { makeTmpDir, rmrf } from './tmp.js';

export interface S3Options {
  /** Buckets to create at startup. Default ['backups']. */
  buckets?: readonly string[];
}

export interface S3Server {
  /** e.g. http://127.0.0.1:41234 (path-style addressing required). */
  readonly endpoint: string;
  readonly port: number;
  readonly accessKeyId: 'S3RVER';
  readonly secretAccessKey: 'S3RVER';
  readonly region: 'us-east-1';
  readonly buckets: readonly string[];
  /** s3rver's storage directory. */
  readonly dir: string;
  readonly pid: number;
  /**
   * Ready-made @aws-sdk/client-s3 config: path style, static credentials, and checksums only
   * WHEN_REQUIRED (s3rver stores aws-chunked framing verbatim otherwise, see toolchain.md §2).
   */
  readonly clientConfig: S3ClientConfig;
  log(): string;
  /** SIGKILL the s3rver process. stop() must still be called to clean up. */
  kill(): Promise<void>;
  /** Stop s3rver and remove its directory. Idempotent. */
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL('./s3rver-server.mjs', import.meta.url));

/** Start s3rver in a child process on a kernel-assigned port, storing into a fresh temp dir. */
export async function startS3(opts: S3Options = {}): Promise<S3Server> {
  const buckets = [...(opts.buckets ?? ['backups'])];
  const dir = await makeTmpDir('bk-s3-');
  let cleanup = async (): Promise<void> => rmrf(dir);
  try {
    const server = spawnServer(process.execPath, ['--openssl-legacy-provider', SCRIPT, dir, JSON.stringify(buckets)], {
      name: 's3rver',
      // stdin stays open as a lifeline: the script exits when it closes.
      stdin: 'pipe',
      // vitest's NODE_OPTIONS (loaders etc.) must not leak into the plain node child.
      env: { NODE_OPTIONS: '' },
    });
    cleanup = async () => {
      await server.stop();
      await rmrf(dir);
    };

    let port = 0;
    await server.waitFor('the port announcement', async () => {
      const m = /\{"port":(\d+)\}/.exec(server.log());
      if (m?.[1]) port = Number(m[1]);
      return port > 0;
    });

    const endpoint = `http://127.0.0.1:${port}`;
    const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
    return {
      endpoint,
      port,
      ...credentials,
      region: 'us-east-1',
      buckets,
      dir,
      clientConfig: {
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      },
      ...serverLifecycle(server, cleanup),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
