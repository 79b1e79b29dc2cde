/** Finding backups of a target across the storages a context reads from. */
import { listBackups, type CatalogProblem } from '../catalog/catalog.js';
import type { StoredBackup } from '../catalog/manifest.js';
import { resolveAt, type Selector } from '../catalog/select.js';
import { NAME } from '../config/schema.js';
import { BkError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { mapLimit } from '../util/concurrency.js';
import type { Context } from './context.js';

export interface TargetBackups {
  target: string;
  backups: StoredBackup[];
}

/**
 * Target names from the command line become storage prefixes: anything a config could not name
 * (`../x`, `a/b`, a newline) is a usage error before any storage is touched.
 */
export function assertTargetNames(names: readonly string[]): void {
  for (const n of names) {
    if (!NAME.test(n)) {
      throw new BkError('USAGE', `${JSON.stringify(n)} is not a target name`, { hint: 'target names use letters, digits, ".", "_" and "-" (bk list shows the targets)' });
    }
  }
}

/**
 * Backups per target; when `targets` is empty, every target found in the storages. Manifests that
 * cannot be trusted are logged and, when `problems` is given, handed over (verify reports them).
 */
export async function findBackups(ctx: Context, storages: Storage[], targets: string[], problems?: CatalogProblem[]): Promise<TargetBackups[]> {
  assertTargetNames(targets);
  const catalogs = await mapLimit(storages, 4, (s) => (targets.length === 1 ? listBackups(s, targets[0]) : listBackups(s)));
  for (const p of catalogs.flatMap((c) => c.problems)) {
    ctx.logger.warn(`ignoring ${p.key}: ${p.error}`, { storage: p.storage });
    if (targets.length === 0 || targets.includes(p.key.slice(0, p.key.indexOf('/')))) problems?.push(p);
  }
  const all = catalogs.flatMap((c) => c.backups);
  const names = targets.length > 0 ? targets : [...new Set(all.map((b) => b.manifest.target))].sort();
  return names.map((target) => ({ target, backups: all.filter((b) => b.manifest.target === target) }));
}

export interface SelectorFlags {
  at?: string;
  id?: string;
  latest?: boolean;
}

export function selectorFrom(ctx: Context, flags: SelectorFlags, timezone: string): { selector: Selector; explanation?: string } {
  const given = [flags.at !== undefined, flags.id !== undefined, flags.latest === true].filter(Boolean).length;
  if (given > 1) throw new BkError('USAGE', 'use only one of --at, --id and --latest');
  if (flags.id !== undefined) return { selector: { kind: 'id', id: flags.id } };
  if (flags.at !== undefined) {
    const r = resolveAt(flags.at, timezone, ctx.clock());
    return { selector: { kind: 'at', at: r.instant }, explanation: r.explanation };
  }
  return { selector: { kind: 'latest' } };
}
