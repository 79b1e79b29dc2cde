// `bk verify --restore-test` end to end with the files driver: a good backup passes check by
// check; an archive replaced by another valid dump (hashes re-recorded, so an integrity read
// passes) fails with exit 4 on counts and on content alone; damage fails before restoring; the
// throwaway directory is gone every time. Plus --sample and the daemon's runDrill().
import { readdir, readFile, writeFile, mkdir, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContext } from '../../src/app/context.js';
import { runDrill, runScheduledVerify } from '../../src/app/drill.js';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk, type BkRun } from '../helpers/run-bk.js';
import { buildTree } from '../crypto/fixtures.js';
import { makeAgeKey } from '../crypto/keys.js';

let dir: string;
let repo: string;
let tmp: string;
let config: string;

interface Check {
  name: string;
  expected: unknown;
  actual: unknown;
  ok: boolean;
}
interface Drill {
  target: string;
  id: string;
  status: string;
  ok: boolean;
  checks: Check[];
  error: { code: string; message: string } | null;
}
interface VerifyJson {
  results: { target: string; id: string; ok: boolean }[];
  drills?: Drill[];
}
interface Manifest {
  archive: string;
  raw: unknown;
  stored: unknown;
}

/** Runs with TMPDIR inside the test dir, so a drill directory left behind would be seen. */
const bk = (args: string[]): Promise<BkRun> => runBk(['--config', config, ...args], { env: { TMPDIR: tmp } });

async function backup(target: string): Promise<string> {
  const r = await bk(['backup', target, '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.json<{ results: { id: string }[] }>().results[0]!.id;
}

const manifestPath = (target: string, id: string) => join(repo, target, `${id}.manifest.json`);
const readManifest = async (target: string, id: string) => JSON.parse(await readFile(manifestPath(target, id), 'utf8')) as Manifest & Record<string, unknown>;

/**
 * Puts backup `from`'s archive in place of backup `into`'s and re-records its hashes in `into`'s
 * manifest: a valid archive, matching checksums, other content. What a wrong file uploaded under
 * the right name, or a dump tool that dumped the wrong thing, looks like to an integrity read.
 */
async function replaceArchive(target: string, into: string, from: string): Promise<void> {
  const a = await readManifest(target, into);
  const b = await readManifest(target, from);
  await copyFile(join(repo, b.archive), join(repo, a.archive));
  await writeFile(manifestPath(target, into), `${JSON.stringify({ ...a, raw: b.raw, stored: b.stored }, null, 2)}\n`);
}

beforeAll(async () => {
  dir = await makeTmpDir('bk-drill-test-');
  repo = join(dir, 'repo');
  tmp = join(dir, 'tmp');
  await mkdir(tmp);
  const key = await makeAgeKey(dir, 'key');
  const targets: string[] = [];
  for (const name of ['docs', 'sealed', 'swap', 'same', 'damaged']) {
    await mkdir(join(dir, name));
    await buildTree(join(dir, name));
    const enc = name === 'sealed' ? `, encryption: { recipients: [${key.recipient}], identity_file: ${key.file} }` : '';
    targets.push(`  ${name}: { driver: files, source: ${join(dir, name)}, verify: { restore_test: true }${enc} }`);
  }
  config = join(dir, 'backup.config.yaml');
  await writeFile(config, `storages:\n  local: { type: local, path: ${repo} }\ntargets:\n${targets.join('\n')}\n`);
});

afterAll(async () => {
  if (dir) await rmrf(dir);
});

describe('verify --restore-test', () => {
  it('passes for a good backup, reports every check, and leaves nothing behind', async () => {
    const id = await backup('docs');
    const r = await bk(['verify', 'docs', '--restore-test', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const drill = r.json<VerifyJson>().drills![0]!;
    expect(drill).toMatchObject({ target: 'docs', id, status: 'passed', ok: true, error: null });
    expect(drill.checks.map((c) => c.name)).toEqual(['files', 'dirs', 'symlinks', 'other', 'bytes', 'digest']);
    expect(drill.checks.every((c) => c.ok)).toBe(true);
    // buildTree: 8 files (a hard link restores as a file), 4 dirs with the root, 1 symlink.
    expect(Object.fromEntries(drill.checks.map((c) => [c.name, c.expected]))).toMatchObject({ files: 8, dirs: 4, symlinks: 1, other: 0 });
    expect(await readdir(tmp)).toEqual([]);
  });

  it('drills an encrypted backup with the key from the config', async () => {
    await backup('sealed');
    const r = await bk(['verify', 'sealed', '--restore-test', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json<VerifyJson>().drills![0]!.status).toBe('passed');
    expect(await readdir(tmp)).toEqual([]);
  });

  it('fails with exit 4 for an archive replaced by another valid dump whose hashes match its manifest', async () => {
    const original = await backup('swap');
    await writeFile(join(dir, 'swap', 'added.txt'), 'one more file\n');
    await writeFile(join(dir, 'swap', 'secret.key'), 'other content\n');
    const other = await backup('swap');
    await replaceArchive('swap', original, other);

    // Sizes and checksums agree with the manifest, so an integrity read cannot tell.
    const integrity = await bk(['verify', 'swap', '--id', original, '--json']);
    expect(integrity.exitCode, integrity.stderr).toBe(0);

    const r = await bk(['verify', 'swap', '--id', original, '--restore-test', '--json']);
    expect(r.exitCode).toBe(4);
    const drill = r.json<VerifyJson>().drills![0]!;
    expect(drill.status).toBe('mismatch');
    expect(drill.error?.code).toBe('INTEGRITY');
    const wrong = Object.fromEntries(drill.checks.filter((c) => !c.ok).map((c) => [c.name, [c.expected, c.actual]]));
    expect(Object.keys(wrong).sort()).toEqual(['bytes', 'digest', 'files']);
    expect(wrong.files).toEqual([8, 9]);
    expect(await readdir(tmp)).toEqual([]);

    const text = await bk(['verify', 'swap', '--id', original, '--restore-test']);
    expect(text.exitCode).toBe(4);
    expect(text.stdout).toContain('MISMATCH in 3 of 6 checks');
    expect(text.stdout).toMatch(/files: recorded 8, restored 9/);
  });

  it('catches a difference in content alone (same names, counts and sizes) through the digest', async () => {
    const original = await backup('same');
    const file = join(dir, 'same', 'docs', 'readme.txt');
    await writeFile(file, (await readFile(file, 'utf8')).replace('(a)', '(b)'));
    const other = await backup('same');
    await replaceArchive('same', original, other);

    const r = await bk(['verify', 'same', '--id', original, '--restore-test', '--json']);
    expect(r.exitCode).toBe(4);
    const drill = r.json<VerifyJson>().drills![0]!;
    expect(drill.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['digest']);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('a damaged archive fails the drill with exit 4 and the throwaway is still removed', async () => {
    const id = await backup('damaged');
    const m = await readManifest('damaged', id);
    const bytes = await readFile(join(repo, m.archive));
    bytes[bytes.length >> 1]! ^= 0x10;
    await writeFile(join(repo, m.archive), bytes);
    const r = await bk(['verify', 'damaged', '--restore-test', '--json']);
    expect(r.exitCode).toBe(4);
    const drill = r.json<VerifyJson>().drills![0]!;
    expect(drill).toMatchObject({ status: 'failed', ok: false, error: { code: 'INTEGRITY' } });
    expect(await readdir(tmp)).toEqual([]);
  });
});

describe('verify --sample', () => {
  it('reads N random backups per target', async () => {
    await backup('docs');
    await backup('docs');
    const r = await bk(['verify', '--all', '--sample', '2', '--json']);
    // "damaged" holds a broken archive, so the run may end 4; each target still gets 2 (or all).
    const results = r.json<VerifyJson>().results;
    const per = (t: string) => results.filter((x) => x.target === t);
    expect(per('docs')).toHaveLength(2);
    expect(new Set(per('docs').map((x) => x.id)).size).toBe(2);
    expect(per('sealed')).toHaveLength(1);
    expect(per('swap')).toHaveLength(2);

    const only = await bk(['verify', 'docs', '--sample', '1', '--json']);
    expect(only.exitCode, only.stderr).toBe(0);
    expect(only.json<VerifyJson>().results).toHaveLength(1);
  });

  it('rejects a bad sample size and conflicting selectors', async () => {
    expect((await bk(['verify', '--sample', '0'])).exitCode).toBe(2);
    expect((await bk(['verify', '--sample', '2', '--latest'])).exitCode).toBe(2);
  });
});

describe('for the daemon', () => {
  it('runDrill and runScheduledVerify report a result to record', async () => {
    const prevTmp = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      const ctx = await createContext({
        options: { config, logLevel: 'silent' },
        env: {},
        cwd: dir,
        signal: new AbortController().signal,
        interactive: false,
        stderrIsTTY: false,
      });
      const drill = await runDrill(ctx, 'docs');
      expect(drill.status).toBe('passed');
      expect(Date.parse(drill.finishedAt)).not.toBeNaN();
      const scheduled = await runScheduledVerify(ctx, 'sealed');
      expect(scheduled.kind).toBe('drill');
      expect(scheduled.kind === 'drill' && scheduled.drill.status).toBe('passed');
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      if (prevTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = prevTmp;
    }
  });
});
