/** `bk list [target]`: the backups in every storage, newest last, straight from the listing. */
import { storagesFor, type Context } from '../app/context.js';
import { assertTargetNames } from '../app/find.js';
import { listBackups } from '../catalog/catalog.js';
import type { StoredBackup } from '../catalog/manifest.js';
import { formatBytes } from '../output/format.js';
import { table } from '../output/format.js';
import { render } from '../output/render.js';
import { mapLimit } from '../util/concurrency.js';

export async function listCommand(ctx: Context, target: string | undefined): Promise<number> {
  if (target !== undefined) assertTargetNames([target]);
  const storages = storagesFor(ctx, target ? ctx.config.targets[target] : undefined);
  const catalogs = await mapLimit(storages, 4, (s) => listBackups(s, target));
  const backups: StoredBackup[] = catalogs.flatMap((c) => c.backups);
  backups.sort((a, b) => a.manifest.finishedAt.localeCompare(b.manifest.finishedAt) || a.storage.localeCompare(b.storage));
  const problems = catalogs.flatMap((c) => c.problems);
  for (const p of problems) ctx.logger.warn(`ignoring ${p.key}: ${p.error}`, { storage: p.storage });
  render(
    ctx,
    'list',
    {
      backups: backups.map(({ manifest: m, storage }) => ({
        id: m.id,
        target: m.target,
        driver: m.driver,
        startedAt: m.startedAt,
        finishedAt: m.finishedAt,
        rawBytes: m.raw.bytes,
        storedBytes: m.stored.bytes,
        sha256: m.stored.sha256,
        compression: m.compression,
        encrypted: m.encryption !== null,
        tags: m.tags,
        storage,
      })),
      problems,
    },
    () =>
      backups.length === 0
        ? `no backups${target ? ` of ${target}` : ''} in ${storages.map((s) => s.location).join(', ')}`
        : table([
            ['TARGET', 'ID', 'FINISHED', 'SIZE', 'STORED', 'STORAGE'],
            ...backups.map(({ manifest: m, storage }) => [
              m.target,
              m.id,
              m.finishedAt.replace(/\.\d{3}Z$/, 'Z'),
              formatBytes(m.raw.bytes),
              formatBytes(m.stored.bytes),
              storage,
            ]),
          ]),
  );
  return 0;
}
