/**
 * `--keep-last` … `--keep-within-yearly`: restic's forget flags, shared by `bk prune` and
 * `bk backup`. Given on the command line, they are the whole policy (config policies are ignored).
 */
import { BkError } from '../errors.js';
import { retentionConfigSchema, type RetentionConfig } from '../retention/config.js';
import { COUNT_FLAGS, DURATION_FLAGS } from './retention-options.js';

export type RetentionFlags = Partial<Record<`keep${string}`, string>> & { grace?: string };

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The policy given by flags, or undefined when no --keep-* flag was given. */
export function retentionFromFlags(flags: Record<string, unknown>): RetentionConfig | undefined {
  const raw: Record<string, unknown> = {};
  for (const f of COUNT_FLAGS) {
    const v = flags[camel(`keep-${f}`)];
    if (v === undefined) continue;
    if (v !== 'unlimited' && !/^\d+$/.test(String(v))) {
      throw new BkError('USAGE', `--keep-${f} ${String(v)}: use a count ≥ 0 or unlimited`);
    }
    raw[`keep_${f}`] = v === 'unlimited' ? 'unlimited' : Number(v);
  }
  for (const f of DURATION_FLAGS) {
    const v = flags[camel(`keep-${f}`)];
    if (v !== undefined) raw[`keep_${f.replace(/-/g, '_')}`] = v;
  }
  if (Object.keys(raw).length === 0) return undefined;
  const parsed = retentionConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BkError('USAGE', `--${String(issue.path[0]).replace(/_/g, '-')}: ${issue.message}`);
  }
  return parsed.data;
}
