/**
 * `npm run bench`: bk against the shell pipelines it replaces, side by side, on the same data, in
 * one run. Creates its data in throwaway servers (test/harness), times several rounds of each case,
 * and prints medians, ratios and peak RSS; the table is also written as JSON to bench/results/.
 *
 * Environment:
 *   BENCH_SCALE   data size factor (1 = ≥ 500 MB PostgreSQL and MariaDB dumps, 1 M Redis keys,
 *                 40,000 files); 0.1 gives a quick smoke run.
 *   BENCH_ROUNDS  rounds per case (default 3).
 *   BENCH_ONLY    comma list of sections: pg,mysql,redis,files,s3,restore,rss,cli,list
 *
 * restic, when installed, is timed beside each backup (`restic backup --stdin` for the dumps), and
 * so is each hand pipeline with the two sha256 sums bk records (openssl, fed through tee).
 */
import { execa } from 'execa';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMariadb, startPostgres, startRedis, startS3, makeTmpDir, rmrf } from '../test/harness/index.js';
import { cleanEnv } from '../test/harness/env.js';
import { writeManyManifests } from '../test/retention/synthetic.js';
import { S3Storage } from '../src/storage/s3.js';
import { s3OptionsSchema } from '../src/storage/s3-config.js';
import { generateFiles, seedMariadb, seedPostgres, seedRedis } from './seed.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BK = join(ROOT, 'bin/bk.js');
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ONLY = process.env.BENCH_ONLY?.split(',');
const wanted = (section: string) => !ONLY || ONLY.includes(section);

interface Sample {
  seconds: number;
  peakRssMiB: number;
  /** Largest file seen in the bk child's TMPDIR while it ran. */
  maxTempBytes?: number;
  outBytes?: number;
}

interface Row {
  section: string;
  case: string;
  median: number;
  ratio?: number;
  ratioTo?: string;
  peakRssMiB: number;
  outMB?: number;
  note?: string;
}

const rows: Row[] = [];

interface Case {
  name: string;
  run: () => Promise<Sample>;
  cleanup?: () => Promise<void>;
}

/** Runs a command under /usr/bin/time; returns wall seconds and the peak RSS of the largest process. */
async function timed(argv: string[], env: Record<string, string>, tmp?: string): Promise<Sample> {
  const watcher = tmp ? watchTemp(tmp) : undefined;
  const started = process.hrtime.bigint();
  const res = await execa('/usr/bin/time', ['-f', 'BENCH_RSS_KB=%M', ...argv], {
    env: cleanEnv({ ...env, ...(tmp ? { TMPDIR: tmp } : {}) }),
    extendEnv: false,
    reject: false,
    stdout: 'ignore',
    stderr: 'pipe',
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const maxTempBytes = watcher ? await watcher.stop() : undefined;
  const m = /BENCH_RSS_KB=(\d+)/.exec(String(res.stderr));
  if (res.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${res.exitCode}): ${String(res.stderr).slice(-2000)}`);
  return { seconds, peakRssMiB: m ? Number(m[1]) / 1024 : NaN, maxTempBytes };
}

const sh = (script: string): string[] => ['bash', '-o', 'pipefail', '-c', script];

function watchTemp(dir: string): { stop(): Promise<number> } {
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      max = Math.max(max, await dirBytes(dir));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return max;
    },
  };
}

async function dirBytes(dir: string): Promise<number> {
  let largest = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (e.isFile()) largest = Math.max(largest, (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size);
  }
  return largest;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs each case ROUNDS times, interleaved so load drifts hit every case alike. */
async function compare(
  section: string,
  cases: Case[],
  baseline: string,
  extra: Record<string, string> = {},
): Promise<void> {
  const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) {
      const s = await c.run();
      samples.get(c.name)!.push(s);
      await c.cleanup?.();
      process.stderr.write(`  ${section} / ${c.name}: ${s.seconds.toFixed(2)} s, ${s.peakRssMiB.toFixed(0)} MiB\n`);
    }
  }
  const base = median(samples.get(baseline)!.map((s) => s.seconds));
  for (const c of cases) {
    const ss = samples.get(c.name)!;
    const med = median(ss.map((s) => s.seconds));
    const temp = Math.max(...ss.map((s) => s.maxTempBytes ?? 0));
    rows.push({
      section,
      case: c.name,
      median: med,
      ratio: med / base,
      ratioTo: baseline,
      peakRssMiB: Math.max(...ss.map((s) => s.peakRssMiB)),
      ...(ss[0]!.outBytes !== undefined ? { outMB: ss[0]!.outBytes! / 1e6 } : {}),
      ...(extra[c.name] ? { note: extra[c.name] } : {}),
      ...(temp > 0 ? { note: `${extra[c.name] ?? ''} largest temp file ${(temp / 1048576).toFixed(2)} MiB`.trim() } : {}),
    });
  }
}

/**
 * restic, when installed, as a case: `script` backs up into a repository made new for each round
 * (restic's first run, as bk's is a new archive; restic ≥ 0.14 compresses with zstd). None when
 * restic is missing.
 */
async function resticCase(work: string, name: string, script: string, env: Record<string, string>): Promise<Case[]> {
  if ((await execa('restic', ['version'], { reject: false })).exitCode !== 0) return [];
  const repo = join(work, 'restic');
  const resticEnv = { ...env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: join(work, 'restic-cache') };
  const clean = async () => {
    await rm(repo, { recursive: true, force: true });
    await rm(resticEnv.RESTIC_CACHE_DIR, { recursive: true, force: true });
  };
  return [
    {
      name,
      run: async () => {
        await clean();
        await execa('restic', ['init', '-q'], { env: cleanEnv(resticEnv), extendEnv: false });
        return timed(sh(script), resticEnv);
      },
      cleanup: clean,
    },
  ];
}

/**
 * The hand pipeline plus the two checksums a bk manifest records (sha256 of the dump and of the
 * archive), as a careful script would add them: `tee` into OpenSSL's sha256, which uses the CPU's
 * SHA extensions (coreutils' sha256sum took 2.07 s for the 580 MB MariaDB dump, OpenSSL 0.62 s).
 * It shows what the checksums alone cost the pipeline on this machine. None without openssl.
 */
async function checksummedCase(name: string, dump: string, file: string, env: Record<string, string>, cleanup: () => Promise<void>): Promise<Case[]> {
  if ((await execa('openssl', ['version'], { reject: false })).exitCode !== 0) return [];
  const d = `${file}.sha256`;
  const script = [
    'set -e',
    `mkdir -p ${d} && mkfifo ${d}/raw ${d}/stored`,
    `openssl dgst -sha256 -r < ${d}/raw > ${d}/raw.txt & a=$!`,
    `openssl dgst -sha256 -r < ${d}/stored > ${d}/stored.txt & b=$!`,
    `${dump} | tee ${d}/raw | zstd -q -3 -T0 | tee ${d}/stored > ${file}`,
    'wait $a $b',
  ].join('\n');
  return [{ name, run: () => timed(sh(script), env), cleanup }];
}

/** Writes a config (outside the dirs the cases clean) and returns its path. */
async function bkConfig(dir: string, name: string, targets: Record<string, unknown>, storages: Record<string, unknown>): Promise<string> {
  const { stringify } = await import('yaml');
  await mkdir(join(dir, 'cfg'), { recursive: true });
  const path = join(dir, 'cfg', `${name}.yaml`);
  await writeFile(path, stringify({ storages, targets }), { mode: 0o600 });
  return path;
}

async function main(): Promise<void> {
  const work = await makeTmpDir('bk-bench-');
  const repo = join(work, 'repo');
  const out = join(work, 'out');
  const bkTmp = join(work, 'bk-tmp');
  await mkdir(out);
  await mkdir(bkTmp);
  const cleanRepo = async () => {
    await rm(repo, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
    await mkdir(out);
  };
  const storages = { local: { type: 'local', path: repo } };
  console.error(`bench: scale ${SCALE}, ${ROUNDS} rounds, work dir ${work}`);

  if (wanted('cli')) {
    await compare('cli', [{ name: 'bk --help', run: () => timed(['node', BK, '--help'], {}) }], 'bk --help');
  }

  if (wanted('list')) {
    // The catalog of a target backed up hourly for six weeks, in S3: listed whole, every manifest read.
    const s3 = await startS3({ buckets: ['bench'] });
    try {
      const offsite = { type: 's3', bucket: 'bench', prefix: 'many', endpoint: s3.endpoint, region: s3.region, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey };
      await writeManyManifests(new S3Storage('offsite', s3OptionsSchema.parse(offsite)), 'db', 1000);
      const cfg = await bkConfig(work, 'list', {}, { offsite });
      // Cold: a machine that never listed this storage (empty manifest cache); warm: the next run.
      const cold = join(work, 'cache-cold');
      const warm = { BK_CACHE_DIR: join(work, 'cache-warm') };
      await execa('node', [BK, '-c', cfg, '--json', 'list'], { env: cleanEnv(warm), extendEnv: false });
      await compare(
        'catalog in S3 (s3rver on this machine)',
        [
          { name: 'bk list, 1,000 backups (cold cache)', run: () => timed(['node', BK, '-c', cfg, '--json', 'list'], { BK_CACHE_DIR: cold }), cleanup: () => rm(cold, { recursive: true, force: true }) },
          { name: 'bk list, 1,000 backups', run: () => timed(['node', BK, '-c', cfg, '--json', 'list'], warm) },
        ],
        'bk list, 1,000 backups (cold cache)',
      );
    } finally {
      await s3.stop();
    }
  }

  if (wanted('pg') || wanted('restore') || wanted('s3') || wanted('rss')) {
    const pg = await startPostgres();
    try {
      console.error('bench: seeding PostgreSQL');
      const dumpMB = await seedPostgres(pg, 'bench', SCALE);
      const env = { PGPASSWORD: pg.bkPassword, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.bkUser, PGDATABASE: 'bench' };
      const cfg = await bkConfig(work, 'pg', { pg: { driver: 'postgres', host: pg.host, port: pg.port, user: pg.bkUser, password: '${BENCH_PGPASSWORD}', database: 'bench' } }, storages);
      const bkEnv = { BENCH_PGPASSWORD: pg.bkPassword };
      if (wanted('pg')) {
        await compare(
          `postgres (${dumpMB.toFixed(0)} MB plain dump)`,
          [
            { name: 'pg_dump -Fc -Z0 > /dev/null (limit)', run: () => timed(sh('pg_dump -Fc -Z0 > /dev/null'), env) },
            { name: 'pg_dump -Fc -Z0 | zstd -3 -T0 > f', run: () => timed(sh(`pg_dump -Fc -Z0 | zstd -q -3 -T0 > ${out}/f.zst`), env), cleanup: cleanRepo },
            ...(await checksummedCase('pg_dump -Fc -Z0 | zstd -3 -T0 > f, + 2 × sha256', 'pg_dump -Fc -Z0', `${out}/f.zst`, env, cleanRepo)),
            { name: 'pg_dump | gzip > f', run: () => timed(sh(`pg_dump | gzip > ${out}/f.gz`), env), cleanup: cleanRepo },
            { name: 'pg_dump -Fc > f', run: () => timed(sh(`pg_dump -Fc > ${out}/f.dump`), env), cleanup: cleanRepo },
            { name: 'bk backup pg (local, zstd)', run: () => timed(['node', BK, '-c', cfg, 'backup', 'pg', '--quiet'], bkEnv, bkTmp), cleanup: cleanRepo },
            ...(await resticCase(work, 'pg_dump -Fc -Z0 | restic backup --stdin', 'pg_dump -Fc -Z0 | restic backup -q --stdin --stdin-filename bench.pgdump', env)),
          ],
          'pg_dump -Fc -Z0 | zstd -3 -T0 > f',
        );
      }
      if (wanted('restore')) {
        // One backup and one hand-made archive of the same dump, restored into fresh databases.
        await execa('node', [BK, '-c', cfg, 'backup', 'pg', '--quiet'], { env: cleanEnv(bkEnv), extendEnv: false });
        await execa('bash', ['-o', 'pipefail', '-c', `pg_dump -Fc -Z0 | zstd -q -3 -T0 > ${work}/hand.pgdump.zst; pg_dump | zstd -q -3 -T0 > ${work}/hand.sql.zst`], { env: cleanEnv(env), extendEnv: false });
        let n = 0;
        const fresh = async () => {
          const db = `restore_${n++}`;
          await pg.psql(`CREATE DATABASE ${db}`);
          return db;
        };
        const drop = async () => {
          for (const db of (await pg.psql(`SELECT datname FROM pg_database WHERE datname LIKE 'restore_%'`)).split('\n').filter(Boolean)) {
            await pg.psql(`DROP DATABASE ${db}`);
          }
        };
        await compare(
          'postgres restore',
          [
            { name: 'zstd -dc f.sql.zst | psql', run: async () => timed(sh(`zstd -dc ${work}/hand.sql.zst | psql -q -v ON_ERROR_STOP=1 -d ${await fresh()} > /dev/null`), env), cleanup: drop },
            { name: 'zstd -dc f.pgdump.zst | pg_restore', run: async () => timed(sh(`zstd -dc ${work}/hand.pgdump.zst | pg_restore --exit-on-error -d ${await fresh()}`), env), cleanup: drop },
            { name: 'bk restore pg --to db', run: async () => timed(['node', BK, '-c', cfg, 'restore', 'pg', '--to', await fresh(), '--yes', '--quiet'], bkEnv, bkTmp), cleanup: drop },
          ],
          'zstd -dc f.pgdump.zst | pg_restore',
        );
        await cleanRepo();
      }
      if (wanted('s3')) {
        const s3 = await startS3({ buckets: ['bench'] });
        try {
          const s3cfg = await bkConfig(
            work,
            'pg-s3',
            { pg: { driver: 'postgres', host: pg.host, port: pg.port, user: pg.bkUser, password: '${BENCH_PGPASSWORD}', database: 'bench' } },
            { offsite: { type: 's3', bucket: 'bench', prefix: 'bk', endpoint: s3.endpoint, region: s3.region, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey } },
          );
          await compare(
            'postgres to S3 (s3rver on this machine)',
            [
              { name: 'bk backup pg (local)', run: () => timed(['node', BK, '-c', cfg, 'backup', 'pg', '--quiet'], bkEnv, bkTmp), cleanup: cleanRepo },
              { name: 'bk backup pg (s3)', run: () => timed(['node', BK, '-c', s3cfg, 'backup', 'pg', '--quiet'], bkEnv, bkTmp) },
            ],
            'bk backup pg (local)',
          );
        } finally {
          await s3.stop();
        }
      }
      if (wanted('rss')) {
        // The same backup at a quarter of the data: peak RSS must not follow the size.
        await seedPostgres(pg, 'bench_small', SCALE / 4);
        const small = await bkConfig(work, 'pg-small', { pg: { driver: 'postgres', host: pg.host, port: pg.port, user: pg.bkUser, password: '${BENCH_PGPASSWORD}', database: 'bench_small' } }, storages);
        await compare(
          'peak RSS at two sizes (postgres, local)',
          [
            { name: 'bk backup pg (1/4 size)', run: () => timed(['node', BK, '-c', small, 'backup', 'pg', '--quiet'], bkEnv, bkTmp), cleanup: cleanRepo },
            { name: 'bk backup pg (full size)', run: () => timed(['node', BK, '-c', cfg, 'backup', 'pg', '--quiet'], bkEnv, bkTmp), cleanup: cleanRepo },
          ],
          'bk backup pg (1/4 size)',
        );
      }
    } finally {
      await pg.stop();
    }
  }

  if (wanted('mysql')) {
    const my = await startMariadb();
    try {
      console.error('bench: seeding MariaDB');
      const dumpMB = await seedMariadb(my, 'bench', SCALE);
      const defaults = join(work, 'my.cnf');
      await writeFile(defaults, `[client]\nhost=${my.host}\nport=${my.port}\nuser=${my.bkUser}\npassword="${my.bkPassword.replace(/"/g, '\\"')}"\n`, { mode: 0o600 });
      const dump = `mariadb-dump --defaults-extra-file=${defaults} --single-transaction --quick --routines --triggers --events --hex-blob bench`;
      const cfg = await bkConfig(work, 'my', { my: { driver: 'mysql', host: my.host, port: my.port, user: my.bkUser, password: '${BENCH_MYPASSWORD}', database: 'bench' } }, storages);
      const bkEnv = { BENCH_MYPASSWORD: my.bkPassword };
      await compare(
        `mariadb (${dumpMB.toFixed(0)} MB dump)`,
        [
          { name: 'mariadb-dump > /dev/null (limit)', run: () => timed(sh(`${dump} > /dev/null`), {}) },
          { name: 'mariadb-dump | zstd -3 -T0 > f', run: () => timed(sh(`${dump} | zstd -q -3 -T0 > ${out}/f.zst`), {}), cleanup: cleanRepo },
          ...(await checksummedCase('mariadb-dump | zstd -3 -T0 > f, + 2 × sha256', dump, `${out}/f.zst`, {}, cleanRepo)),
          { name: 'mariadb-dump | gzip > f', run: () => timed(sh(`${dump} | gzip > ${out}/f.gz`), {}), cleanup: cleanRepo },
          { name: 'bk backup my (local, zstd)', run: () => timed(['node', BK, '-c', cfg, 'backup', 'my', '--quiet'], bkEnv, bkTmp), cleanup: cleanRepo },
          ...(await resticCase(work, 'mariadb-dump | restic backup --stdin', `${dump} | restic backup -q --stdin --stdin-filename bench.sql`, {})),
        ],
        'mariadb-dump | zstd -3 -T0 > f',
      );
      await execa('bash', ['-o', 'pipefail', '-c', `${dump} | zstd -q -3 -T0 > ${work}/hand.sql.zst`]);
      await execa('node', [BK, '-c', cfg, 'backup', 'my', '--quiet'], { env: cleanEnv(bkEnv), extendEnv: false });
      let n = 0;
      await compare(
        'mariadb restore',
        [
          {
            name: 'zstd -dc f | mariadb',
            run: async () => {
              const db = `restore_${n++}`;
              await my.query(`CREATE DATABASE ${db}`);
              return timed(sh(`zstd -dc ${work}/hand.sql.zst | mariadb --defaults-extra-file=${defaults} ${db}`), {});
            },
          },
          {
            name: 'bk restore my --to db',
            run: async () => timed(['node', BK, '-c', cfg, 'restore', 'my', '--to', `restore_${n++}`, '--yes', '--quiet'], bkEnv, bkTmp),
          },
        ],
        'zstd -dc f | mariadb',
      );
      await cleanRepo();
    } finally {
      await my.stop();
    }
  }

  if (wanted('redis')) {
    const rd = await startRedis({ password: 'bench-redis-secret' });
    try {
      console.error('bench: seeding Redis');
      const keys = await seedRedis(rd, SCALE);
      const env = { REDISCLI_AUTH: rd.password! };
      const cfg = await bkConfig(work, 'rd', { rd: { driver: 'redis', host: rd.host, port: rd.port, password: '${BENCH_REDISPASSWORD}' } }, storages);
      const bkEnv = { BENCH_REDISPASSWORD: rd.password! };
      const cli = `redis-cli -h ${rd.host} -p ${rd.port} --no-auth-warning --rdb`;
      await compare(
        `redis (${keys} keys)`,
        [
          { name: 'redis-cli --rdb /dev/null (limit)', run: () => timed(sh(`${cli} ${out}/x.rdb > /dev/null && rm ${out}/x.rdb`), env) },
          { name: 'redis-cli --rdb - | zstd -3 -T0 > f', run: () => timed(sh(`${cli} - 2>/dev/null | zstd -q -3 -T0 > ${out}/f.zst`), env), cleanup: cleanRepo },
          ...(await checksummedCase('redis-cli --rdb - | zstd -3 -T0 > f, + 2 × sha256', `${cli} - 2>/dev/null`, `${out}/f.zst`, env, cleanRepo)),
          { name: 'redis-cli --rdb - | gzip > f', run: () => timed(sh(`${cli} - 2>/dev/null | gzip > ${out}/f.gz`), env), cleanup: cleanRepo },
          { name: 'bk backup rd (local, zstd)', run: () => timed(['node', BK, '-c', cfg, 'backup', 'rd', '--quiet'], bkEnv, bkTmp), cleanup: cleanRepo },
          ...(await resticCase(work, 'redis-cli --rdb - | restic backup --stdin', `${cli} - 2>/dev/null | restic backup -q --stdin --stdin-filename dump.rdb`, env)),
        ],
        'redis-cli --rdb - | zstd -3 -T0 > f',
      );
    } finally {
      await rd.stop();
    }
  }

  if (wanted('files')) {
    const tree = join(work, 'tree');
    console.error('bench: generating files');
    const { files, bytes } = await generateFiles(tree, SCALE);
    const cfg = await bkConfig(work, 'fs', { fs: { driver: 'files', source: tree } }, storages);
    const cases: Case[] = [
      { name: 'tar -cf - | zstd -T0 > f', run: () => timed(sh(`tar -C ${tree} -cf - . | zstd -q -3 -T0 > ${out}/f.tar.zst`), {}), cleanup: cleanRepo },
      ...(await checksummedCase('tar -cf - | zstd -T0 > f, + 2 × sha256', `tar -C ${tree} -cf - .`, `${out}/f.tar.zst`, {}, cleanRepo)),
      { name: 'tar -czf f', run: () => timed(sh(`tar -C ${tree} -czf ${out}/f.tgz .`), {}), cleanup: cleanRepo },
      { name: 'bk backup fs (local, zstd)', run: () => timed(['node', BK, '-c', cfg, 'backup', 'fs', '--quiet'], {}, bkTmp), cleanup: cleanRepo },
      ...(await resticCase(work, 'restic backup (first run)', `restic backup -q ${tree}`, {})),
    ];
    await compare(`files (${files} files, ${(bytes / 1e6).toFixed(0)} MB)`, cases, 'tar -cf - | zstd -T0 > f');
    await execa('node', [BK, '-c', cfg, 'backup', 'fs', '--quiet']);
    await execa('bash', ['-c', `tar -C ${tree} -cf - . | zstd -q -3 -T0 > ${work}/hand.tar.zst`]);
    await compare(
      'files restore',
      [
        { name: 'zstd -dc f | tar -x', run: () => timed(sh(`mkdir -p ${out}/x && zstd -dc ${work}/hand.tar.zst | tar -C ${out}/x -xpf -`), {}), cleanup: async () => rm(join(out, 'x'), { recursive: true, force: true }) },
        { name: 'bk restore fs --to dir', run: () => timed(['node', BK, '-c', cfg, 'restore', 'fs', '--to', join(out, 'y'), '--yes', '--quiet'], {}, bkTmp), cleanup: async () => rm(join(out, 'y'), { recursive: true, force: true }) },
      ],
      'zstd -dc f | tar -x',
    );
  }

  printTable();
  const resultsDir = join(ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const commit = await execa('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, reject: false });
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), commit: String(commit.stdout), scale: SCALE, rounds: ROUNDS, node: process.version, rows }, null, 2));
  console.error(`bench: results written to ${file}`);
  await rmrf(work);
}

function printTable(): void {
  const lines = [['section', 'case', 'median s', 'ratio', 'peak RSS MiB', 'note']];
  for (const r of rows) {
    lines.push([r.section, r.case, r.median.toFixed(2), r.ratio !== undefined ? `${r.ratio.toFixed(2)}×` : '', r.peakRssMiB.toFixed(0), r.note ?? '']);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(fmt(lines[0]!));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines.slice(1)) console.log(fmt(l));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
