/**
 * The storages bk knows, listed explicitly. Each entry has its config schema, a factory, and the
 * `--repo` forms it accepts.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { BkError } from '../errors.js';
import type { Logger } from '../log.js';
import { LocalStorage } from './local.js';
import { lazyStorage } from './lazy.js';
import { s3Location, s3ManualReadCommand, s3OptionsFromRepo, s3OptionsSchema, s3Url } from './s3-config.js';
import type { Storage } from './storage.js';

/** What a storage may need from its surroundings (credentials in env, a logger for debug lines). */
export interface StorageDeps {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

export interface StorageEntry {
  schema: z.ZodObject;
  create(name: string, options: Record<string, unknown>, deps?: StorageDeps): Storage;
  /** Storage options for a `--repo` value this type claims, or undefined. */
  fromRepo?(repo: string, env: NodeJS.ProcessEnv): Record<string, unknown> | undefined;
  /** Options with relative paths made absolute against the config file's directory. */
  resolvePaths?(options: Record<string, unknown>, baseDir: string): Record<string, unknown>;
}

export const localOptionsSchema = z.object({
  type: z.literal('local'),
  /** Directory holding `<target>/<id>.*` objects. */
  path: z.string().min(1),
});

export const storages: Record<string, StorageEntry> = {
  local: {
    schema: localOptionsSchema,
    create: (name, options) => new LocalStorage(name, localOptionsSchema.parse(options).path),
    fromRepo: (repo) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) ? undefined : { type: 'local', path: resolve(repo) }),
    resolvePaths: (options, baseDir) => ({ ...options, path: resolve(baseDir, String(options.path)) }),
  },
  s3: {
    schema: s3OptionsSchema,
    create: (name, options, deps = {}) => {
      // Configured storages were validated with the config; this catches a bad `--repo s3://…`.
      const parsed = s3OptionsSchema.safeParse(options);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new BkError('USAGE', `storage ${name}: ${[...issue.path.map(String), issue.message].join(': ')}`, { hint: 'check --repo s3://bucket/prefix and BK_S3_* / AWS_* variables' });
      }
      const s3 = parsed.data;
      return lazyStorage(
        { name, location: s3Location(s3), describeObject: (key) => s3Url(s3, key), manualReadCommand: (key) => s3ManualReadCommand(s3, key) },
        async () => new (await import('./s3.js')).S3Storage(name, s3, { env: deps.env ?? process.env, logger: deps.logger }),
      );
    },
    fromRepo: s3OptionsFromRepo,
  },
};

/** Storage options for a `--repo` value: the first type that claims it. */
export function storageOptionsFromRepo(repo: string, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> | undefined {
  for (const entry of Object.values(storages)) {
    const options = entry.fromRepo?.(repo, env);
    if (options) return options;
  }
  return undefined;
}
