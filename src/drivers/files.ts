/**
 * Files driver: a local directory, or `user@host:/path` mirrored with rsync into a per-target cache
 * (only changes cross the network) and archived from there. The payload is a standard (pax) tar
 * made by GNU tar (gnu-tar.ts says why not node-tar), so `tar -x` restores it without bk.
 *
 * Restore never writes into the destination directly: the tar is extracted into a staging directory
 * beside it (same filesystem), and only a complete, verified extraction is moved into place — by
 * rename when the destination is absent or empty, else with `rsync -a --delete`. Anything tar
 * complains about while extracting (a member with "..", a link pointing the way out) fails the
 * restore before that move.
 */
import { chmod, mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import { createTar, extractTar, GNU_TAR } from './gnu-tar.js';
import { z } from 'zod';
import { BkError } from '../errors.js';
import { shellQuote } from '../codecs/compression.js';
import { runTool, toolVersion, type ToolSpec } from '../util/exec.js';
import { makeOwnedDir } from '../util/owned-dir.js';
import type { BackupContext, CheckResult, DrillCapable, Driver, DumpInfo, DumpSession, RestoreContext, RestoreDrill } from './driver.js';
import { TarTreeTap } from './files-tar-tap.js';
import { summarizeDirectory } from './files-tree.js';

export const filesOptionsSchema = z.object({
  driver: z.literal('files'),
  /** A local directory, or user@host:/path pulled with rsync. */
  source: z.string().min(1),
  /** Globs to leave out: without a slash they match a name anywhere, with one a path from the source root. */
  exclude: z.array(z.string().min(1)).default([]),
  /** Where remote sources are mirrored; defaults to ~/.cache/bk/mirror/<target>. */
  cache_dir: z.string().optional(),
  /** Remote shell for rsync, e.g. "ssh -i /etc/bk/id_ed25519 -p 2222". */
  rsh: z.string().optional(),
});
export type FilesOptions = z.infer<typeof filesOptionsSchema>;

const RSYNC: ToolSpec = { bin: 'rsync', install: 'install rsync (apt-get install rsync)' };
/** user@host:/path or host:/path — the rsync remote form; a local path never has a colon before its first slash. */
const REMOTE = /^(?:[^@/:\s]+@)?[^@/:\s]+:/;

export const isRemotePath = (p: string): boolean => REMOTE.test(p);

export class FilesDriver implements Driver, DrillCapable {
  readonly kind = 'files';
  readonly payloadExt = 'tar';

  constructor(
    private readonly target: string,
    private readonly options: FilesOptions,
  ) {}

  private get remote(): boolean {
    return isRemotePath(this.options.source);
  }

  private get mirrorDir(): string {
    const base = this.options.cache_dir ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'bk', 'mirror');
    return resolve(base, this.target);
  }

  async check(): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    const tarVersion = await toolVersion(GNU_TAR.bin);
    results.push(tarVersion ? { name: 'tar', ok: true, detail: tarVersion } : { name: 'tar', ok: false, detail: 'tar not found', hint: GNU_TAR.install });
    const rsync = await toolVersion('rsync');
    results.push(
      rsync
        ? { name: 'rsync', ok: true, detail: rsync }
        : { name: 'rsync', ok: false, detail: 'rsync not found', hint: RSYNC.install },
    );
    if (this.remote) {
      try {
        await runTool(RSYNC, [...this.rshArgs(), '--list-only', '--', withSlash(this.options.source)], { target: this.target, step: 'check' });
        results.push({ name: 'source', ok: true, detail: `${this.options.source} reachable` });
      } catch (e) {
        results.push({ name: 'source', ok: false, detail: (e as BkError).describe?.() ?? String(e), hint: 'check the host, the path and the ssh key (rsh)' });
      }
    } else {
      const s = await stat(this.options.source).catch(() => undefined);
      results.push(
        s?.isDirectory()
          ? { name: 'source', ok: true, detail: `${resolve(this.options.source)} is a directory` }
          : { name: 'source', ok: false, detail: `${this.options.source} is not a directory`, hint: 'set source to an existing directory' },
      );
    }
    return results;
  }

  /** The tree's bytes (`du`, in C: a metadata walk far cheaper than the backup's own). A remote
   *  source is estimated from its mirror, when an earlier run left one. */
  async estimateSize(ctx: BackupContext): Promise<number | undefined> {
    const root = this.remote ? this.mirrorDir : resolve(this.options.source);
    const res = await execa('du', ['-s', '-b', '-x', '.'], { cwd: root, cancelSignal: ctx.signal, reject: false });
    return Number(/^(\d+)/.exec(String(res.stdout))?.[1]) || undefined;
  }

  async backup(ctx: BackupContext): Promise<DumpSession> {
    let root = resolve(this.options.source);
    if (this.remote) {
      root = this.mirrorDir;
      await mkdir(root, { recursive: true, mode: 0o700 });
      ctx.logger.info('mirroring remote source', { target: this.target, step: 'rsync', source: this.options.source });
      // Excludes apply at the mirror too, so excluded data never crosses the network.
      await runTool(
        RSYNC,
        [...this.rshArgs(), '-aH', '--numeric-ids', '--delete', '--delete-excluded', ...this.options.exclude.flatMap((x) => ['--exclude', x]), '--', withSlash(this.options.source), withSlash(root)],
        { target: this.target, step: 'rsync', signal: ctx.signal },
      );
    }
    const s = await stat(root).catch(() => undefined);
    if (!s?.isDirectory()) {
      throw new BkError('SOURCE', `source ${root} is not a directory`, { target: this.target, step: 'dump', hint: 'check the source path in the config' });
    }

    // Asked now, not after the dump, where it would add a process start to every backup's end.
    const tarVersion = toolVersion(GNU_TAR.bin);
    // Reads back the tar as it is produced: counts and content digest for restore drills.
    const tree = new TarTreeTap();
    // The archive names only the first path of a hard-linked inode; the tap keeps the content
    // hash of those few files so their other paths can be counted as the files they restore to.
    // Found while tar runs, not before it.
    tree.learnMultiLinked(multiLinkedFiles(root, ctx.signal));
    const tar = createTar(root, this.options.exclude, ctx.signal);
    const stream = tar.stream.pipe(tree);
    // pipe() does not pass a downstream teardown (a failed storage) upstream: stop tar here.
    tree.on('close', () => tar.stream.destroy());
    const done = (async (): Promise<DumpInfo> => {
      const ended = new Promise<void>((resolveEnd, reject) => {
        tree.once('end', resolveEnd);
        tree.once('error', reject);
        tar.stream.once('error', reject);
      });
      try {
        const [{ warnings }] = await Promise.all([tar.done, ended]);
        for (const w of warnings) ctx.logger.warn(w, { target: this.target, step: 'dump' });
      } catch (e) {
        throw e instanceof BkError ? e.at(this.target, 'dump') : new BkError('SOURCE', `reading the source failed: ${(e as Error).message}`, { target: this.target, step: 'dump', cause: e });
      }
      return {
        tools: [{ name: 'tar', version: (await tarVersion) ?? 'unknown' }],
        // Absolute, so a restore without --to from another directory finds the same place.
        contents: [this.remote ? this.options.source : resolve(this.options.source)],
        checks: { ...tree.result() },
      };
    })();
    done.catch(() => undefined);
    return { stream, done };
  }

  /** Extracted into a staging directory that is moved into place only after the stream's verified end. */
  restoreIsAtomic(): boolean {
    return true;
  }

  async restore(stream: Readable, ctx: RestoreContext): Promise<void> {
    const dest = ctx.to ?? this.options.source;
    const remote = isRemotePath(dest);
    const destDir = remote ? undefined : resolve(dest);
    // Staging beside the destination: same filesystem, so the final rsync is a local move of bytes.
    let stagingParent = tmpdir();
    if (destDir) {
      stagingParent = dirname(destDir);
      await mkdir(stagingParent, { recursive: true });
    }
    const staging = await makeOwnedDir(stagingParent, `.bk-restore-${basename(destDir ?? 'remote')}`, (dir) =>
      ctx.logger.warn('removed the staging directory of an interrupted restore', { step: 'extract', dir }),
    );
    try {
      ctx.logger.info('extracting into staging directory', { step: 'extract', staging });
      try {
        await extractTar(stream, staging, ctx.signal);
      } catch (e) {
        throw e instanceof BkError ? e.at(this.target, 'extract') : e;
      }
      const target = remote ? dest : destDir!;
      // An absent or empty destination takes the staging directory by rename: atomic, and no
      // second copy of the bytes. Anything else is brought to the archive's state by rsync, which
      // keeps the directory itself (a mount point, a bind mount, an open cwd) in place.
      if (destDir && (await isAbsentOrEmpty(destDir))) {
        ctx.logger.info('moving into place', { step: 'rename', to: target });
        await rmdirIfEmpty(destDir);
        await rename(staging, destDir);
        return;
      }
      if (destDir) await mkdir(destDir, { recursive: true });
      ctx.logger.info('moving into place', { step: 'rsync', to: target });
      await runTool(RSYNC, [...this.rshArgs(), '-aH', '--numeric-ids', '--delete', '--', withSlash(staging), withSlash(target)], {
        target: this.target,
        step: 'restore',
        signal: ctx.signal,
      });
    } finally {
      await removeTree(staging);
    }
  }

  /**
   * A drill restores into a fresh directory under the system temp dir and compares its counts and
   * tree digest with the manifest's; dispose removes the whole temp dir (staging included).
   */
  async prepareDrill(): Promise<RestoreDrill> {
    const base = await makeOwnedDir(tmpdir(), 'bk-drill');
    const to = join(base, 'restored');
    return {
      to,
      inspect: async () => ({ ...(await summarizeDirectory(to)) }),
      dispose: () => rm(base, { recursive: true, force: true, maxRetries: 3 }),
    };
  }

  describeRestoreTarget(to?: string): string {
    return `directory ${to ?? this.options.source} (replaced: files not in the backup are deleted)`;
  }

  manualRestoreCommand(to?: string): string {
    const dest = to ?? this.options.source;
    if (isRemotePath(dest)) return `(mkdir /tmp/restore && tar -xpf - -C /tmp/restore) && rsync -aH --delete /tmp/restore/ ${shellQuote(withSlash(dest))}`;
    // In a subshell, so the whole command reads the pipe it is appended to (`zstd -dc … | (…)`).
    return `(mkdir -p ${shellQuote(dest)} && tar -xpf - -C ${shellQuote(dest)})`;
  }

  private rshArgs(): string[] {
    return this.options.rsh ? ['-e', this.options.rsh] : [];
  }
}

/** rm -rf that also works as non-root when the archive held read-only directories (0555). */
async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch {
    const open = async (d: string): Promise<void> => {
      await chmod(d, 0o700).catch(() => undefined);
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await open(join(d, e.name));
    };
    await open(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

function withSlash(p: string): string {
  return p.endsWith('/') ? p : `${p}/`;
}

/** Paths (relative, as tar names them) of regular files with more than one link. */
async function multiLinkedFiles(root: string, signal: AbortSignal): Promise<string[]> {
  const res = await execa('find', ['.', '-xdev', '-type', 'f', '-links', '+1', '-print0'], { cwd: root, cancelSignal: signal, reject: false, stripFinalNewline: false });
  return String(res.stdout).split('\0').filter(Boolean);
}

async function isAbsentOrEmpty(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

async function rmdirIfEmpty(dir: string): Promise<void> {
  await rmdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}
