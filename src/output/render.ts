/**
 * One display layer: a command returns data; here it becomes either one JSON document on stdout
 * (with a schemaVersion, for CI) or text. Logs never go to stdout.
 */
import { redact } from '../secrets.js';

export const SCHEMA_VERSION = 1;

export interface Output {
  json: boolean;
  write?: (s: string) => void;
}

export function render(out: Output, command: string, data: Record<string, unknown>, text: () => string): void {
  const write = out.write ?? ((s: string) => void process.stdout.write(s));
  if (out.json) {
    write(`${redact(JSON.stringify({ schemaVersion: SCHEMA_VERSION, command, ...data }, null, 2))}\n`);
  } else {
    const t = text();
    if (t) write(`${redact(t)}\n`);
  }
}
