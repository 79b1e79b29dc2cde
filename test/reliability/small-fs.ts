/**
 * A tmpfs the test mounts (root only) whose size can be cut to what is in use at any moment: the
 * next write then fails with ENOSPC, like a destination disk filling up mid-backup. Where mounting
 * is not allowed the directory is a plain one and `canFill` is false (disk-full cases skip).
 */
import { mkdir, statfs } from 'node:fs/promises';
import { execa } from 'execa';

export interface SmallFs {
  readonly dir: string;
  readonly canFill: boolean;
  /** Shrinks the filesystem to what is used now plus `slackBytes`: the next writes hit ENOSPC. */
  fill(slackBytes?: number): Promise<boolean>;
  /** Gives the space back (the operator freed the disk). */
  relieve(): Promise<void>;
  unmount(): Promise<void>;
}

const ROOMY = 4 * 2 ** 30;

async function usedBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

export async function mountSmallFs(dir: string): Promise<SmallFs> {
  await mkdir(dir, { recursive: true });
  const m = await execa('mount', ['-t', 'tmpfs', '-o', `size=${ROOMY},mode=0700`, 'tmpfs', dir], { reject: false });
  const mounted = m.exitCode === 0;
  const remount = (bytes: number) => execa('mount', ['-o', `remount,size=${Math.ceil(bytes / 4096) * 4}k`, dir], { reject: false });
  return {
    dir,
    canFill: mounted,
    async fill(slack = 4096) {
      if (!mounted) return false;
      // The size cannot go below what is in use, and a running write keeps adding: retry a few times.
      for (let i = 0; i < 20; i++) {
        if ((await remount((await usedBytes(dir)) + slack + i * (64 << 10))).exitCode === 0) return true;
      }
      return false;
    },
    async relieve() {
      if (mounted) await remount(ROOMY);
    },
    async unmount() {
      if (mounted) await execa('umount', ['-l', dir], { reject: false });
    },
  };
}
