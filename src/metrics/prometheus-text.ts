/**
 * The Prometheus text exposition format, as much of it as bk writes and reads back: families with
 * HELP and TYPE lines, samples with escaped labels.
 */

/** Outcome labels of bk's run counters (backups and verifications). */
export const RUN_STATUSES = ['success', 'failure', 'interrupted'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export function renderFamily(name: string, type: 'gauge' | 'counter', help: string, samples: readonly Sample[]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const s of samples) {
    const labels = Object.entries(s.labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    lines.push(`${name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
  }
  return `${lines.join('\n')}\n`;
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const unescapeLabel = (v: string): string => v.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
const formatValue = (v: number): string => (Number.isInteger(v) ? String(v) : String(Number(v.toFixed(3))));

export function parseSample(line: string): { name: string; labels: Record<string, string>; value: number } | undefined {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)\s*$/.exec(line);
  if (!m) return undefined;
  const labels: Record<string, string> = {};
  for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = unescapeLabel(l[2]!);
  return { name: m[1]!, labels, value: Number(m[3]) };
}
