/**
 * A spinner with bytes and rate on a terminal (ora); nothing otherwise — logs carry progress for
 * machines.
 *
 * ora is imported only when there is a terminal to spin on: loading it (with chalk, cli-spinners
 * and string-width) took 38 ms of every run, and the runs that matter most — cron, CI — have none.
 */
import { formatBytes, formatRate } from './format.js';

export interface Progress {
  update(bytes: number, elapsedMs: number): void;
  succeed(text: string): void;
  fail(text: string): void;
  stop(): void;
}

const none: Progress = { update: () => undefined, succeed: () => undefined, fail: () => undefined, stop: () => undefined };

export async function startProgress(enabled: boolean, label: string): Promise<Progress> {
  // A terminal that reports zero columns (some CI and `docker exec -t` ptys) makes ora clear
  // lines forever; there is nobody to watch a spinner there anyway.
  if (!enabled || !process.stderr.columns) return none;
  const { default: ora } = await import('ora');
  const spinner = ora({ text: label, stream: process.stderr }).start();
  return {
    update: (bytes, ms) => {
      spinner.text = `${label} ${formatBytes(bytes)} (${formatRate(bytes, ms / 1000)})`;
    },
    succeed: (t) => spinner.succeed(t),
    fail: (t) => spinner.fail(t),
    stop: () => spinner.stop(),
  };
}
