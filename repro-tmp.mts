import { execa } from 'execa';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { storeForeignTar } from '/work/main/test/helpers/foreign-archive.ts';
const work = '/tmp/repro/w'; await rm(work, { recursive: true, force: true }); await mkdir(work, { recursive: true });
const outside = join(work, 'outside'); await mkdir(outside);
const kinds = ['symlink-under-symlink','symlink-abs-write-through','symlink-up-write-through','symlink-replaces-dir','hardlink-abs','dotdot'];
const repo = join(work, 'repo');
let cfg = `storages:\n  local: { type: local, path: ${repo} }\ntargets:\n`;
for (const k of kinds) {
  const tar = Buffer.from((await execa('python3', ['test/helpers/evil-tar.py', k, outside], { encoding: 'buffer' })).stdout);
  const dest = join(work, 'evil-' + k, 'dest');
  await storeForeignTar(repo, k, tar, dest);
  await mkdir(dest, { recursive: true }); await writeFile(join(dest, 'existing.txt'), 'keep');
  cfg += `  ${k}: { driver: files, source: ${dest} }\n`;
}
await writeFile(join(work, 'c.yaml'), cfg);
const counts: Record<string, number> = {};
for (let i = 0; i < Number(process.argv[2] ?? 10); i++) {
  const r = await execa('node', ['bin/bk.js', 'restore', '--config', join(work, 'c.yaml'), '--yes', '--json'], { reject: false });
  const doc = JSON.parse(r.stdout);
  for (const x of doc.results) { const key = `${x.target}:${x.error?.code}`; counts[key] = (counts[key] ?? 0) + 1; if (x.error?.code !== 'UNSAFE_ARCHIVE') console.log(x.target, JSON.stringify(x.error)); }
}
console.log(counts);
