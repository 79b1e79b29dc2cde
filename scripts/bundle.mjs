/**
 * Bundles the compiled CLI (dist/, from tsc) into dist/bundle/, which bin/bk.js runs.
 *
 * Why: Node 20 has no module compile cache, and a backup loads ~440 small ESM files (execa, zod,
 * yaml and bk's own), which cost ~0.3 s of CPU before any work starts: on the reference machine a
 * tiny PostgreSQL backup took 1.05–1.09 s from dist/ and 0.83–0.90 s bundled (means of two batches
 * of 5 runs). Every cron run and every CI step pays that.
 *
 * Commands stay separate chunks (they are imported when they run); so does the AWS SDK, which
 * storage/lazy.ts loads for S3 only, and which bundled loads in about half the time it takes from
 * its hundreds of files in node_modules. The packages that bk loads only now and then stay outside:
 * nodemailer (email notifications), age-encryption (encrypted targets), and TypeScript (which
 * cosmiconfig asks for only to read a .ts config).
 */
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';

const outdir = new URL('../dist/bundle/', import.meta.url).pathname;
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: [new URL('../dist/cli.js', import.meta.url).pathname],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['nodemailer', 'age-encryption', 'typescript'],
  // CommonJS dependencies use require, __filename and __dirname; an ES module has none of them.
  banner: {
    js: [
      "import { createRequire as __bkCreateRequire } from 'node:module';",
      "import { fileURLToPath as __bkFileURLToPath } from 'node:url';",
      'const require = __bkCreateRequire(import.meta.url);',
      'const __filename = __bkFileURLToPath(import.meta.url);',
      "const __dirname = __bkFileURLToPath(new URL('.', import.meta.url));",
    ].join(' '),
  },
  logLevel: 'warning',
});
