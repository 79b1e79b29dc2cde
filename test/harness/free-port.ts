import { createServer } from 'node:net';

/**
 * Ask the kernel for an unused TCP port on 127.0.0.1 by listening on port 0 and closing again.
 * There is an unavoidable window in which another process could take the port before the caller
 * binds it; the server start functions surface that as a startup error with the server's log tail.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: unexpected server address'));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/**
 * Run `start` (which picks a port with freePort()) again, up to `attempts` times, when the server
 * lost the race for its port ("Address already in use" in the error, which carries the log tail).
 */
export async function retryOnPortClash<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      if (i >= attempts || !/address already in use/i.test(String((err as Error)?.message))) throw err;
    }
  }
}
