/**
 * `bk restore [target…] [--at T | --id ID] [--to DEST] [--yes] [--dry-run]`
 *
 * Plans first — resolved instant, target → chosen backup → destination — and touches nothing
 * until every target has a backup to restore. No target named means every configured target: the
 * whole system back to one instant.
 */
import { configuredTargets, driverFor, storagesFor, targetFor, type Context } from '../app/context.js';
import { findBackups, selectorFrom, type SelectorFlags } from '../app/find.js';
import type { StoredBackup } from '../catalog/manifest.js';
import { describeSelector, select } from '../catalog/select.js';
import { manualDecompress } from '../codecs/compression.js';
import type { Driver } from '../drivers/driver.js';
import type { AdHocFlags } from '../drivers/registry.js';
import { missingKey, runRestore, type DecryptionStage } from '../engine/restore.js';
import { decryptionFor } from '../app/decryption.js';
import { BkError, ExitCode, toBkError } from '../errors.js';
import { confirm } from '../output/confirm.js';
import { formatBytes } from '../output/format.js';
import { render } from '../output/render.js';
import type { Storage } from '../storage/storage.js';
import { acquireHostLock, hostLockDir } from '../locks/host-lock.js';

export interface RestoreFlags extends SelectorFlags, AdHocFlags {
  to?: string;
  yes?: boolean;
  dryRun?: boolean;
  storage?: string;
  /** postgres: parallel restore jobs. */
  jobs?: string;
  /** redis: live (default) or file. */
  mode?: string;
  /** age identity file for encrypted backups (else BK_AGE_IDENTITY or encryption.identity_file). */
  identity?: string;
}

interface PlanStep {
  target: string;
  backup: StoredBackup;
  storage: Storage;
  driver: Driver;
  decryption?: DecryptionStage;
  destination: string;
  manual: string;
}

export async function restoreCommand(ctx: Context, names: string[], flags: RestoreFlags): Promise<number> {
  if (flags.to !== undefined && names.length !== 1) {
    throw new BkError('USAGE', '--to needs exactly one target', { hint: 'bk restore <target> --to <destination>' });
  }
  const { selector, explanation } = selectorFrom(ctx, flags, ctx.config.timezone);
  const wanted = names.length > 0 ? names : configuredTargets(ctx);
  const storages = filterStorages(storagesFor(ctx, wanted.length === 1 ? ctx.config.targets[wanted[0]!] : undefined), flags.storage);
  const found = await findBackups(ctx, storages, wanted);
  if (found.length === 0) throw new BkError('NOT_FOUND', `no backups in ${storages.map((s) => s.location).join(', ')}`);

  const plan: PlanStep[] = [];
  const missing: string[] = [];
  for (const { target, backups } of found) {
    const sel = select(backups, selector);
    if (!sel.ok) {
      missing.push(`${target}: ${sel.reason}`);
      continue;
    }
    const backup = sel.backup;
    const storage = storages.find((s) => s.name === backup.storage)!;
    const cfg = targetFor(ctx, target, { ...flags, source: flags.source ?? backup.manifest.contents?.[0] });
    if (cfg.driver !== backup.manifest.driver) {
      throw new BkError('USAGE', `backup ${backup.manifest.id} was made by driver ${backup.manifest.driver}, target ${target} uses ${cfg.driver}`, { target });
    }
    const driver = driverFor(cfg);
    const m = backup.manifest;
    // Object stores are read with their own tool into the pipeline; files are opened directly.
    const fetch = storage.manualReadCommand?.(m.archive);
    const input = fetch ? '-' : storage.describeObject(m.archive);
    const decryption = m.encryption ? decryptionFor(ctx, cfg, flags.identity) : undefined;
    plan.push({
      target,
      backup,
      storage,
      driver,
      ...(decryption ? { decryption } : {}),
      destination: driver.describeRestoreTarget(flags.to, restoreOptions(flags)),
      manual: `${fetch ? `${fetch} | ` : ''}${m.encryption ? `age -d ${m.encryption.passphrase ? '' : '-i key.txt '}${input} | ${manualDecompress(m.compression, '-')}` : manualDecompress(m.compression, input)} | ${driver.manualRestoreCommand(flags.to, restoreOptions(flags), { tools: m.tools, serverVersion: m.serverVersion, contents: m.contents, checks: m.checks, extra: m.extra })}`,
    });
  }
  if (missing.length > 0) {
    throw new BkError('NOT_FOUND', `nothing restored: ${missing.join('; ')}`, {
      step: 'plan',
      hint: 'pick another --at or --id (bk list shows what exists)',
    });
  }

  const header = explanation ? `restore as of ${explanation}` : `restore ${describeSelector(selector)}`;
  const planText = [
    header,
    ...plan.map(
      (p) =>
        `  ${p.target}: ${p.backup.manifest.id} (finished ${p.backup.manifest.finishedAt}, ${formatBytes(p.backup.manifest.raw.bytes)}, from ${p.storage.name}) → ${p.destination}`,
    ),
  ].join('\n');
  const planJson = plan.map((p) => ({
    target: p.target,
    id: p.backup.manifest.id,
    finishedAt: p.backup.manifest.finishedAt,
    storage: p.storage.name,
    destination: p.destination,
    manual: p.manual,
  }));

  if (flags.dryRun) {
    render(ctx, 'restore', { dryRun: true, at: selector.kind === 'at' ? selector.at.toISOString() : null, plan: planJson }, () =>
      [planText, '', 'by hand (after checking sha256sum against the manifest):', ...plan.map((p) => `  ${p.manual}`)].join('\n'),
    );
    return ExitCode.ok;
  }
  if (!ctx.json) process.stderr.write(`${planText}\n`);
  // Every key is checked against its archive's header before any target is touched, so a wrong
  // key for the last target does not leave the first ones restored and the rest not.
  for (const p of plan) {
    const m = p.backup.manifest;
    if (!m.encryption) continue;
    if (!p.decryption) throw missingKey(m);
    await p.decryption.checkKey(await p.storage.read(m.archive, { signal: ctx.signal }), m);
  }
  if (!flags.yes) {
    if (!ctx.interactive) {
      throw new BkError('USAGE', 'restore overwrites its destination and needs confirmation', {
        step: 'plan',
        hint: 'pass --yes (or --dry-run to see the plan)',
      });
    }
    if (!(await confirm(`Overwrite ${plan.map((p) => p.destination).join(', ')}?`))) {
      throw new BkError('REFUSED', 'restore cancelled; nothing was changed', { step: 'plan', exitCode: ExitCode.failed });
    }
  }

  const results: { target: string; id: string; ok: boolean; seconds: number; error?: BkError }[] = [];
  for (const p of plan) {
    if (ctx.signal.aborted) break;
    const started = ctx.clock().getTime();
    let lock;
    try {
      lock = await acquireHostLock({ dir: hostLockDir(ctx.env), target: p.target, locations: [p.storage.location], command: 'bk restore', logger: ctx.logger });
      await runRestore({
        manifest: p.backup.manifest,
        storage: p.storage,
        driver: p.driver,
        ...(p.decryption ? { decryption: p.decryption } : {}),
        to: flags.to,
        options: restoreOptions(flags),
        logger: ctx.logger,
        signal: ctx.signal,
      });
      results.push({ target: p.target, id: p.backup.manifest.id, ok: true, seconds: (ctx.clock().getTime() - started) / 1000 });
    } catch (e) {
      const error = toBkError(e, p.target, 'restore');
      ctx.logger.error(error.describe(), { target: p.target });
      results.push({ target: p.target, id: p.backup.manifest.id, ok: false, seconds: (ctx.clock().getTime() - started) / 1000, error });
    } finally {
      await lock?.release();
    }
  }
  render(
    ctx,
    'restore',
    {
      dryRun: false,
      at: selector.kind === 'at' ? selector.at.toISOString() : null,
      plan: planJson,
      results: results.map((r) => ({ ...r, error: r.error ? { code: r.error.code, step: r.error.step ?? null, message: r.error.describe() } : null })),
    },
    () => results.map((r) => (r.ok ? `${r.target}: restored ${r.id} in ${r.seconds.toFixed(1)}s` : `${r.target}: restore FAILED: ${withoutTarget(r.error!.describe(), r.target)}`)).join('\n'),
  );
  if (ctx.signal.aborted) return ExitCode.interrupted;
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) return ExitCode.ok;
  if (failed.length === results.length) {
    // Every target failed the same way (e.g. all archives refused: 4): say so; mixed causes are 1.
    const codes = new Set(failed.map((r) => r.error!.exitCode));
    return codes.size === 1 ? [...codes][0]! : ExitCode.failed;
  }
  return ExitCode.partial;
}

/** "app: verify: …" → "verify: …", for lines that already start with the target. */
const withoutTarget = (text: string, target: string): string => (text.startsWith(`${target}: `) ? text.slice(target.length + 2) : text);

/** Driver restore options from the flags (validated by the driver). */
function restoreOptions(flags: RestoreFlags): Record<string, unknown> {
  return { ...(flags.jobs !== undefined ? { jobs: flags.jobs } : {}), ...(flags.mode !== undefined ? { mode: flags.mode } : {}) };
}

export function filterStorages(storages: Storage[], name: string | undefined): Storage[] {
  if (name === undefined) return storages;
  const hit = storages.filter((s) => s.name === name);
  if (hit.length === 0) throw new BkError('USAGE', `no storage named "${name}"`, { hint: `storages: ${storages.map((s) => s.name).join(', ')}` });
  return hit;
}
