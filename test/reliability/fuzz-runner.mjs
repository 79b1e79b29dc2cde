// Runs many bk command lines in one Node process (bk's own main(), compiled in dist/), so a fuzz
// test can try hundreds of inputs in seconds instead of paying Node's start-up for each. Each case
// gets its own working directory; stdout and stderr are captured per case.
//   node fuzz-runner.mjs <cases.json> <results.json>
// cases.json: [{ "argv": [...], "cwd": "/dir", "env": {...} }]
import { readFileSync, writeFileSync } from 'node:fs';

const [casesFile, resultsFile] = process.argv.slice(2);
const { main } = await import(new URL('../../dist/cli.js', import.meta.url).href);
const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
const results = [];
const realOut = process.stdout.write.bind(process.stdout);
const realErr = process.stderr.write.bind(process.stderr);
const baseEnv = { ...process.env };
// A crash inside main() that escapes it is what the test looks for; keep going to the next case.
let escaped = '';
process.on('uncaughtException', (e) => {
  escaped += `uncaught: ${e?.stack ?? e}\n`;
});
process.on('unhandledRejection', (e) => {
  escaped += `unhandled rejection: ${e?.stack ?? e}\n`;
});
for (const c of cases) {
  let out = '';
  let err = '';
  escaped = '';
  process.stdout.write = (s) => ((out += String(s)), true);
  process.stderr.write = (s) => ((err += String(s)), true);
  process.chdir(c.cwd);
  for (const k of Object.keys(process.env)) if (!(k in baseEnv)) delete process.env[k];
  Object.assign(process.env, c.env ?? {});
  let code;
  try {
    code = await main(['node', 'bk', ...c.argv]);
  } catch (e) {
    code = -1;
    err += `main threw: ${e?.stack ?? e}\n`;
  }
  // Let stray timers and rejections of this case surface before the next one starts.
  await new Promise((r) => setTimeout(r, 5));
  process.stdout.write = realOut;
  process.stderr.write = realErr;
  results.push({ code, stdout: out, stderr: err + escaped });
}
writeFileSync(resultsFile, JSON.stringify(results));
process.exit(0);
