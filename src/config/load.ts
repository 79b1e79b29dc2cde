/**
 * Finding and reading the config: `--config`, then `BK_CONFIG`, then the usual places the way
 * cosmiconfig searches (backup.config.yaml and friends, from the working directory up), then
 * /etc/bk/backup.config.yaml. YAML is parsed with `yaml` so errors carry line numbers.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';
import { interpolate } from './interpolate.js';
import { resolveConfig, type ResolvedConfig } from './resolve.js';

export const CONFIG_NAMES = ['backup.config.yaml', 'backup.config.yml', '.backuprc.yaml', '.backuprc.yml', '.backuprc.json', 'backup.config.json'];
export const SYSTEM_CONFIG = '/etc/bk/backup.config.yaml';

/** The config file to use, or undefined when there is none (ad-hoc use). */
export async function findConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd = process.cwd()): Promise<string | undefined> {
  const given = explicit ?? env.BK_CONFIG;
  if (given) {
    const path = resolve(cwd, given);
    if (!existsSync(path)) {
      throw new BkError('CONFIG', `config file ${path} does not exist`, {
        step: 'config',
        hint: explicit ? 'check --config' : 'check BK_CONFIG',
      });
    }
    return path;
  }
  // Only the location is wanted here; parsing is ours (below), so line numbers and
  // interpolation behave the same for every path. A loader returning undefined marks the file
  // "empty", which with ignoreEmptySearchPlaces: false still ends the search there (returning
  // null, as before, made cosmiconfig skip every file and never find one).
  // Imported here: a run given its config (--config, BK_CONFIG) does not load it (10 ms). Through
  // `default` (module.exports), which a CommonJS package has both bundled and not.
  const { cosmiconfig } = (await import('cosmiconfig')).default;
  const locate = () => undefined;
  const explorer = cosmiconfig('backup', {
    searchPlaces: CONFIG_NAMES,
    searchStrategy: 'global',
    ignoreEmptySearchPlaces: false,
    loaders: { '.yaml': locate, '.yml': locate, '.json': locate, noExt: locate },
  });
  const found = await explorer.search(cwd).catch(() => null);
  if (found?.filepath) return found.filepath;
  return existsSync(SYSTEM_CONFIG) ? SYSTEM_CONFIG : undefined;
}

export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv, logger?: Logger): Promise<ResolvedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new BkError('CONFIG', `cannot read config ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { step: 'config' });
  }
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new BkError('CONFIG', `${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}${where}: ${(e as Error).message.split('\n')[0]}`, {
      step: 'config',
    });
  }
  const config = resolveConfig(interpolate(raw ?? {}, env), path);
  warnIfReadableByOthers(path, text, logger);
  return config;
}

/** Secrets written into a file that others can read are not secret; say so (but keep going). */
function warnIfReadableByOthers(path: string, text: string, logger?: Logger): void {
  try {
    const mode = statSync(path).mode;
    const holdsSecret = /^\s*(password|passphrase|secret_access_key|session_token|token|smtp_password)\s*:\s*[^\s$]/m.test(text);
    if (holdsSecret && (mode & 0o044) !== 0) {
      logger?.warn(`config ${path} holds secrets and is readable by other users; run: chmod 600 ${path}`, { step: 'config' });
    }
  } catch {
    /* stat failures were reported by the read above */
  }
}
