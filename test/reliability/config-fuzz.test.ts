/**
 * Property test over generated configs and command lines (a small seeded generator; the seed is
 * printed, BK_FAULT_SEED repeats a run, BK_FUZZ_CASES sets the count):
 *
 * - bk never crashes: no "internal error", no stack trace, no uncaught exception, and an exit
 *   code from DESIGN §5;
 * - a config error exits 2 and names the key path it is about (or the line, for broken YAML).
 *
 * The cases run in one Node process through bk's own main() (fuzz-runner.mjs), against a scratch
 * directory: storages there, S3 and database endpoints on a closed local port.
 */
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cleanEnv, makeTmpDir, rmrf } from '../harness/index.js';
import { rng, seedFromEnv, type Rng } from './seeded.js';

const RUNNER = fileURLToPath(new URL('./fuzz-runner.mjs', import.meta.url));
const seed = seedFromEnv('config and argv fuzz');
const COUNT = Number(process.env.BK_FUZZ_CASES ?? 150);
const CRASH = /internal error|\n\s+at |uncaught:|unhandled rejection:|main threw:/;
const EXIT_CODES = [0, 1, 2, 3, 4, 5];

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
type Path = (string | number)[];

let work: string;
beforeAll(async () => {
  work = await makeTmpDir('bk-fuzz-');
  await mkdir(join(work, 'src'), { recursive: true });
  await writeFile(join(work, 'src', 'a.txt'), 'a\n');
  await writeFile(join(work, 'secret.txt'), 'fuzz-secret-value\n');
});
afterAll(async () => {
  await rmrf(work);
});

/** A valid config using every part of the schema; mutations start from here. */
function baseConfig(dir: string): { [k: string]: Json } {
  return {
    version: 1,
    defaults: {
      compression: 'zstd',
      retention: { keep_last: 3, keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: 'unlimited' },
      schedule: '0 2 * * *',
      timeout: '2h',
      max_age: '26h',
      hooks: { before: [['true']], after: [{ run: ['true'], on: 'always' }] },
    },
    storages: {
      local: { type: 'local', path: join(dir, 'repo') },
      offsite: { type: 's3', bucket: 'fuzz-bucket', prefix: 'p', endpoint: 'http://127.0.0.1:9', access_key_id: 'AKIAFUZZ', secret_access_key: 'fuzz-s3-secret', max_attempts: 1 },
    },
    targets: {
      files: { driver: 'files', source: join(dir, 'src'), exclude: ['*.tmp'], storages: ['local'] },
      pg: { driver: 'postgres', host: '127.0.0.1', port: 9, user: 'bk', password_file: join(dir, 'secret.txt'), database: 'app', storages: ['local'], connect_timeout: 2 },
      my: { driver: 'mysql', host: '127.0.0.1', port: 9, user: 'bk', password: 'fuzz-my-secret', database: 'shop', storages: ['local'] },
      cache: { driver: 'redis', host: '127.0.0.1', port: 9, password: 'fuzz-redis-secret', storages: ['local'] },
    },
    notifications: [{ type: 'webhook', url: 'http://127.0.0.1:9/hook', on: ['failure'] }],
  };
}

const WEIRD: Json[] = [
  '', ' ', 'x'.repeat(5000), -1, 0, 1e308, 3.5, true, false, null, [], {}, ['a', 1], { a: { b: 1 } },
  '${BK_FUZZ_UNSET}', '${BK_FUZZ_UNSET:-}', '$$', '../../etc/passwd', 'ü☃😀', '\n', "'; DROP TABLE x; --", 'unlimited',
  '1y2m', '5x', '* * * * *', '99 99 99 99 99', '@daily', 'http://', 's3://', '-1d', '0h', '/dev/null', 'a\u0000b',
];
const TYPOS: Record<string, string> = { source: 'sorce', driver: 'drvier', path: 'pth', type: 'tpye', retention: 'retension', storages: 'storage', keep_last: 'keeplast' };

/** Every path in the tree, for picking a mutation site. */
function paths(v: Json, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function parentOf(root: Json, p: Path): { parent: { [k: string]: Json } | Json[]; key: string | number } | undefined {
  if (p.length === 0) return undefined;
  let cur: Json = root;
  for (const k of p.slice(0, -1)) cur = (cur as Record<string | number, Json>)[k]!;
  return { parent: cur as { [k: string]: Json } | Json[], key: p.at(-1)! };
}

interface ConfigCase {
  text: string;
  /** What was done, for the failure message. */
  what: string;
  /** The key path the mutation touched (dotted, as bk names it), when there is one. */
  path?: Path;
  /** The YAML is broken on purpose: the message names a line. */
  brokenYaml?: boolean;
}

function mutateConfig(r: Rng, dir: string): ConfigCase {
  const cfg = baseConfig(dir) as Json;
  const kind = r.pick(['remove', 'weird', 'unknown', 'typo', 'weird', 'text', 'root']);
  if (kind === 'root') {
    const v = r.pick(WEIRD);
    return { text: typeof v === 'string' ? v : stringify(v), what: `the whole file is ${JSON.stringify(v).slice(0, 40)}` };
  }
  if (kind === 'text') {
    const text = stringify(cfg);
    const i = r.int(0, text.length - 1);
    const damage = r.pick(['\t', '"', ': :', '- ', '{', '\n  bad', '&a *b']);
    return { text: text.slice(0, i) + damage + text.slice(i + 1), what: `YAML text damaged at ${i} with ${JSON.stringify(damage)}`, brokenYaml: true };
  }
  const sites = paths(cfg).filter((p) => p.length > 0);
  const p = r.pick(sites);
  const { parent, key } = parentOf(cfg, p)!;
  const rec = parent as Record<string | number, Json>;
  switch (kind) {
    case 'remove':
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete rec[key];
      return { text: stringify(cfg), what: `removed ${p.join('.')}`, path: p };
    case 'weird': {
      const v = r.pick(WEIRD);
      rec[key] = v;
      return { text: stringify(cfg), what: `${p.join('.')} = ${JSON.stringify(v).slice(0, 40)}`, path: p };
    }
    case 'unknown': {
      const target = rec[key];
      if (target && typeof target === 'object' && !Array.isArray(target)) {
        (target as Record<string, Json>).zz_unknown = 1;
        return { text: stringify(cfg), what: `unknown key under ${p.join('.')}`, path: [...p, 'zz_unknown'] };
      }
      rec[key] = { zz_unknown: 1 };
      return { text: stringify(cfg), what: `${p.join('.')} replaced by an object`, path: p };
    }
    default: {
      if (Array.isArray(parent) || typeof key !== 'string') return { text: stringify(cfg), what: 'unchanged' };
      const typo = TYPOS[key] ?? `${key}x`;
      rec[typo] = rec[key]!;
      delete rec[key];
      return { text: stringify(cfg), what: `${p.join('.')} renamed to ${typo}`, path: [...p.slice(0, -1), typo] };
    }
  }
}

/** Random command lines from bk's vocabulary, with hostile values. */
function randomArgv(r: Rng, dir: string): string[] {
  const value = () =>
    r.pick(['', '-', '--', 'x', '../x', 'files', 'app', '2024-01-01', '2024-13-45', 'now', '1d', '-5', '99999999999999999999', 'ü😀', '$(id)', '\n', join(dir, 'nope'), join(dir, 'src'), 'a'.repeat(300)]);
  const commands: [string[], string[]][] = [
    [['list'], []],
    [['verify'], ['--all', '--latest', '--id', '--at', '--sample', '--storage', '--restore-test', '--identity']],
    [['restore'], ['--at', '--id', '--to', '--storage', '--source', '--jobs', '--mode', '--dry-run', '--yes']],
    [['backup'], ['--all', '--source', '--exclude', '--compression', '--tag', '--no-prune', '--keep-last', '--keep-daily', '--keep-within']],
    [['prune'], ['--dry-run', '--storage', '--grace', '--keep-last', '--keep-hourly', '--keep-within-daily']],
    [['import'], ['--time', '--source']],
    [['status'], []],
    [['cron'], ['--format', '--systemd', '--supervisord']],
    [['config', 'check'], []],
    [['init'], ['--force']],
    [['help'], []],
    [[r.pick(['bogus', '--bogus', '-x', ''])], []],
  ];
  const [cmd, flags] = r.pick(commands);
  const argv = [...cmd];
  const n = r.int(0, 4);
  for (let i = 0; i < n; i++) {
    if (flags.length > 0 && r.chance(0.7)) {
      argv.push(r.pick(flags));
      if (r.chance(0.7)) argv.push(value());
    } else argv.push(r.chance(0.5) ? value() : r.pick(['--json', '-q', '--log-level', 'debug', '--log-format', 'pretty', '--repo', '--config', '-V', '--help']));
  }
  if (cmd[0] === 'init') argv.push(join(dir, `init-${r.int(0, 3)}.yaml`));
  return argv;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function runCases(cases: { argv: string[]; cwd: string; env?: Record<string, string> }[]): Promise<Result[]> {
  const file = join(work, `cases-${Date.now()}.json`);
  const out = join(work, `results-${Date.now()}.json`);
  await writeFile(file, JSON.stringify(cases));
  const r = await execa(process.execPath, [RUNNER, file, out], { env: cleanEnv({ BK_LOCK_DIR: join(work, 'locks'), TZ: 'UTC' }), extendEnv: false, reject: false, timeout: 300_000 });
  expect(r.exitCode, `fuzz runner: ${r.stderr}`).toBe(0);
  return JSON.parse(await readFile(out, 'utf8')) as Result[];
}

describe(`fuzz (seed ${seed})`, () => {
  it(`${COUNT} generated configs: no crash; config errors exit 2 and name the key path`, async () => {
    const r = rng(seed).fork('configs');
    const dir = join(work, 'configs');
    await mkdir(dir, { recursive: true });
    const cases: ConfigCase[] = [];
    const runs: { argv: string[]; cwd: string }[] = [];
    for (let i = 0; i < COUNT; i++) {
      const c = mutateConfig(r, work);
      const file = join(dir, `c${i}.yaml`);
      await writeFile(file, c.text, { mode: 0o600 });
      cases.push(c);
      runs.push({ argv: [...r.pick([['list'], ['verify', '--all'], ['prune', '--dry-run'], ['cron'], ['status'], ['restore', '--dry-run']]), '--config', file], cwd: work });
    }
    const results = await runCases(runs);
    const failures: string[] = [];
    results.forEach((res, i) => {
      const c = cases[i]!;
      const why = `[seed ${seed}] case ${i}: ${c.what}; bk ${runs[i]!.argv.join(' ')} → exit ${res.code}\n${res.stderr.slice(0, 1500)}`;
      if (CRASH.test(res.stderr)) failures.push(`crashed: ${why}`);
      else if (!EXIT_CODES.includes(res.code)) failures.push(`exit code outside DESIGN §5: ${why}`);
      else if (/^bk: (config: )?.*\.yaml/m.test(res.stderr) && res.code !== 2 && /config/.test(res.stderr.split('\n').find((l) => l.startsWith('bk:')) ?? '')) {
        failures.push(`a config error that does not exit 2: ${why}`);
      } else if (res.code === 2 && c.brokenYaml && !/line \d+|not valid YAML|(targets|storages|defaults|notifications|version|\(root\))[.: ]/.test(res.stderr)) {
        // Damaged text is either not YAML (the message gives the line) or YAML that says
        // something else (the message names the key path, like any other config error).
        failures.push(`damaged YAML without a line or a key path: ${why}`);
      }
      else if (res.code === 2 && c.path && c.path.length > 0 && /bk: config:/.test(res.stderr)) {
        // The message names where: the first two levels of the path (e.g. targets.pg), or the
        // collection and the offending key name (an invalid or unknown name).
        const head = c.path.slice(0, 2).map(String);
        const named = res.stderr.includes(head.join('.')) || (head.length === 2 && res.stderr.includes(head[0]!) && res.stderr.includes(head[1]!)) || (head.length === 1 && res.stderr.includes(head[0]!));
        if (!named) failures.push(`a config error that does not name ${head.join('.')}: ${why}`);
      }
    });
    expect(failures, failures.slice(0, 5).join('\n\n')).toEqual([]);
    // The generator must reach the validator, not only the YAML parser.
    expect(results.filter((x) => x.code === 2 && /bk: config: .*(targets|storages|defaults|notifications)\./.test(x.stderr)).length).toBeGreaterThan(COUNT / 10);
  });

  it(`${COUNT} generated command lines: no crash, exit codes from DESIGN §5`, async () => {
    const r = rng(seed).fork('argv');
    const dir = join(work, 'argv');
    await mkdir(dir, { recursive: true });
    const config = join(dir, 'backup.config.yaml');
    await writeFile(config, stringify({ storages: { local: { type: 'local', path: join(dir, 'repo') } }, targets: { app: { driver: 'files', source: join(work, 'src') } } }), { mode: 0o600 });
    const runs = Array.from({ length: COUNT }, () => ({ argv: randomArgv(r, dir), cwd: dir }));
    const results = await runCases(runs);
    const failures: string[] = [];
    results.forEach((res, i) => {
      const why = `[seed ${seed}] case ${i}: bk ${JSON.stringify(runs[i]!.argv)} → exit ${res.code}\n${res.stderr.slice(0, 1500)}`;
      if (CRASH.test(res.stderr)) failures.push(`crashed: ${why}`);
      else if (!EXIT_CODES.includes(res.code)) failures.push(`exit code outside DESIGN §5: ${why}`);
    });
    expect(failures, failures.slice(0, 5).join('\n\n')).toEqual([]);
    expect(results.some((x) => x.code === 2)).toBe(true);
  });
});
