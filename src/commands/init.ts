/** `bk init [path]`: writes a small commented starter config (never over an existing file). */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BkError, ExitCode } from '../errors.js';
import { render } from '../output/render.js';
import type { Output } from '../output/render.js';

const STARTER = `# bk starter config. Every option, with comments: backup.config.example.yaml in bk's package.
# Check it with: bk config check      Back up with: bk backup      See what exists: bk list

defaults:
  compression: zstd        # zstd (default), gzip or none
  # timezone: Europe/Berlin   # zone for --at dates; default: the system's

storages:
  local:
    type: local
    path: ./backups        # created 0700; archives and manifests are 0600

targets:
  # A directory. Also "user@host:/path" (pulled with rsync over ssh).
  app-files:
    driver: files
    source: ./
    exclude: [node_modules, "*.log", backups]

  # Secrets never go on a command line: use \${VAR} or password_file.
  # app-db:
  #   driver: postgres
  #   database: app
  #   password: \${PGPASSWORD}
`;

export async function initCommand(out: Output, path: string | undefined, force: boolean): Promise<number> {
  const file = resolve(path ?? 'backup.config.yaml');
  try {
    await writeFile(file, STARTER, { flag: force ? 'w' : 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new BkError('USAGE', `${file} already exists`, { step: 'init', hint: 'edit it, or pass --force to replace it' });
    }
    throw new BkError('FAILED', `cannot write ${file}: ${(e as Error).message}`, { step: 'init' });
  }
  render(out, 'init', { path: file }, () => `wrote ${file}; next: bk config check`);
  return ExitCode.ok;
}
