import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findConfigFile, loadConfigFile } from '../../src/config/load.js';
import { BkError } from '../../src/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-load-'));
});

const CONFIG = 'targets:\n  app:\n    driver: files\n    source: /srv/app\n';

describe('findConfigFile', () => {
  it.each(['backup.config.yaml', 'backup.config.yml', '.backuprc.yaml', '.backuprc.yml', '.backuprc.json', 'backup.config.json'])('finds %s in the working directory', async (name) => {
    const here = await mkdtemp(join(dir, 'cwd-'));
    await writeFile(join(here, name), name.endsWith('.json') ? '{"targets": {}}' : CONFIG);
    expect(await findConfigFile(undefined, {}, here)).toBe(join(here, name));
  });

  it('finds the config in a parent directory', async () => {
    const top = await mkdtemp(join(dir, 'tree-'));
    await writeFile(join(top, 'backup.config.yaml'), CONFIG);
    await mkdir(join(top, 'a', 'b'), { recursive: true });
    expect(await findConfigFile(undefined, {}, join(top, 'a', 'b'))).toBe(join(top, 'backup.config.yaml'));
  });

  it('prefers backup.config.yaml to later names in the same directory', async () => {
    const here = await mkdtemp(join(dir, 'both-'));
    await writeFile(join(here, '.backuprc.yaml'), CONFIG);
    await writeFile(join(here, 'backup.config.yaml'), CONFIG);
    expect(await findConfigFile(undefined, {}, here)).toBe(join(here, 'backup.config.yaml'));
  });

  it('finds an empty config file too (it is still the config)', async () => {
    const here = await mkdtemp(join(dir, 'empty-'));
    await writeFile(join(here, 'backup.config.yaml'), '');
    expect(await findConfigFile(undefined, {}, here)).toBe(join(here, 'backup.config.yaml'));
  });

  it('--config wins over BK_CONFIG, which wins over the search; both resolve from cwd', async () => {
    const here = await mkdtemp(join(dir, 'explicit-'));
    await writeFile(join(here, 'backup.config.yaml'), CONFIG);
    await writeFile(join(here, 'a.yaml'), CONFIG);
    await writeFile(join(here, 'b.yaml'), CONFIG);
    expect(await findConfigFile('a.yaml', { BK_CONFIG: 'b.yaml' }, here)).toBe(join(here, 'a.yaml'));
    expect(await findConfigFile(undefined, { BK_CONFIG: 'b.yaml' }, here)).toBe(join(here, 'b.yaml'));
  });

  it('a missing --config or BK_CONFIG file is a config error naming it', async () => {
    await expect(findConfigFile('nope.yaml', {}, dir)).rejects.toThrow(/nope\.yaml does not exist/);
    const e = await findConfigFile(undefined, { BK_CONFIG: '/no/such.yaml' }, dir).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BkError);
    expect((e as BkError).code).toBe('CONFIG');
    expect((e as BkError).hint).toContain('BK_CONFIG');
  });
});

describe('loadConfigFile', () => {
  it('interpolates and validates', async () => {
    const file = join(dir, 'interp.yaml');
    await writeFile(file, 'targets:\n  app:\n    driver: files\n    source: ${APP_DIR:-/srv/default}\n');
    expect((await loadConfigFile(file, {})).targets.app!.options.source).toBe('/srv/default');
    expect((await loadConfigFile(file, { APP_DIR: '/data' })).targets.app!.options.source).toBe('/data');
  });

  it('reports YAML errors with a line number', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'targets:\n  app:\n    driver: files\n   source: /x\n');
    await expect(loadConfigFile(file, {})).rejects.toThrow(/broken\.yaml: not valid YAML at line \d+/);
  });

  it('an empty file is a config without targets: an error naming targets', async () => {
    const file = join(dir, 'empty.yaml');
    await writeFile(file, '');
    await expect(loadConfigFile(file, {})).rejects.toThrow(/targets: missing/);
  });
});
