/**
 * Samples the command line of every process on the host (/proc/<pid>/cmdline, what `ps` shows)
 * while a test runs, and reports any that holds a secret. A secret in argv is readable by every
 * user of the machine for as long as the process runs (DESIGN §5: no password on any command line).
 *
 *   const sampler = startArgvSampler({ secrets: [password] });
 *   await runBk([...]);
 *   const report = await sampler.stop();
 *   expect(report.leaks).toEqual([]);
 *   expect(report.saw('pg_dump')).toBe(true);   // the tool ran while we watched: the check meant something
 *
 * Short-lived tools can start and exit between two samples; `saw()` lets a test prove the sampler
 * caught the tool it cares about, so a passing check is not a vacuous one.
 */
import { readdir, readFile } from 'node:fs/promises';

export interface ArgvLeak {
  pid: number;
  comm: string;
  /** The command line, with the secret replaced by «SECRET» so the report itself leaks nothing. */
  argv: string;
}

export interface ArgvReport {
  samples: number;
  /** Distinct processes seen (pid + start of argv). */
  processesSeen: number;
  leaks: ArgvLeak[];
  /** True when a process whose comm or argv[0] basename is `name` was seen. */
  saw(name: string): boolean;
  /** The names of everything seen (comm), for failure messages. */
  names(): string[];
}

export interface ArgvSampler {
  stop(): Promise<ArgvReport>;
}

export interface ArgvSamplerOptions {
  secrets: readonly string[];
  intervalMs?: number;
}

/** Forms a secret can take on a command line: as is, and percent-encoded inside a URL. */
function forms(secret: string): string[] {
  return [...new Set([secret, encodeURIComponent(secret)])];
}

export function startArgvSampler(options: ArgvSamplerOptions): ArgvSampler {
  const secrets = options.secrets.filter((s) => s.length > 0).flatMap(forms);
  const interval = options.intervalMs ?? 15;
  const seen = new Set<string>();
  const names = new Set<string>();
  const leaks = new Map<string, ArgvLeak>();
  let samples = 0;
  let running = true;

  const sampleOnce = async (): Promise<void> => {
    const pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
    await Promise.all(
      pids.map(async (pid) => {
        const [raw, comm] = await Promise.all([
          readFile(`/proc/${pid}/cmdline`).catch(() => undefined),
          readFile(`/proc/${pid}/comm`, 'utf8').catch(() => ''),
        ]);
        if (!raw || raw.length === 0) return;
        const argv = raw.toString('utf8').split('\0').filter(Boolean);
        const name = comm.trim();
        names.add(name);
        if (argv[0]) names.add(argv[0].slice(argv[0].lastIndexOf('/') + 1));
        seen.add(`${pid}:${argv.slice(0, 3).join(' ')}`);
        const line = argv.join(' ');
        for (const s of secrets) {
          if (line.includes(s)) leaks.set(`${pid}:${line}`, { pid: Number(pid), comm: name, argv: line.split(s).join('«SECRET»') });
        }
      }),
    );
    samples++;
  };

  const loop = (async () => {
    while (running) {
      await sampleOnce().catch(() => undefined);
      await new Promise((r) => setTimeout(r, interval));
    }
  })();

  return {
    async stop(): Promise<ArgvReport> {
      running = false;
      await loop;
      return {
        samples,
        processesSeen: seen.size,
        leaks: [...leaks.values()],
        saw: (name) => names.has(name),
        names: () => [...names].sort(),
      };
    },
  };
}
