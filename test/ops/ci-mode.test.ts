// CI mode: a spinner only for a person at a terminal. `script` gives bk a real pseudo-terminal, so
// the spinner case is observed, not assumed; CI=true and non-terminals must get plain output.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, makeTmpDir, rmrf } from '../harness/index.js';
import { BK_BIN, runBk } from '../helpers/run-bk.js';
import { shellQuote } from '../../src/codecs/compression.js';

const hasScript = await execa('script', ['--version'], { reject: false }).then((r) => r.exitCode === 0);
const ESC = '\x1b[';

let dir: string;
beforeAll(async () => {
  dir = await makeTmpDir('bk-ci-');
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'a.txt'), 'data\n');
});
afterAll(() => rmrf(dir));

/**
 * bk on a pseudo-terminal of the given width; stdout and stderr both arrive on the terminal. `ci`
 * undefined removes CI from the environment entirely (ora treats any CI variable as "no spinner").
 */
async function onTerminal(columns: number, ci: string | undefined) {
  const env = cleanEnv({ TERM: 'xterm-256color' });
  if (ci === undefined) delete env.CI;
  else env.CI = ci;
  const bk = [process.execPath, BK_BIN, '--repo', join(dir, 'repo'), 'backup', 'files', '--source', join(dir, 'src')].map(shellQuote).join(' ');
  return execa('script', ['-qec', `stty cols ${columns} rows 24; exec ${bk}`, '/dev/null'], {
    env,
    extendEnv: false,
    stdin: 'ignore',
    reject: false,
    timeout: 60_000,
  });
}

describe.skipIf(!hasScript)('on a terminal', () => {
  it('shows a spinner to a person', async () => {
    const r = await onTerminal(100, undefined);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`${ESC}?25l`); // ora hides the cursor while spinning
    expect(r.stdout).toMatch(/files: backed up \d{8}T\d{6}Z-[0-9a-f]+ → repo/);
  });

  it('shows none when CI is set, and never prompts', async () => {
    const r = await onTerminal(100, 'true');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain(ESC);
    expect(r.stdout).not.toContain('backing up files'); // not even ora's plain fallback
    expect(r.stdout).toMatch(/files: backed up /);
  });

  it('shows none on a terminal that reports zero columns (and does not hang)', async () => {
    const r = await onTerminal(0, undefined);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain(`${ESC}?25l`);
  });
});

describe('without a terminal', () => {
  it('prints one JSON document on stdout and JSON log lines on stderr', async () => {
    const r = await runBk(['--repo', join(dir, 'repo'), 'backup', 'files', '--source', join(dir, 'src'), '--json', '--log-level', 'info']);
    expect(r.exitCode).toBe(0);
    expect(r.json()).toMatchObject({ schemaVersion: 1, command: 'backup', results: [{ target: 'files', status: 'ok' }] });
    const lines = r.stderr.trim().split('\n');
    for (const l of lines) expect(JSON.parse(l)).toMatchObject({ level: expect.any(String), time: expect.any(String), msg: expect.any(String) });
    expect(r.stdout + r.stderr).not.toContain(ESC);
  });
});
