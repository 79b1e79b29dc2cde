/**
 * GNU tar as the files driver's packer and unpacker.
 *
 * Why not node-tar (the `tar` package): on the reference machine GNU tar packs at ~880 MB/s against
 * 119–169 MB/s for node-tar (research/toolchain.md §4), and the files target is ≤ 1.5× the time of
 * `tar | zstd -T0`, which node-tar cannot meet. GNU tar also keeps absolute symlink targets as
 * they are (node-tar rewrites them), so a restored tree is identical to the source.
 *
 * Safety on extraction comes from GNU tar's own rules — members with ".." are refused, leading "/"
 * is stripped, links that point outside are created only after every regular member has been
 * written, so no member is ever written through a link — and from extracting into an empty staging
 * directory: anything tar complains about fails the restore before the staging directory is moved
 * into place.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { BkError } from '../errors.js';
import { TarScanner } from './tar-scan.js';

export const GNU_TAR = { bin: 'tar', install: 'install GNU tar (apt-get install tar)' };

export interface TarCreate {
  stream: Readable;
  /** Settles once tar exited: the warnings it printed (e.g. a socket skipped), or a BkError. */
  done: Promise<{ warnings: string[] }>;
}

/**
 * Excludes in bk's syntax — a glob without "/" matches a name at any depth, one with "/" a path
 * from the source root, `**` any number of directories — spelt as GNU tar patterns. Every pattern
 * is anchored at "./" (tar's name for the root) so that no pattern can match the root itself:
 * unanchored, `*` or `.*` would exclude "." and with it everything.
 */
export function excludeArgs(globs: readonly string[]): string[] {
  const args: string[] = ['--anchored'];
  for (const glob of globs) {
    let g = glob.replace(/\/+$/, '');
    // A leading **/ means "at any depth": the rest is matched like a name or a path below any dir.
    const anyDepth = g.startsWith('**/');
    if (anyDepth) g = g.slice(3);
    if (!g.includes('/')) {
      // A name at any depth: the name itself, or below any directory. `*` may match "/" here so
      // that "./*/name" reaches every depth.
      args.push('--wildcards-match-slash', `--exclude=./${g}`, `--exclude=./*/${g}`);
    } else {
      g = g.replace(/^\/+/, '');
      // A path from the root: `*` stays within one directory unless the glob asks for `**`.
      args.push(g.includes('**') ? '--wildcards-match-slash' : '--no-wildcards-match-slash', `--exclude=./${g.replace(/\*\*/g, '*')}`);
      if (anyDepth) args.push('--wildcards-match-slash', `--exclude=./*/${g.replace(/\*\*/g, '*')}`);
    }
  }
  return globs.length ? args : [];
}

/** Lines of tar's stderr that do not make an archive wrong: the file changed while being read. */
const HARMLESS = /file changed as we read it$/;

export function createTar(root: string, excludes: readonly string[], signal?: AbortSignal): TarCreate {
  const child = spawn(
    GNU_TAR.bin,
    // posix (pax) format: sub-second mtimes, long names and big files without GNU extensions.
    // atime/ctime are left out: they change on every read, so two backups of an unchanged
    // tree stay byte-identical. 64 KiB records (a pipe's capacity) instead of the default 10 KiB:
    // each write reaches bk as one chunk, and per-chunk work made up much of a files backup's CPU
    // (bench tree: 25,000 chunks of ~18 KB → 7,000 of ~64 KB). Any tar reads the result.
    ['--create', '--file=-', `--directory=${root}`, '--format=posix', '--record-size=64K', '--pax-option=delete=atime,delete=ctime', ...excludeArgs(excludes), '.'],
    { stdio: ['ignore', 'pipe', 'pipe'], signal },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += d.toString();
  });
  const done = new Promise<{ warnings: string[] }>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new BkError('TOOL_MISSING', 'tar not found', { step: 'dump', hint: GNU_TAR.install }) : e),
    );
    child.on('close', (code, sig) => {
      // tar names members relative to the root ("./private"); say which file on this machine.
      const lines = stderr
        .split('\n')
        .filter(Boolean)
        .map((l) => l.replace(/^tar: \.\/(.*?): /, (_m, rel: string) => `tar: ${join(root, rel)}: `));
      // Exit 1 means "some files differ": harmless when every complaint is a file that grew
      // while read (a log being appended); anything else (a file vanished) fails the backup.
      if (code === 0 || (code === 1 && lines.every((l) => HARMLESS.test(l)))) return resolve({ warnings: lines });
      reject(
        new BkError('SOURCE', sig ? `tar was killed by ${sig}` : `reading the source failed: tar exited with code ${code}`, {
          step: 'dump',
          toolOutput: lines.slice(-10).join('\n') || undefined,
          hint: /Permission denied/.test(stderr)
            ? 'run bk as a user that can read every file, or exclude the unreadable path'
            : /No such file|removed before we read|Cannot stat|Cannot open/.test(stderr)
              ? 'the source changed during the backup; run it again (or back up a snapshot)'
              : undefined,
        }),
      );
    });
  });
  done.catch(() => undefined);
  // A PassThrough so a consumer that stops early can destroy it without racing tar's stdout.
  const stream = new PassThrough({ highWaterMark: 1 << 20 });
  child.stdout.pipe(stream);
  // Torn down before its end (a failed storage, Ctrl-C): stop tar. After a normal end tar is
  // exiting on its own, and killing it then would turn a good archive into a failure.
  let ended = false;
  stream.once('end', () => (ended = true));
  stream.on('close', () => {
    if (!ended && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { stream, done };
}

/** Lines of extraction stderr that mean the archive tried to place something outside. */
const UNSAFE = /contains '\.\.'|Removing leading|Cannot (create|open|mkdir).*(symlink|Not a directory|File exists)|Cannot hard link|Not a directory|Attempting extraction of symbolic links|outside/i;

/**
 * Extracts a tar stream into `dir` (an empty staging directory). Anything tar reports, even a
 * warning, fails: bk's own archives extract silently.
 */
export async function extractTar(source: Readable, dir: string, signal?: AbortSignal): Promise<void> {
  let input: Readable = source;
  source.on('error', (e) => input.destroy(e));
  const asRoot = process.getuid?.() === 0;
  const child = spawn(
    GNU_TAR.bin,
    ['--extract', '--file=-', `--directory=${dir}`, '--preserve-permissions', asRoot ? '--same-owner' : '--no-same-owner', '--delay-directory-restore', '--warning=all'],
    { stdio: ['pipe', 'ignore', 'pipe'], signal },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += d.toString();
  });
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new BkError('TOOL_MISSING', 'tar not found', { step: 'extract', hint: GNU_TAR.install }) : e),
    );
    child.on('close', (code) => resolve(code));
  });
  // GNU tar would create device nodes as root; bk's archives of ordinary trees never need one, and
  // a planted /dev/sda-alike with open permissions is a way in. Refuse them while streaming.
  input = input.pipe(new DeviceGuard());
  let inputError: unknown;
  input.on('error', (e) => {
    inputError = e;
    child.stdin.destroy();
    child.kill('SIGKILL');
  });
  input.pipe(child.stdin);
  const code = await exited;
  if (inputError) throw inputError;
  const lines = stderr.split('\n').filter(Boolean);
  if (lines.some((l) => UNSAFE.test(l))) {
    throw new BkError('UNSAFE_ARCHIVE', 'archive entry refused: the archive tries to write outside the destination', {
      step: 'extract',
      toolOutput: lines.slice(-10).join('\n'),
      hint: 'nothing was restored; this archive was not made by bk or was tampered with',
    });
  }
  if (code !== 0 || lines.length > 0) {
    throw new BkError('TOOL_FAILED', `tar ${code === 0 ? 'reported problems' : `exited with code ${code}`} while extracting`, {
      step: 'extract',
      toolOutput: lines.slice(-10).join('\n') || undefined,
    });
  }
  // tar stops at the archive's end marker, but the stream is verified only at its own end (the
  // sha256 checks upstream): wait for that, so nothing unverified is moved into place.
  await drainToEnd(input, () => inputError);
}

/** Reads what tar left unread and resolves at the stream's end; rejects if it fails before. */
function drainToEnd(input: Readable, failed: () => unknown): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (failed()) return reject(failed());
    if (input.readableEnded) return resolve();
    if (input.destroyed) return reject(new Error('the restore input stopped before its end'));
    input.once('end', resolve);
    input.once('error', reject);
    input.once('close', () => (input.readableEnded ? resolve() : reject(failed() ?? new Error('the restore input stopped before its end'))));
    input.unpipe();
    input.resume();
  });
}

/** Passes a tar stream through, failing it at the first character or block device entry. */
class DeviceGuard extends Transform {
  private readonly scanner = new TarScanner((entry) => {
    if (entry.type === '3' || entry.type === '4') {
      this.refused ??= new BkError('UNSAFE_ARCHIVE', `archive entry refused: ${entry.path} is a device node`, {
        step: 'extract',
        hint: 'nothing was restored; this archive was not made by bk or was tampered with',
      });
    }
    return undefined;
  });
  private refused?: BkError;
  /** A stream the scanner cannot read is left to tar and the checksums to report. */
  private unreadable = false;

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.unreadable) {
      try {
        this.scanner.feed(chunk);
      } catch {
        this.unreadable = true;
      }
    }
    cb(this.refused, this.refused ? undefined : chunk);
  }
}
