import { execa } from 'execa';

/** Unprivileged OS account that postgres runs as when the tests run as root. */
export const PG_OS_USER = 'bkpgtest';

export interface OsUser {
  uid: number;
  gid: number;
}

async function lookup(name: string): Promise<OsUser | undefined> {
  const uid = await execa('id', ['-u', name], { reject: false });
  const gid = await execa('id', ['-g', name], { reject: false });
  if (uid.exitCode !== 0 || gid.exitCode !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

let cached: Promise<OsUser> | undefined;

/**
 * postgres and initdb refuse to run as root. When we are root, return (creating it on first use)
 * a system user to run them as; returns undefined when we are not root.
 */
export async function postgresOsUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  cached ??= (async () => {
    const existing = await lookup(PG_OS_USER);
    if (existing) return existing;
    const r = await execa(
      'useradd',
      ['--system', '--no-create-home', '--user-group', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', PG_OS_USER],
      { reject: false },
    );
    // Another vitest worker may have created it concurrently: re-check rather than trust the exit code.
    const created = await lookup(PG_OS_USER);
    if (!created) throw new Error(`test harness: could not create OS user ${PG_OS_USER}: ${r.stderr}`);
    return created;
  })();
  return cached;
}
