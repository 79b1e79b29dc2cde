import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { BkError } from '../../src/errors.js';

const ok = {
  storages: { local: { type: 'local', path: '/var/backups/bk' } },
  targets: { app: { driver: 'files', source: '/srv/app' } },
};

function configError(raw: unknown): BkError {
  try {
    resolveConfig(raw, 'backup.config.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(BkError);
    expect((e as BkError).code).toBe('CONFIG');
    expect((e as BkError).exitCode).toBe(2);
    return e as BkError;
  }
  throw new Error('expected the config to be refused');
}

describe('resolveConfig', () => {
  it('resolves a valid config with defaults applied', () => {
    const c = resolveConfig({ ...ok, defaults: { compression: 'gzip', timezone: 'Europe/Berlin', tags: ['prod'] } }, 'f.yaml');
    expect(c.path).toBe('f.yaml');
    expect(c.timezone).toBe('Europe/Berlin');
    expect(c.storages.local).toEqual({ name: 'local', type: 'local', options: { type: 'local', path: '/var/backups/bk' } });
    expect(c.targets.app).toMatchObject({
      name: 'app',
      driver: 'files',
      options: { driver: 'files', source: '/srv/app', exclude: [] },
      compression: 'gzip',
      storages: ['local'],
      tags: ['prod'],
      timezone: 'Europe/Berlin',
    });
  });

  it('lets a target override defaults', () => {
    const c = resolveConfig({ ...ok, defaults: { compression: 'gzip' }, targets: { app: { driver: 'files', source: '/s', compression: 'none', storages: ['local'] } } });
    expect(c.targets.app!.compression).toBe('none');
  });

  // Each row: a broken config, and what the message must contain (the key path and the problem).
  it.each<[string, unknown, string[]]>([
    ['unknown top-level key', { ...ok, extra: 1 }, ['(root)', 'unknown key extra']],
    ['unknown key in a target', { ...ok, targets: { app: { driver: 'files', source: '/s', sorce: '/x' } } }, ['targets.app', 'unknown key sorce']],
    ['unknown key in defaults', { ...ok, defaults: { compresion: 'zstd' } }, ['defaults', 'compresion']],
    ['unknown key in a storage', { ...ok, storages: { local: { type: 'local', path: '/b', pth: 1 } } }, ['storages.local', 'unknown key pth']],
    ['wrong type of a driver option', { ...ok, targets: { app: { driver: 'files', source: 42 } } }, ['targets.app.source']],
    ['wrong type of exclude', { ...ok, targets: { app: { driver: 'files', source: '/s', exclude: '*.log' } } }, ['targets.app.exclude']],
    ['wrong type of a common key', { ...ok, targets: { app: { driver: 'files', source: '/s', tags: 'x' } } }, ['targets.app.tags']],
    ['bad compression', { ...ok, targets: { app: { driver: 'files', source: '/s', compression: 'lz4' } } }, ['targets.app.compression']],
    ['compression level out of range', { ...ok, defaults: { compression_level: 40 } }, ['defaults.compression_level']],
    ['bad time zone', { ...ok, defaults: { timezone: 'Mars/Olympus' } }, ['defaults.timezone', 'time zone']],
    ['missing required option', { ...ok, targets: { app: { driver: 'files' } } }, ['targets.app.source: missing']],
    ['unknown driver', { ...ok, targets: { app: { driver: 'oracle', source: '/s' } } }, ['targets.app.driver', 'unknown driver "oracle"']],
    ['missing driver', { ...ok, targets: { app: { source: '/s' } } }, ['targets.app.driver: missing']],
    ['unknown storage type', { ...ok, storages: { far: { type: 'ftp' } } }, ['storages.far.type', 'unknown storage type "ftp"']],
    ['unknown storage reference', { ...ok, targets: { app: { driver: 'files', source: '/s', storages: ['local', 'offsite'] } } }, ['targets.app.storages[1]', 'no storage named "offsite"']],
    ['unknown storage in defaults', { ...ok, defaults: { storages: ['nope'] } }, ['defaults.storages', 'no storage named "nope"']],
    ['target name with ..', { ...ok, targets: { '../x': { driver: 'files', source: '/s' } } }, ['targets.../x']],
    ['target name with a slash', { ...ok, targets: { 'a/b': { driver: 'files', source: '/s' } } }, ['targets.a/b']],
    ['target name starting with a dot', { ...ok, targets: { '.hidden': { driver: 'files', source: '/s' } } }, ['targets..hidden']],
    ['storage name with a space', { ...ok, storages: { 'my disk': { type: 'local', path: '/b' } } }, ['storages.my disk']],
    ['no targets at all', { storages: ok.storages }, ['targets']],
    ['targets is a list', { ...ok, targets: [{ driver: 'files' }] }, ['targets']],
    ['unsupported version', { ...ok, version: 2 }, ['version']],
  ])('%s', (_name, raw, expected) => {
    const e = configError(raw);
    expect(e.message.startsWith('backup.config.yaml: ')).toBe(true);
    for (const text of expected) expect(e.message).toContain(text);
  });

  it('names every problem: a misspelt key is both unknown and missing', () => {
    const e = configError({ ...ok, targets: { app: { driver: 'files', sorce: '/s' } } });
    expect(e.message).toContain('targets.app.source: missing (expected string)');
    expect(e.message).toContain('targets.app: unknown key sorce');
  });

  it('says the name rule for a bad target name', () => {
    const e = configError({ ...ok, targets: { '../x': { driver: 'files', source: '/s' } } });
    expect(e.message).toMatch(/letters, digits/);
  });

  it('lists the known drivers and storages in the hint', () => {
    expect(configError({ ...ok, targets: { app: { driver: 'oracle' } } }).hint).toContain('files');
    expect(configError({ ...ok, targets: { app: { driver: 'files', source: '/s', storages: ['x'] } } }).hint).toContain('local');
  });
});
