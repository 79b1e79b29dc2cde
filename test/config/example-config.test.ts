// backup.config.example.yaml documents every option; it must stay valid YAML, and the parts this
// foundation owns (local storage, files targets) must pass validation. Other blocks are filled in
// by their own issues, so only what is stable is asserted.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';

const EXAMPLE = fileURLToPath(new URL('../../backup.config.example.yaml', import.meta.url));

type Block = Record<string, Record<string, unknown>>;

describe('backup.config.example.yaml', () => {
  it('is valid YAML with version 1, storages and targets', async () => {
    const doc = parse(await readFile(EXAMPLE, 'utf8')) as { version: number; storages: Block; targets: Block };
    expect(doc.version).toBe(1);
    expect(doc.storages.local).toMatchObject({ type: 'local' });
    expect(doc.targets['app-files']).toMatchObject({ driver: 'files' });
  });

  it('its local storages and files targets pass validation', async () => {
    const doc = parse(await readFile(EXAMPLE, 'utf8')) as { storages: Block; targets: Block };
    const storages = Object.fromEntries(Object.entries(doc.storages).filter(([, s]) => s.type === 'local'));
    const targets = Object.fromEntries(
      Object.entries(doc.targets)
        .filter(([, t]) => t.driver === 'files')
        // A target may name storages documented by other blocks; keep the ones checked here.
        .map(([name, t]) => [name, { ...t, storages: undefined }]),
    );
    const config = resolveConfig({ storages, targets }, EXAMPLE);
    expect(Object.keys(config.targets)).toContain('app-files');
    expect(config.targets['app-files']!.options).toMatchObject({ driver: 'files', exclude: ['*.tmp', 'cache/'] });
  });
});
