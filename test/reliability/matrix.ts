/**
 * The fault matrix: driver × storage × phase (backup, restore, prune) × fault, each case run
 * end to end through bin/bk.js, then judged by what DESIGN §5 promises:
 *
 * 1. the exit code is the right one for the fault (SIGKILL, 130, 1, or 0 when the store retried
 *    its way through);
 * 2. every listed backup passes `bk verify --all`, and nothing listed before went missing (prune
 *    excepted, and only what its policy removes);
 * 3. the objects of older backups are byte for byte what they were;
 * 4. after the next `bk prune --grace 0h` no temp file, incomplete upload, orphan archive or lock
 *    object is left;
 * 5. the next run of the same operation succeeds (a restore gives back exactly the source as it
 *    was when that backup was made).
 *
 * Cases are drawn with a seeded generator (seed printed; BK_FAULT_SEED repeats a run). By default
 * every fault kind runs at least once per file at a random phase, driver and point, plus a few
 * more at random; BK_FAULT_MATRIX=full runs every combination, BK_FAULT_CASES=n draws n.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runBk, type BkRun } from '../helpers/run-bk.js';
import { runWithFault, type FaultRunResult } from './fault-run.js';
import type { Kit, KitSpec, Phase } from './kits.js';
import { startArgvSampler } from './argv-sampler.js';
import { isAlive, isRunning, ownedDirsOf } from './proc-tree.js';
import type { Rng } from './seeded.js';
import type { SmallFs } from './small-fs.js';
import { backupsIn, strays, type ObjectDigest, type StorageView } from './storage-view.js';

export type FaultKind = 'kill-bk' | 'sigterm' | 'kill-tool' | 'server-stop' | 'disk-full' | 's3-error' | 's3-reset' | 's3-stall';
export const FAULT_KINDS: readonly FaultKind[] = ['kill-bk', 'sigterm', 'kill-tool', 'server-stop', 'disk-full', 's3-error', 's3-reset', 's3-stall'];
export const PHASES: readonly Phase[] = ['backup', 'restore', 'prune'];

export interface Case {
  kit: string;
  storage: string;
  phase: Phase;
  fault: FaultKind;
  /** Where in the work window to strike, 0 (start) to 1 (end). */
  point: number;
  /** A per-case seed for the fault's own choices (which tool, how many S3 requests, …). */
  seed: number;
}

export const caseName = (c: Case): string => `${c.kit} × ${c.storage}: ${c.fault} during ${c.phase}${c.point ? ` at ${Math.round(c.point * 100)}%` : ''}`;

/** How a test file reads the matrix knobs from the environment. */
export function matrixMode(defaultCount: number, env: NodeJS.ProcessEnv = process.env): { full: boolean; count: number; only?: string } {
  return { full: env.BK_FAULT_MATRIX === 'full', count: Number(env.BK_FAULT_CASES ?? defaultCount), ...(env.BK_FAULT_ONLY ? { only: env.BK_FAULT_ONLY } : {}) };
}

/** A storage under test: its view, and what can be done to it. */
export interface StorageUnderTest {
  view(kit: string): StorageView;
  /** The small filesystem the storage lives on (disk-full during backup). */
  smallFs?: SmallFs;
  /** Makes the next S3 requests fail, drop or stall (S3 storages only). */
  s3Fault?(kind: 's3-error' | 's3-reset' | 's3-stall', rng: Rng): string;
  /** Clears any S3 fault rule. */
  s3Clear?(): void;
}

export interface MatrixSetup {
  work: string;
  lockDir: string;
  storages: Record<string, StorageUnderTest>;
  /** The filesystem restores write to (disk-full during restore). */
  restoreFs?: SmallFs;
}

/** What a storage offers the matrix, known before anything starts (cases are drawn at collection). */
export interface StorageTraits {
  /** Lives on a filesystem the test can fill (root can mount tmpfs). */
  canFill: boolean;
  s3: boolean;
}

export function applicable(spec: KitSpec, storage: StorageTraits, restoreCanFill: boolean, phase: Phase, fault: FaultKind): boolean {
  switch (fault) {
    case 'kill-bk':
    case 'sigterm':
      return true;
    case 'kill-tool':
      return spec.tools[phase].length > 0;
    case 'server-stop':
      return spec.hasServer && phase !== 'prune';
    case 'disk-full':
      return phase === 'backup' ? storage.canFill : phase === 'restore' ? restoreCanFill && spec.restoresToDisk : false;
    case 's3-error':
    case 's3-reset':
    case 's3-stall':
      return storage.s3;
  }
}

/** Every applicable combination of kit, storage, phase and fault. */
export function combinations(specs: KitSpec[], storages: Record<string, StorageTraits>, restoreCanFill: boolean): Omit<Case, 'point' | 'seed'>[] {
  const out: Omit<Case, 'point' | 'seed'>[] = [];
  for (const spec of specs) {
    for (const [storage, traits] of Object.entries(storages)) {
      for (const phase of PHASES) {
        for (const fault of FAULT_KINDS) if (applicable(spec, traits, restoreCanFill, phase, fault)) out.push({ kit: spec.driver, storage, phase, fault });
      }
    }
  }
  return out;
}

/**
 * The cases of one run: `full` gives every applicable combination; otherwise each fault kind that
 * applies somewhere once (random phase, driver and storage), then random extras up to `count`.
 */
export function drawCases(rng: Rng, all: Omit<Case, 'point' | 'seed'>[], mode: { full: boolean; count: number; only?: string }): Case[] {
  // Points stop short of the very end: a fault after the work is done proves little.
  const withPoint = (c: Omit<Case, 'point' | 'seed'>): Case => ({ ...c, point: 0.9 * rng.next(), seed: rng.int(0, 2 ** 31) });
  const combos = mode.only ? all.filter((c) => caseName({ ...c, point: 0, seed: 0 }).includes(mode.only!)) : all;
  if (mode.full || mode.only) return combos.map(withPoint);
  const out: Case[] = [];
  const byFault = new Map<FaultKind, Omit<Case, 'point' | 'seed'>[]>();
  for (const c of combos) byFault.set(c.fault, [...(byFault.get(c.fault) ?? []), c]);
  for (const list of byFault.values()) out.push(withPoint(rng.pick(list)));
  const rest = rng.shuffle(combos.filter((c) => !out.some((o) => o.kit === c.kit && o.storage === c.storage && o.phase === c.phase && o.fault === c.fault)));
  while (out.length < mode.count && rest.length > 0) out.push(withPoint(rest.shift()!));
  // Grouped by driver and storage, so servers start once and runs share repositories.
  return out.sort((a, b) => `${a.kit}${a.storage}`.localeCompare(`${b.kit}${b.storage}`));
}

interface VerifyJson {
  results: { target: string; id: string; storage: string; ok: boolean; error: string | null }[];
}

const STACK = /internal error|\n\s+at /;
/** Each deletion waits this long, so a prune lasts long enough to be struck between two deletes. */
const PRUNE_ENV = { BK_TEST_PRUNE_DELAY_MS: '150' };
/** Prune logs nothing before its first removal; the window runs from there. */
const PRUNE_MARKER = /"msg":"backup removed"/;

/** One driver on one storage: its config, repository and what each backup contained. */
export class Pair {
  readonly config: string;
  /** Source digest at each backup id, to check restores against. */
  readonly digests = new Map<string, string>();
  readonly windows = new Map<Phase, number>();
  /** Stored size of the last backup: backup faults strike when a share of it has been written. */
  lastStoredBytes = 0;
  private readonly env: Record<string, string>;

  constructor(
    readonly kit: Kit,
    readonly storageName: string,
    readonly view: StorageView,
    private readonly setup: MatrixSetup,
    readonly label: string,
  ) {
    this.config = join(setup.work, `${kit.driver}-${storageName}.yaml`);
    this.env = { BK_LOCK_DIR: setup.lockDir, TZ: 'UTC' };
  }

  async writeConfig(): Promise<void> {
    const yaml = [
      'storages:',
      `  ${this.view.name}:`,
      ...this.view.configLines().map((l) => `    ${l}`),
      'targets:',
      `  ${this.kit.driver}:`,
      ...this.kit.targetLines().map((l) => `    ${l}`),
      '',
    ].join('\n');
    await mkdir(this.setup.work, { recursive: true });
    await writeFile(this.config, yaml, { mode: 0o600 });
  }

  bk(args: string[], extraEnv: Record<string, string> = {}): Promise<BkRun> {
    return runBk([...args, '--config', this.config], { env: { ...this.env, ...extraEnv } });
  }

  faultEnv(extra: Record<string, string> = {}): Record<string, string> {
    return { ...this.env, ...extra };
  }

  /** `bk verify --all`: every listed backup must pass; returns the listed ids. */
  async verifyAll(why: string): Promise<string[]> {
    const r = await this.bk(['verify', '--all', '--json']);
    expect(r.exitCode, `${why}: bk verify --all\n${r.stdout}\n${r.stderr}`).toBe(0);
    const results = r.json<VerifyJson>().results;
    expect(results.filter((x) => !x.ok), `${why}`).toEqual([]);
    return [...new Set(results.map((x) => x.id))].sort();
  }

  /** A clean backup; records what the source held. */
  async backup(rng: Rng, why: string): Promise<string> {
    await this.kit.change(rng);
    const digest = await this.kit.sourceDigest();
    const r = await runWithFault({ args: ['backup', this.kit.driver, '--json', '--log-format', 'json', '--log-level', 'info', '--config', this.config], env: this.env, marker: /"msg":"backup started"/, delayMs: 0 });
    expect(r.exitCode, `${why}: bk backup\n${r.stdout}\n${r.stderr}`).toBe(0);
    const result = (JSON.parse(r.stdout) as { results: { id: string; bytes: number }[] }).results[0]!;
    const id = result.id;
    this.lastStoredBytes = result.bytes;
    this.digests.set(id, digest);
    if (r.windowMs !== undefined) this.windows.set('backup', Math.max(this.windows.get('backup') ?? 0, r.windowMs));
    return id;
  }

  async restore(id: string, why: string): Promise<void> {
    const r = await runWithFault({
      args: ['restore', this.kit.driver, '--id', id, ...this.kit.restoreArgs(), '--yes', '--log-format', 'json', '--log-level', 'info', '--config', this.config],
      env: this.env,
      marker: /"msg":"checking archive (before|while) restor/,
      delayMs: 0,
    });
    expect(r.exitCode, `${why}: bk restore\n${r.stdout}\n${r.stderr}`).toBe(0);
    expect(await this.kit.restoredDigest(), `${why}: restored data differs from the source at backup ${id}`).toBe(this.digests.get(id));
    expect(await this.kit.restoreLeftovers(), `${why}: restore leftovers`).toEqual([]);
    if (r.windowMs !== undefined) this.windows.set('restore', Math.max(this.windows.get('restore') ?? 0, r.windowMs));
  }

  /** Enough backups for `--keep-last 2` to remove four: clones of the newest, dated earlier. */
  async fillForPrune(): Promise<void> {
    const objects = await this.view.objects();
    const listed = await this.listed();
    const newest = [...backupsIn(objects).keys()].sort().at(-1)!;
    const base = Date.parse(`${listed[0]!.slice(0, 4)}-${listed[0]!.slice(4, 6)}-${listed[0]!.slice(6, 8)}T00:00:00Z`) - 86_400_000;
    for (let i = listed.length; i < 6; i++) await this.view.cloneBackup(newest, new Date(base - i * 3_600_000));
  }

  /** Measures how long the work of a phase lasts, with a clean run, so fault points fall inside it. */
  async calibrate(phase: Phase, rng: Rng): Promise<void> {
    if (this.windows.has(phase)) return;
    if (phase === 'backup') await this.backup(rng, 'calibration');
    else if (phase === 'restore') await this.restore((await this.listed()).filter((x) => this.digests.has(x)).at(-1)!, 'calibration');
    else {
      await this.fillForPrune();
      const r = await runWithFault({ args: ['prune', this.kit.driver, '--keep-last', '2', '--log-format', 'json', '--log-level', 'info', '--config', this.config], env: this.faultEnv(PRUNE_ENV), marker: PRUNE_MARKER, delayMs: 0 });
      expect(r.exitCode, `${this.label}: calibration prune\n${r.stdout}\n${r.stderr}`).toBe(0);
      this.windows.set('prune', r.windowMs ?? 1000);
    }
  }

  /** The listed backups, newest last (ids sort by time). */
  async listed(): Promise<string[]> {
    return [...backupsIn(await this.view.objects()).values()].map((k) => k.slice(k.lastIndexOf('/') + 1)).sort();
  }

  /** `bk prune --grace 0h` with a bound on kept backups; then nothing stray may remain. */
  async pruneClean(why: string, keepLast = 3): Promise<void> {
    const r = await this.bk(['prune', '--keep-last', String(keepLast), '--grace', '0h']);
    expect(r.exitCode, `${why}: bk prune\n${r.stdout}\n${r.stderr}`).toBe(0);
    expect(await this.view.incomplete(), `${why}: temp files or uploads after prune`).toEqual([]);
    expect(strays(await this.view.objects()), `${why}: orphan archives or locks after prune`).toEqual([]);
  }
}

export interface CaseContext {
  pair: Pair;
  rng: Rng;
  label: string;
}

function expectExit(label: string, c: Case, r: FaultRunResult, kit: Kit): void {
  const out = `${label}\nstruck: ${r.struck ?? 'no (bk finished first)'}${r.struckBeforeExitMs !== undefined ? ` ${r.struckBeforeExitMs} ms before exit` : ''}\nexit ${r.exitCode} signal ${r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  expect(r.stderr, `${out}\nno stack traces`).not.toMatch(STACK);
  if (r.struck === undefined) {
    expect(r.exitCode, out).toBe(0);
    return;
  }
  switch (c.fault) {
    case 'kill-bk':
      expect(r.signal, out).toBe('SIGKILL');
      expect(r.lingering.map((p) => p.comm), `${out}\ntools orphaned by kill -9 must stop on their own`).toEqual([]);
      break;
    case 'sigterm':
      // bk may have finished its work as the signal came (it was running when struck): then it ends as it would have.
      if (r.exitCode === 0 && r.struckBeforeExitMs !== undefined && r.struckBeforeExitMs < 250) break;
      expect(r.exitCode, out).toBe(130);
      break;
    case 's3-error':
    case 's3-reset':
    case 's3-stall':
      // Retries may carry the run through; if not, it fails like any storage error.
      expect([0, 1], out).toContain(r.exitCode);
      break;
    case 'server-stop':
      // A dump the tool had already read in full is a complete backup (proved below by restoring it).
      expect([0, 1], out).toContain(r.exitCode);
      break;
    case 'disk-full':
      // A disk that fills after the last write changes nothing; a success is checked below.
      expect([0, 1], out).toContain(r.exitCode);
      break;
    case 'kill-tool': {
      const comm = /^kill -9 (\S+)/.exec(r.struck)?.[1];
      // A helper's loss may leave a good result. So may any tool's when it was struck as it exited
      // on its own: between its exit and its reaping it takes a SIGKILL without effect (seen: tar
      // struck 163 ms before bk's exit 0, with the restore whole). An exit 0 is proved afterwards:
      // the destination, or the new backup restored, must equal the source.
      const helper = comm !== undefined && kit.helpers?.[c.phase]?.includes(comm);
      const atItsEnd = r.exitCode === 0 && r.struckBeforeExitMs !== undefined && r.struckBeforeExitMs < 1000;
      if (helper || atItsEnd) expect([0, 1], out).toContain(r.exitCode);
      else expect(r.exitCode, out).toBe(1);
      break;
    }
    default:
      expect(r.exitCode, out).toBe(1);
  }
}

/** Working directories of the struck bk (staging, passfiles, temp servers' data) are gone after the next run. */
function expectNoOwnedDirs(label: string, pair: Pair, r: FaultRunResult): void {
  expect(ownedDirsOf([tmpdir(), ...pair.kit.workDirs()], [r.pid]), `${label}: working directories of the struck bk left after the next run`).toEqual([]);
}

/** Backups listed before must be there still, with the same bytes (except those `removed`). */
function expectOlderUnchanged(label: string, before: Map<string, ObjectDigest>, after: Map<string, ObjectDigest>, removed: Set<string> = new Set()): void {
  for (const [manifest, stem] of backupsIn(before)) {
    const id = stem.slice(stem.lastIndexOf('/') + 1);
    if (removed.has(id)) continue;
    for (const [key, digest] of before) {
      if (key !== manifest && !key.startsWith(`${stem}.`)) continue;
      expect(after.get(key), `${label}: ${key} of an older backup changed or vanished`).toEqual(digest);
    }
  }
}

export async function strike(c: Case, setup: MatrixSetup, pair: Pair, rng: Rng): Promise<(pid: number, exited: () => boolean) => Promise<string | undefined>> {
  const storage = setup.storages[c.storage]!;
  switch (c.fault) {
    case 'kill-bk':
      return async (pid) => (tryKill(pid, 'SIGKILL') ? 'kill -9 bk' : undefined);
    case 'sigterm':
      return async (pid) => (tryKill(pid, 'SIGTERM') ? 'SIGTERM to bk' : undefined);
    case 'kill-tool': {
      const { waitForDescendant } = await import('./proc-tree.js');
      const tools = pair.kit.tools[c.phase];
      return async (pid, exited) => {
        // The tool named by the draw if it runs now, else whichever of the phase's tools shows up.
        const first = rng.pick(tools);
        const hit = (await waitForDescendant(pid, [first], exited, 1)) ?? (await waitForDescendant(pid, tools, exited));
        if (!hit || !tryKill(hit.pid, 'SIGKILL')) return undefined;
        return `kill -9 ${hit.comm} (pid ${hit.pid})`;
      };
    }
    case 'server-stop':
      return async () => {
        await pair.kit.server!.crash(c.phase);
        return 'database server killed';
      };
    case 'disk-full': {
      const fs = c.phase === 'backup' ? storage.smallFs! : setup.restoreFs!;
      return async () => ((await fs.fill()) ? `filesystem ${fs.dir} full` : undefined);
    }
    case 's3-error':
    case 's3-reset':
    case 's3-stall':
      return async () => storage.s3Fault!(c.fault as 's3-error', rng);
  }
}

/** Signals `pid` if it still runs; false when it has exited (a zombie would take the signal without effect). */
function tryKill(pid: number, signal: NodeJS.Signals): boolean {
  if (!isRunning(pid)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** After a fault: whatever it broke outside bk is mended (the operator's part), bk's part is judged. */
async function mend(c: Case, setup: MatrixSetup, pair: Pair, r: FaultRunResult): Promise<void> {
  const storage = setup.storages[c.storage]!;
  storage.s3Clear?.();
  await storage.smallFs?.relieve();
  await setup.restoreFs?.relieve();
  if (c.fault === 'server-stop' && r.struck) {
    await pair.kit.server!.recover();
    await pair.writeConfig();
  }
  for (const p of r.lingering) if (isAlive(p.pid)) tryKill(p.pid, 'SIGKILL');
}

export async function runCase(c: Case, setup: MatrixSetup, pair: Pair, rng: Rng, label: string): Promise<FaultRunResult> {
  // Every process's command line is watched while the faulted run goes: no secret may show.
  const sampler = pair.kit.secrets().length > 0 ? startArgvSampler({ secrets: pair.kit.secrets() }) : undefined;
  let r: FaultRunResult;
  try {
    r = await runCaseSampled(c, setup, pair, rng, label);
  } finally {
    const report = await sampler?.stop();
    expect(report?.leaks ?? [], `${label}: secrets in a command line`).toEqual([]);
  }
  return r;
}

async function runCaseSampled(c: Case, setup: MatrixSetup, pair: Pair, rng: Rng, label: string): Promise<FaultRunResult> {
  const window = pair.windows.get(c.phase) ?? 1000;
  const delayMs = Math.round(c.point * window);
  const common = ['--log-format', 'json', '--log-level', 'info', '--config', pair.config];
  const before = await pair.view.objects();
  const listedBefore = await pair.listed();
  let r: FaultRunResult;

  if (c.phase === 'backup') {
    await pair.kit.change(rng);
    const digest = await pair.kit.sourceDigest();
    // Strike once this share of the archive is in the storage (a temp file, uploaded parts). A
    // database server has long sent everything by then (zstd and the pipes hold megabytes), so
    // it is struck by time instead, early in the run.
    const want = Math.floor(c.point * pair.lastStoredBytes);
    // S3 shows progress only per completed part (5 MiB): too coarse for a small archive.
    const byTime = c.fault === 'server-stop' || setup.storages[c.storage]!.s3Fault !== undefined;
    r = await runWithFault({
      args: ['backup', pair.kit.driver, '--json', ...common],
      env: pair.faultEnv(),
      marker: /"msg":"backup started"/,
      delayMs: byTime ? Math.round(c.point * (c.fault === 'server-stop' ? 0.4 : 1) * (pair.windows.get('backup') ?? 1000)) : 0,
      ...(byTime ? {} : { ready: async () => (await pair.view.inProgressBytes()) >= want }),
      strike: await strike(c, setup, pair, rng),
    });
    await mend(c, setup, pair, r);
    expectExit(label, c, r, pair.kit);
    if (c.fault !== 'kill-bk' && c.fault !== 'server-stop') {
      // bk lived to clean up: its own temp objects are gone without waiting for a prune.
      expect(await pair.view.incomplete(), `${label}: temp objects left by a run that could clean up`).toEqual([]);
    }
    const listed = await pair.verifyAll(`${label}: after the fault`);
    expect(listed.filter((id) => !listedBefore.includes(id)).length, `${label}: at most the one new backup`).toBeLessThanOrEqual(1);
    expect(listedBefore.filter((id) => !listed.includes(id)), `${label}: older backups vanished`).toEqual([]);
    for (const id of listed) if (!listedBefore.includes(id)) pair.digests.set(id, digest);
    expectOlderUnchanged(label, before, await pair.view.objects());
    const added = listed.find((id) => !listedBefore.includes(id));
    if ((c.fault === 'server-stop' || c.fault === 'kill-tool') && r.struck && added) await pair.restore(added, `${label}: a backup that finished despite the fault restores whole`);
    await pair.pruneClean(`${label}: the next prune`);
    await pair.backup(rng, `${label}: the next backup`);
    expectNoOwnedDirs(label, pair, r);
  } else if (c.phase === 'restore') {
    const id = listedBefore.filter((x) => pair.digests.has(x)).at(-1)!;
    const destBefore = await pair.kit.restoredDigest().catch(() => 'absent');
    r = await runWithFault({
      args: ['restore', pair.kit.driver, '--id', id, ...pair.kit.restoreArgs(), '--yes', ...common],
      env: pair.faultEnv(),
      marker: /"msg":"checking archive (before|while) restor/,
      delayMs,
      strike: await strike(c, setup, pair, rng),
    });
    await mend(c, setup, pair, r);
    expectExit(label, c, r, pair.kit);
    // A restore reads; the storage is exactly as it was.
    expect(await pair.view.objects(), `${label}: a restore changed the storage`).toEqual(before);
    // A restore that says it succeeded restored everything.
    // (A crashed server was replaced by a fresh one: what it held is gone.)
    if (r.exitCode === 0 && !(c.fault === 'server-stop' && r.struck)) {
      expect(await pair.kit.restoredDigest(), `${label}: exit 0, but the destination differs from the backup`).toBe(pair.digests.get(id));
    }
    if (r.struck !== undefined && c.fault !== 'server-stop') {
      // Never a half-restored destination: as it was, or (struck after the end) the backup whole.
      // A restore that is not one transaction may only be cut after it logged that it starts
      // changing the destination (files: the move out of staging; redis: the FLUSHALL).
      const marker = pair.kit.restoreTouchMarker;
      if (marker === undefined || !marker.test(r.stderr)) {
        expect([destBefore, pair.digests.get(id)], `${label}: destination half restored`).toContain(await pair.kit.restoredDigest().catch(() => 'absent'));
      }
    }
    if (c.fault !== 'kill-bk') expect(await pair.kit.restoreLeftovers(), `${label}: staging left by a run that could clean up`).toEqual([]);
    await pair.verifyAll(`${label}: after the fault`);
    await pair.pruneClean(`${label}: the next prune`);
    await pair.restore(id, `${label}: the next restore`);
    expectNoOwnedDirs(label, pair, r);
  } else {
    await pair.fillForPrune();
    const full = await pair.view.objects();
    const all = await pair.listed();
    const keep = all.slice(-2);
    r = await runWithFault({
      args: ['prune', pair.kit.driver, '--keep-last', '2', ...common],
      env: pair.faultEnv(PRUNE_ENV),
      marker: PRUNE_MARKER,
      delayMs,
      strike: await strike(c, setup, pair, rng),
    });
    await mend(c, setup, pair, r);
    expectExit(label, c, r, pair.kit);
    const listed = await pair.verifyAll(`${label}: after the fault`);
    expect(keep.filter((id) => !listed.includes(id)), `${label}: prune removed a backup its policy keeps`).toEqual([]);
    expect(listed.filter((id) => !all.includes(id)), `${label}: new backups appeared`).toEqual([]);
    expectOlderUnchanged(label, full, await pair.view.objects(), new Set(all.filter((id) => !listed.includes(id))));
    await pair.pruneClean(`${label}: the next prune`, 2);
    expect(await pair.listed(), `${label}: the next prune applied the policy`).toEqual(keep);
  }
  return r;
}
