/**
 * Dump tools write through C stdio, which flushes into a pipe every 4 KiB: pg_dump's 557 MB bench
 * dump reached bk as 51,244 reads of 10.9 KiB on average, each a wakeup and a trip through the
 * stream stages. Run through coreutils' stdbuf with a 1 MiB stdout buffer, the same dump came as
 * 9,615 reads of 58 KiB, and the tool itself writes 1 MiB at a time instead of 4 KiB.
 *
 * Only where stdbuf is installed and the tool is found on PATH (or given as a path): otherwise the
 * tool runs as it is, and a missing tool fails to start (ENOENT) as it would without stdbuf,
 * which bk turns into its install hint. stdbuf execs the tool, so signals reach the tool itself.
 */
import { onPath } from './on-path.js';

const BUFFER = '1M';

/** The command line that runs `bin args` with a big stdout buffer when it can. */
export function withStdoutBuffer(bin: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): { file: string; args: string[] } {
  const stdbuf = onPath(['stdbuf'], env.PATH);
  if (!stdbuf || !onPath([bin], env.PATH)) return { file: bin, args: [...args] };
  return { file: stdbuf, args: [`--output=${BUFFER}`, bin, ...args] };
}
