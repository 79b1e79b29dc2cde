// withStdoutBuffer against real programs: through coreutils' stdbuf a tool runs with a 1 MiB stdio
// buffer and writes the same bytes; without stdbuf, or for a tool that is not there, the command
// line is left as it was (so a missing tool still fails with ENOENT, which bk turns into its
// install hint).
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { withStdoutBuffer } from '../../src/util/stdout-buffer.js';

let onlyStdbufLess: string;
beforeAll(async () => {
  // A PATH with the tools the test runs but no stdbuf.
  onlyStdbufLess = await mkdtemp(join(tmpdir(), 'bk-stdbuf-'));
  for (const tool of ['awk', 'sh']) {
    const where = (await execa('sh', ['-c', `command -v ${tool}`])).stdout.trim();
    await symlink(where, join(onlyStdbufLess, tool));
  }
});
afterAll(async () => {
  await rm(onlyStdbufLess, { recursive: true, force: true });
});

describe('withStdoutBuffer', () => {
  it('runs a tool through stdbuf with a 1 MiB stdout buffer, and its output is unchanged', async () => {
    // stdbuf sets the buffer through libstdbuf, preloaded into the tool with its size in _STDBUF_O.
    const env = withStdoutBuffer('env', []);
    expect(env.file).toMatch(/stdbuf$/);
    const seen = (await execa(env.file, env.args)).stdout.split('\n');
    expect(seen).toContain('_STDBUF_O=1048576');
    expect(seen.find((l) => l.startsWith('LD_PRELOAD='))).toMatch(/libstdbuf/);

    const args = ['BEGIN { for (i = 0; i < 200000; i++) print "line " i }'];
    const awk = withStdoutBuffer('awk', args);
    expect(awk.args).toEqual(['--output=1M', 'awk', ...args]);
    expect((await execa(awk.file, awk.args, { stripFinalNewline: false })).stdout).toBe((await execa('awk', args, { stripFinalNewline: false })).stdout);
  });

  it('leaves the command as it is when stdbuf is not installed', () => {
    expect(withStdoutBuffer('awk', ['x'], { PATH: onlyStdbufLess })).toEqual({ file: 'awk', args: ['x'] });
  });

  it('leaves the command as it is when the tool is missing, so it fails with ENOENT', async () => {
    const cmd = withStdoutBuffer('bk-no-such-tool', ['--version']);
    expect(cmd).toEqual({ file: 'bk-no-such-tool', args: ['--version'] });
    await expect(execa(cmd.file, cmd.args)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
