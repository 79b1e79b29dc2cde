/**
 * Structured logs on stderr: JSON lines for log shippers, or short readable lines on a terminal.
 * Every line passes through secret redaction. stdout is reserved for command results.
 */
import { redact } from './secrets.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFormat = 'json' | 'pretty';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line (target, storage, step). */
  child(fields: LogFields): Logger;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  write?: (line: string) => void;
  clock?: () => Date;
}

export function createLogger(options: LoggerOptions, bound: LogFields = {}): Logger {
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const clock = options.clock ?? (() => new Date());
  const emit = (level: Exclude<LogLevel, 'silent'>, msg: string, fields: LogFields = {}) => {
    if (rank[level] < rank[options.level]) return;
    const all = { ...bound, ...fields };
    if (options.format === 'json') {
      write(`${redact(JSON.stringify({ level, time: clock().toISOString(), msg, ...all }))}\n`);
    } else {
      const ctx = [all.target, all.storage, all.step].filter((v) => v !== undefined).join('/');
      const rest = Object.entries(all)
        .filter(([k]) => !['target', 'storage', 'step'].includes(k))
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      const tag = level === 'info' ? '' : `${level}: `;
      write(`${redact(`${tag}${ctx ? `[${ctx}] ` : ''}${msg}${rest ? ` ${rest}` : ''}`)}\n`);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

export const silentLogger: Logger = createLogger({ level: 'silent', format: 'json', write: () => undefined });
