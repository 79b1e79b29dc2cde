// `bk cron`: the printed crontab is parsed back (every schedule valid, every path absolute and
// present) and one line is run the way cron would — /bin/sh, empty environment, cwd / — to prove it
// is installable as printed. systemd units are checked with `systemd-analyze verify` where present.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import cron from 'node-cron';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTmpDir, rmrf } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';

const hasSystemdAnalyze = await execa('systemd-analyze', ['--version'], { reject: false }).then((r) => r.exitCode === 0);

let dir: string;
let config: string;
let lastDayConfig: string;

beforeAll(async () => {
  dir = await makeTmpDir('bk-cron-');
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'a.txt'), 'data\n');
  config = join(dir, 'backup.config.yaml');
  const common = `storages:\n  local: { type: local, path: ${join(dir, 'repo')} }\n`;
  await writeFile(
    config,
    `${common}targets:
  nightly:
    driver: files
    source: ${join(dir, 'src')}
    schedule: "30 2 * * 1-5"
    timezone: Europe/Berlin
    jitter: 10m
    timeout: 2h
  quarter:
    driver: files
    source: ${join(dir, 'src')}
    schedule: "*/15 * * * *"
    timezone: UTC
  fast:
    driver: files
    source: ${join(dir, 'src')}
    schedule: "*/20 * * * * *"
    timezone: UTC
  manual:
    driver: files
    source: ${join(dir, 'src')}
`,
  );
  lastDayConfig = join(dir, 'last-day.yaml');
  await writeFile(lastDayConfig, `${common}targets:\n  monthly:\n    driver: files\n    source: ${join(dir, 'src')}\n    schedule: "0 3 L * *"\n`);
});
afterAll(() => rmrf(dir));

describe('bk cron (crontab)', () => {
  it('prints installable lines with absolute paths; cron can run them as printed', async () => {
    const log = join(dir, 'cron.log');
    const r = await runBk(['--config', config, 'cron', '--log-file', log], { env: { TZ: 'UTC' } });
    expect(r.exitCode).toBe(0);
    // The seconds schedule cannot be a cron line: said on stderr and in a comment, not silently dropped.
    expect(r.stderr).toMatch(/fast: .*seconds granularity/);
    expect(r.stdout).toMatch(/^# fast: not installable in cron/m);

    const entries = r.stdout.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    const jobs = entries.filter((l) => !/^[A-Z_]+=/.test(l));
    expect(entries.filter((l) => /^[A-Z_]+=/.test(l))).toEqual(['CRON_TZ=Europe/Berlin', 'CRON_TZ=UTC']);
    expect(jobs).toHaveLength(2);
    for (const line of jobs) {
      const fields = line.split(/\s+/);
      expect(cron.validate(fields.slice(0, 5).join(' '))).toBe(true);
      const [node, bk] = fields.slice(5, 7);
      expect(node).toBe(process.execPath);
      expect(bk!.startsWith('/') && existsSync(bk!)).toBe(true);
      expect(line).toContain(`--config ${config} backup`);
      expect(line).toMatch(/--quiet >> \S+ 2>&1$/);
    }
    expect(jobs[0]).toMatch(/^30 2 \* \* 1-5 .* backup nightly --quiet/);
    expect(jobs[1]).toMatch(/^\*\/15 \* \* \* \* .* backup quarter --quiet/);

    // Run the command part exactly as cron does.
    const command = jobs[1]!.split(/\s+/).slice(5).join(' ');
    const ran = await execa('/bin/sh', ['-c', command], { cwd: '/', env: { HOME: dir, PATH: '/usr/bin:/bin', SHELL: '/bin/sh' }, extendEnv: false, reject: false });
    expect(ran.exitCode).toBe(0);
    expect(await readFile(log, 'utf8')).toBe(''); // silent on success
    expect((await readdir(join(dir, 'repo', 'quarter'))).some((f) => f.endsWith('.manifest.json'))).toBe(true);
  });

  it('needs a config with a schedule', async () => {
    const empty = join(dir, 'none.yaml');
    await writeFile(empty, `targets:\n  x: { driver: files, source: ${dir} }\n`);
    const r = await runBk(['--config', empty, 'cron']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/no target in .* has a schedule/);
  });
});

describe('bk cron --systemd', () => {
  it('writes a service and a timer per scheduled target', async () => {
    const out = join(dir, 'units');
    const r = await runBk(['--config', config, 'cron', '--systemd', '--out', out]);
    expect(r.exitCode).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['bk-fast.service', 'bk-fast.timer', 'bk-nightly.service', 'bk-nightly.timer', 'bk-quarter.service', 'bk-quarter.timer']);
    const timer = await readFile(join(out, 'bk-nightly.timer'), 'utf8');
    expect(timer).toContain('OnCalendar=Mon..Fri *-*-* 02:30:00 Europe/Berlin');
    expect(timer).toContain('RandomizedDelaySec=600');
    expect(timer).toContain('Persistent=true');
    const service = await readFile(join(out, 'bk-nightly.service'), 'utf8');
    expect(service).toContain(`ExecStart=${process.execPath} `);
    expect(service).toContain(`--config ${config} backup nightly --quiet`);
    expect(service).toContain('TimeoutStartSec=7500');
    expect(await readFile(join(out, 'bk-fast.timer'), 'utf8')).toContain('OnCalendar=*-*-* *:*:00/20 UTC');
  });

  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify', async () => {
    const out = join(dir, 'units');
    const files = (await readdir(out)).map((f) => join(out, f));
    const v = await execa('systemd-analyze', ['verify', ...files], { reject: false, env: { SYSTEMD_LOG_LEVEL: 'warning' } });
    expect(v.stderr).toBe('');
    expect(v.exitCode).toBe(0);
  });

  it('falls back to one bk schedule service when a schedule has no OnCalendar form', async () => {
    const out = join(dir, 'daemon-units');
    const r = await runBk(['--config', lastDayConfig, 'cron', '--systemd', '--out', out, '--grace', '5m', '--listen', '127.0.0.1:9464']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/monthly: .*L, W or #/);
    expect(await readdir(out)).toEqual(['bk-schedule.service']);
    const unit = await readFile(join(out, 'bk-schedule.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\S+ \S+bk\.js --config \S+last-day\.yaml schedule --grace 5m --listen 127\.0\.0\.1:9464$/m);
    expect(unit).toContain('KillMode=mixed');
    expect(unit).toContain('TimeoutStopSec=360');
    expect(unit).toContain('ExecReload=/bin/kill -HUP $MAINPID');
    if (hasSystemdAnalyze) {
      const v = await execa('systemd-analyze', ['verify', join(out, 'bk-schedule.service')], { reject: false });
      expect(v.stderr).toBe('');
      expect(v.exitCode).toBe(0);
    }
  });
});

describe('bk cron --supervisord', () => {
  it('prints a program section for bk schedule that lets running backups finish', async () => {
    const r = await runBk(['--config', config, 'cron', '--supervisord', '--json']);
    expect(r.exitCode).toBe(0);
    const doc = r.json<{ files: { name: string; content: string }[] }>();
    expect(doc.files.map((f) => f.name)).toEqual(['bk.conf']);
    const ini = parseIni(doc.files[0]!.content);
    const program = ini['program:bk']!;
    expect(program.command).toBe(`${process.execPath} ${program.command!.split(' ')[1]} --config ${config} schedule --grace 10m`);
    expect(program).toMatchObject({ stopsignal: 'TERM', stopwaitsecs: '660', stopasgroup: 'false', killasgroup: 'true', autorestart: 'true' });
  });
});

function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) out[s[1]!] = section = {};
    else {
      const [k, ...v] = line.split('=');
      if (!section) throw new Error(`key outside a section: ${line}`);
      section[k!.trim()] = v.join('=').trim();
    }
  }
  return out;
}
