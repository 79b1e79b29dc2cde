/**
 * Hostile names: files, directories, databases and keys named with spaces, quotes, `;`, `$()`,
 * backticks, newlines, leading dashes, `..` and unicode must round-trip byte for byte and never
 * run as shell; target and storage names that could leave the storage prefix are refused (config
 * and command line alike); and no source file hands a shell a string it built.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, mariadbString, pgIdent, pgString, rmrf, startMariadb, startPostgres } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';
import { treeDigest } from './tree-digest.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

let work: string;
/**
 * A file that any `$(…)` or backtick below would create if a shell ever saw it: a relative name
 * (file names cannot hold "/"), and bk runs in `work`.
 */
const canary = 'PWNED';
const pwned = () => existsSync(join(work, canary)) || existsSync(canary);
beforeAll(async () => {
  work = await makeTmpDir('bk-hostile-names-');
});
afterAll(async () => {
  await rmrf(work);
});

/** Names that break naive shell strings, path joins and SQL. */
const hostile = (canaryPath: string): string[] => [
  'with space',
  "single'quote",
  'double"quote',
  'semi;colon',
  `dollar$(touch ${canaryPath})`,
  `back\`touch ${canaryPath}\`tick`,
  'new\nline',
  'tab\there',
  '-rf',
  '--help',
  '..dotdot',
  'a..b',
  'ünïcödé 日本 😀',
  '*glob?[x]',
  '$HOME',
  'back\\slash',
];

describe('no shell strings in src/', () => {
  /** Files and lines allowed to start a shell: both run a command the user wrote in the config as shell. */
  const ALLOWED: Record<string, RegExp> = {
    'hooks/run-hooks.ts': /execa\(hook\.shell!, \{ \.\.\.options, shell: '\/bin\/sh' \}\)/,
    'drivers/redis.ts': /typeof cmd === 'string' \? \['\/bin\/sh', \['-c', cmd\]\]/,
  };
  const PATTERNS: [string, RegExp][] = [
    ['shell option', /\bshell\s*:\s*(true|['"`]\/)/],
    ['sh -c / bash -c', /['"`](\/bin\/)?(ba|da|z)?sh['"`]\s*,\s*\[\s*['"`]-c/],
    ['a -c next to a shell', /(\/bin\/sh|\bbash\b)[^\n]*-c\b/],
    ['child_process exec/execSync', /\bexec(Sync)?\s*\(|\bexecFileSync\s*\(.*shell/],
    ['execaCommand', /\bexecaCommand(Sync)?\b/],
    ['execa template tag', /(?<![\w$}])\$\s*`|\bexeca\s*`/],
    ['spawn with a command string', /\bspawn(Sync)?\(\s*`/],
  ];

  async function sourceFiles(dir: string): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) out.push(...(await sourceFiles(p)));
      else if (e.name.endsWith('.ts')) out.push(p);
    }
    return out;
  }

  it('every external tool is started with an argument array', async () => {
    const files = await sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(20);
    const hits: string[] = [];
    for (const f of files) {
      const rel = relative(SRC, f);
      const lines = (await readFile(f, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        if (/^\s*(\/\*|\*|\/\/)/.test(line)) return; // comments
        for (const [what, re] of PATTERNS) {
          if (!re.test(line)) continue;
          if (ALLOWED[rel]?.test(line)) continue;
          // RegExp.prototype.exec, not child_process.exec.
          if (what === 'child_process exec/execSync' && /\.exec\(/.test(line) && !/\bexec(Sync)?\s*\(\s*['"`]/.test(line)) continue;
          hits.push(`${rel}:${i + 1}: ${what}: ${line.trim()}`);
        }
      });
    }
    expect(hits).toEqual([]);
  });

  it('the two places that run a shell pass the configured command as is, never a string bk built', async () => {
    for (const [file, re] of Object.entries(ALLOWED)) {
      const text = await readFile(join(SRC, file), 'utf8');
      expect(re.test(text), file).toBe(true);
    }
  });
});

describe('files: hostile file and directory names', () => {
  let src: string;
  let repo: string;
  let before: string;

  beforeAll(async () => {
    src = join(work, `source dir; $(touch ${canary}) 'q' ü`);
    repo = join(work, `repo "x" $(touch ${canary})`);
    await mkdir(src, { recursive: true });
    for (const [i, name] of hostile(canary).entries()) {
      await writeFile(join(src, name), `content ${i}\n`);
      await mkdir(join(src, `dir ${name}`), { recursive: true });
      await writeFile(join(src, `dir ${name}`, name), `nested ${i}\n`);
    }
    await symlink(hostile(canary)[4]!, join(src, 'link to $(x)'));
    before = await treeDigest(src);
  });

  it('back up, list, verify and restore elsewhere: byte for byte, and nothing ran as shell', async () => {
    const b = await runBk(['backup', 'files', '--source', src, '--repo', repo], { cwd: work });
    expect(b.exitCode, b.stderr).toBe(0);
    expect((await runBk(['verify', '--all', '--repo', repo], { cwd: work })).exitCode).toBe(0);
    const dest = join(work, `dest ; rm -rf / $(touch ${canary}) \`x\` ü\nnl`);
    const r = await runBk(['restore', 'files', '--repo', repo, '--to', dest, '--yes'], { cwd: work });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await treeDigest(dest)).toBe(before);
    expect(pwned(), 'a $(…) or backtick ran').toBe(false);
  });

  it('the printed by-hand pipeline restores the same tree when run by a shell, and runs nothing else', async () => {
    const dest = join(work, `by hand $(touch ${canary}) 'q'`);
    const plan = await runBk(['restore', 'files', '--repo', repo, '--to', dest, '--dry-run', '--json'], { cwd: work });
    expect(plan.exitCode, plan.stderr).toBe(0);
    const manual = plan.json<{ plan: { manual: string }[] }>().plan[0]!.manual;
    const sh = await execa('bash', ['-o', 'pipefail', '-c', manual], { reject: false, cwd: work });
    expect(sh.exitCode, `${manual}\n${sh.stderr}`).toBe(0);
    expect(await treeDigest(dest)).toBe(before);
    expect(pwned(), 'the by-hand pipeline ran an injected command').toBe(false);
  });
});

describe('hostile database names', () => {
  const DB = `odd db; $(touch ${canary}) 'q" ü`;

  it('postgres: a database with a hostile name backs up and restores into another hostile name', async () => {
    const db = DB;
    const to = `${db} copy`;
    const pg = await startPostgres();
    try {
      await pg.createDb(db);
      await pg.psql(`CREATE TABLE ${pgIdent(`t ${db}`)} (k text); INSERT INTO ${pgIdent(`t ${db}`)} VALUES (${pgString(db)});`, db);
      const config = join(work, 'pg.yaml');
      const repo = join(work, 'pg-repo');
      await writeFile(config, ['storages:', '  local:', '    type: local', `    path: ${JSON.stringify(repo)}`, 'targets:', '  app:', '    driver: postgres', '    host: 127.0.0.1', `    port: ${pg.port}`, '    user: bk', `    password: ${JSON.stringify(pg.bkPassword)}`, `    database: ${JSON.stringify(db)}`, ''].join('\n'), { mode: 0o600 });
      const b = await runBk(['backup', 'app', '--config', config], { cwd: work });
      expect(b.exitCode, b.stderr).toBe(0);
      const r = await runBk(['restore', 'app', '--config', config, '--to', to, '--yes'], { cwd: work });
      expect(r.exitCode, r.stderr).toBe(0);
      expect((await pg.psql(`SELECT k FROM ${pgIdent(`t ${db}`)}`, to)).trim()).toBe(db);
      expect(pwned()).toBe(false);
    } finally {
      await pg.stop();
    }
  });

  it('mysql: a database with a hostile name backs up and restores into another hostile name', async () => {
    // bk refuses "/", "\\" and "." in mysql database names (they cannot be files on the server).
    const db = DB;
    const to = `${db} copy`;
    const my = await startMariadb();
    const ident = (s: string) => `\`${s.replace(/`/g, '``')}\``;
    try {
      await my.query(`CREATE DATABASE ${ident(db)} CHARACTER SET utf8mb4; CREATE TABLE ${ident(db)}.${ident(`t ${db}`)} (k TEXT) CHARACTER SET utf8mb4; INSERT INTO ${ident(db)}.${ident(`t ${db}`)} VALUES (${mariadbString(db)});`);
      const config = join(work, 'my.yaml');
      const repo = join(work, 'my-repo');
      await writeFile(config, ['storages:', '  local:', '    type: local', `    path: ${JSON.stringify(repo)}`, 'targets:', '  app:', '    driver: mysql', '    host: 127.0.0.1', `    port: ${my.port}`, '    user: bk', `    password: ${JSON.stringify(my.bkPassword)}`, `    database: ${JSON.stringify(db)}`, ''].join('\n'), { mode: 0o600 });
      const b = await runBk(['backup', 'app', '--config', config], { cwd: work });
      expect(b.exitCode, b.stderr).toBe(0);
      const r = await runBk(['restore', 'app', '--config', config, '--to', to, '--yes'], { cwd: work });
      expect(r.exitCode, r.stderr).toBe(0);
      expect((await my.query(`SELECT k FROM ${ident(to)}.${ident(`t ${db}`)}`)).trim()).toBe(db);
      expect(pwned()).toBe(false);
    } finally {
      await my.stop();
    }
  });
});

describe('names that could leave the storage prefix', () => {
  const BAD = ['../x', '..', '.', 'a/b', '/abs', 'x\ny', 'with space', '.hidden', '-dash', 'ü', 'a'.repeat(65), ''];

  it.each(BAD.map((n) => [JSON.stringify(n), n]))('target %s in the config: exit 2 naming targets.<name>', async (_label, name) => {
    const config = join(work, `bad-target-${Math.random().toString(16).slice(2)}.yaml`);
    await writeFile(config, `storages:\n  local:\n    type: local\n    path: ${join(work, 'never')}\ntargets:\n  ${JSON.stringify(name)}:\n    driver: files\n    source: /tmp\n`);
    // Every command loads the config the same way; two names go through all three.
    for (const cmd of name === '../x' || name === 'x\ny' ? [['config', 'check'], ['backup'], ['list']] : [['config', 'check']]) {
      const r = await runBk([...cmd, '--config', config]);
      expect(r.exitCode, `${cmd.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/targets(\.|: invalid name)/);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    }
    expect(existsSync(join(work, 'never'))).toBe(false);
  });

  it.each(['../x', 'a/b', '..'].map((n) => [n]))('storage named %s in the config: exit 2 naming storages.<name>', async (name) => {
    const config = join(work, `bad-storage-${Math.random().toString(16).slice(2)}.yaml`);
    await writeFile(config, `storages:\n  ${JSON.stringify(name)}:\n    type: local\n    path: ${join(work, 'never')}\ntargets:\n  app:\n    driver: files\n    source: /tmp\n`);
    const r = await runBk(['config', 'check', '--config', config]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('storages.');
  });

  it.each([['list'], ['verify'], ['restore', '--yes'], ['backup'], ['prune'], ['import', '/etc/hostname']])('bk %s with a target name that leaves the prefix: exit 2, nothing read outside', async (cmd, ...rest) => {
    // A manifest beside the repository, which a walk outside it would find.
    const repo = join(work, 'prefix-repo');
    await mkdir(repo, { recursive: true });
    await writeFile(join(work, 'bait.manifest.json'), '{}');
    for (const name of ['../x', '..', 'a/b', '../prefix-repo']) {
      const args = cmd === 'import' ? ['import', name, ...rest] : [cmd, name, ...rest];
      const r = await runBk([...args, '--repo', repo]);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/is not a target name/);
      expect(r.stderr).not.toMatch(/bait|internal error|\n\s+at /);
    }
  });
});
