/**
 * Hook commands in the config. A command is an argument array (run directly, no shell) or a shell
 * string that says so (`shell: "…"`): a plain string is refused, because whether it would be split
 * on spaces or handed to a shell is exactly the ambiguity that breaks quoting and leaks secrets.
 *
 *   hooks:
 *     before:
 *       - [systemctl, stop, app]
 *       - run: [mysql, -e, "FLUSH TABLES"]
 *         timeout: 30s
 *     after:
 *       - run: [systemctl, start, app]
 *         on: always
 *       - shell: "curl -fsS https://hc-ping.com/$PING_ID"
 *         on: success
 */
import { z } from 'zod';
import { durationSchema } from '../time/duration.js';

export const HOOK_WHEN = ['success', 'failure', 'always'] as const;
export type HookWhen = (typeof HOOK_WHEN)[number];

export interface Hook {
  /** Argument array, run without a shell. */
  run?: string[];
  /** Shell command line, run with /bin/sh -c. */
  shell?: string;
  timeoutMs: number;
  on: HookWhen;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 5 * 60_000;

const argv = z.array(z.string()).min(1, 'give the command and its arguments, e.g. [systemctl, stop, app]');

const hookObject = z
  .object({
    run: argv.optional(),
    shell: z.string().min(1).optional(),
    timeout: durationSchema.optional(),
    on: z.enum(HOOK_WHEN).optional(),
  })
  .strict();

type HookIssue = { path: PropertyKey[]; message: string };

/** One hook entry; checked by hand so every mistake gets its own message instead of "Invalid input". */
function hookSchema(phase: 'before' | 'after') {
  const defaultOn: HookWhen = phase === 'before' ? 'always' : 'success';
  return z.unknown().transform((v, ctx): Hook => {
    const fail = (issues: HookIssue[]) => {
      for (const i of issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
      return z.NEVER;
    };
    if (typeof v === 'string') return fail([{ path: [], message: `write [${v.split(/\s+/).join(', ')}] (no shell) or shell: "${v}"` }]);
    if (Array.isArray(v)) {
      const r = argv.safeParse(v);
      if (!r.success) return fail(r.error.issues);
      return { run: r.data, timeoutMs: DEFAULT_HOOK_TIMEOUT_MS, on: defaultOn };
    }
    if (v !== null && typeof v === 'object' && typeof (v as { run?: unknown }).run === 'string') {
      return fail([{ path: ['run'], message: 'run takes an argument array ([cmd, arg, …]); for a shell command line write shell: "…"' }]);
    }
    const r = hookObject.safeParse(v);
    if (!r.success) return fail(r.error.issues);
    const h = r.data;
    if ((h.run === undefined) === (h.shell === undefined)) return fail([{ path: [], message: 'give exactly one of run: [cmd, arg, …] or shell: "…"' }]);
    if (phase === 'before' && h.on !== undefined) return fail([{ path: ['on'], message: 'only after hooks take on:' }]);
    return {
      ...(h.run ? { run: h.run } : {}),
      ...(h.shell !== undefined ? { shell: h.shell } : {}),
      timeoutMs: h.timeout ?? DEFAULT_HOOK_TIMEOUT_MS,
      on: h.on ?? defaultOn,
    };
  });
}

export const hooksSchema = z
  .object({
    /** Run in order before the backup; the first failure aborts the run before anything is written. */
    before: z.array(hookSchema('before')).optional(),
    /** Run in order after the backup, by outcome (default on: success). */
    after: z.array(hookSchema('after')).optional(),
  })
  .strict();

export interface Hooks {
  before: Hook[];
  after: Hook[];
}
