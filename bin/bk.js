#!/usr/bin/env node
// Launcher: the bundled CLI (npm run build → dist/bundle/, see scripts/bundle.mjs), or the one tsc
// compiled (dist/) where the bundle was not made, e.g. an install that ran only tsc.
import { existsSync } from 'node:fs';

const bundled = new URL('../dist/bundle/cli.js', import.meta.url);
const { main } = await import(existsSync(bundled) ? bundled.href : '../dist/cli.js');

process.exitCode = await main(process.argv);
