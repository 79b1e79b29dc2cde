/**
 * `bk config check`: the config parsed and validated (that happened when the context was made),
 * then every target's and storage's preflight run. Exit 2 when anything fails.
 */
import { configuredTargets, createStorage, driverFor, storageConfigsFor, type Context } from '../app/context.js';
import { encryptionChecks } from '../app/decryption.js';
import type { CheckResult } from '../drivers/driver.js';
import { ExitCode } from '../errors.js';
import { render } from '../output/render.js';

interface Finding extends CheckResult {
  subject: string;
}

export async function configCheckCommand(ctx: Context): Promise<number> {
  const findings: Finding[] = [];
  findings.push({ subject: 'config', name: 'file', ok: true, detail: ctx.config.path ?? 'no config file (ad-hoc use)' });
  for (const cfg of storageConfigsFor(ctx)) {
    const storage = createStorage(cfg, ctx);
    try {
      await storage.check();
      findings.push({ subject: `storage ${cfg.name}`, name: 'write', ok: true, detail: `${storage.location} is writable` });
    } catch (e) {
      const hint = (e as { hint?: unknown }).hint;
      findings.push({ subject: `storage ${cfg.name}`, name: 'write', ok: false, detail: (e as Error).message, ...(typeof hint === 'string' ? { hint } : {}) });
    }
  }
  for (const name of configuredTargets(ctx)) {
    try {
      for (const r of await driverFor(ctx.config.targets[name]!).check()) findings.push({ subject: `target ${name}`, ...r });
      for (const r of await encryptionChecks(ctx, ctx.config.targets[name]!)) findings.push({ subject: `target ${name}`, ...r });
    } catch (e) {
      findings.push({ subject: `target ${name}`, name: 'check', ok: false, detail: (e as Error).message });
    }
  }
  const ok = findings.every((f) => f.ok);
  render(ctx, 'config check', { ok, findings }, () =>
    [...findings.map((f) => `${f.ok ? 'ok  ' : 'FAIL'} ${f.subject}: ${f.name}: ${f.detail}${f.hint ? ` (fix: ${f.hint})` : ''}`), ok ? 'config ok' : 'config has problems'].join('\n'),
  );
  return ok ? ExitCode.ok : ExitCode.usage;
}
