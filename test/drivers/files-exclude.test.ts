import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { isRemotePath } from '../../src/drivers/files.js';
import { createTar } from '../../src/drivers/gnu-tar.js';
import { makeTmpDir, rmrf } from '../harness/index.js';

let scratch: string;
let n = 0;
beforeAll(async () => {
  scratch = await makeTmpDir('bk-exclude-');
});
afterAll(async () => rmrf(scratch));

/** Archives a tree holding `path` (a file) with GNU tar and the given excludes; is `path` left out? */
async function excludedByTar(globs: string[], path: string): Promise<boolean> {
  const root = join(scratch, String(n++));
  await mkdir(root, { recursive: true });
  if (path !== '') {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), 'x');
  }
  const { stream, done } = createTar(root, globs);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  await done;
  const listing = await execa('tar', ['-tf', '-'], { input: Buffer.concat(chunks) });
  const names = String(listing.stdout)
    .split('\n')
    .map((l) => l.replace(/^\.\//, '').replace(/\/$/, ''));
  return path === '' ? !names.includes('') : !names.includes(path);
}

describe('exclude globs, as GNU tar applies them', () => {
  // [globs, path relative to the source root, excluded?]
  it.each<[string[], string, boolean]>([
    [[], 'anything', false],
    [['*.log'], 'a.log', true],
    [['*.log'], 'deep/down/a.log', true],
    [['*.log'], 'a.log.1', false],
    [['*.log'], 'alog', false],
    [['*.log'], 'logs', false],
    [['node_modules'], 'node_modules', true],
    [['node_modules'], 'pkg/node_modules', true],
    [['node_modules'], 'node_modules2', false],
    [['node_modules'], 'my_node_modules', false],
    // A trailing slash is allowed (rsync style) and still matches the name at any depth.
    [['cache/'], 'cache', true],
    [['cache/'], 'app/cache', true],
    [['cache/'], 'cachet', false],
    // With a slash: a path from the source root.
    [['/build'], 'build', true],
    [['/build'], 'src/build', false],
    [['logs/*.gz'], 'logs/a.gz', true],
    [['logs/*.gz'], 'x/logs/a.gz', false],
    [['logs/*.gz'], 'logs/sub/a.gz', false],
    [['logs/**/*.gz'], 'logs/sub/deeper/a.gz', true],
    [['**/tmp'], 'tmp', true],
    [['**/tmp'], 'a/b/tmp', true],
    [['a/b/'], 'a/b', true],
    [['a/b/'], 'x/a/b', false],
    // Dotfiles are matched like any other name.
    [['.git'], '.git', true],
    [['.git'], 'sub/.git', true],
    [['*'], '.hidden', true],
    [['.*'], 'visible', false],
    [['*.tmp'], '.x.tmp', true],
    // Character classes and names with spaces.
    [['file [0-9].txt'], 'file 3.txt', true],
    [['file [0-9].txt'], 'file x.txt', false],
    [['with space'], 'dir/with space', true],
    // Several globs: any match excludes.
    [['*.log', '/build', 'cache'], 'build', true],
    [['*.log', '/build', 'cache'], 'a/cache', true],
    [['*.log', '/build', 'cache'], 'a/keep.txt', false],
    // The root itself is never excluded.
    [['*'], '', false],
  ])('%j excludes %j: %s', async (globs, path, expected) => {
    expect(await excludedByTar(globs, path)).toBe(expected);
  });
});

describe('isRemotePath', () => {
  it.each<[string, boolean]>([
    ['user@host:/srv/data', true],
    ['host:/srv/data', true],
    ['host:relative', true],
    ['backup@10.0.0.5:/var/www', true],
    ['/srv/data', false],
    ['./data', false],
    ['data', false],
    ['./odd:name', false],
    ['/srv/a:b', false],
  ])('%s → %s', (p, expected) => {
    expect(isRemotePath(p)).toBe(expected);
  });
});
