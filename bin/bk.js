#!/usr/bin/env node
// Launcher for the compiled CLI (npm run build → dist/).
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv);
