/**
 * A small seeded random generator for the reliability tests (fast-check is not a dependency). Every
 * test that draws from it prints its seed, and takes one from the environment, so a failure found
 * by chance reproduces: BK_FAULT_SEED=<seed> npx vitest run <file>.
 */

export interface Rng {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max] (both included). */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  /** true with probability p. */
  chance(p: number): boolean;
  shuffle<T>(items: readonly T[]): T[];
  /** A child generator, so adding draws in one place does not shift every later one. */
  fork(label: string): Rng;
}

/** mulberry32: tiny, fast, and good enough to spread test inputs. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const self: Rng = {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor(next() * items.length)]!;
    },
    chance: (p) => next() < p,
    shuffle: (items) => {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    },
    fork: (label) => rng(hashString(`${seed}:${label}`)),
  };
  return self;
}

export function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/** The seed from `BK_FAULT_SEED`, else a fresh one; printed so a failing run can be repeated. */
export function seedFromEnv(what: string, env: NodeJS.ProcessEnv = process.env): number {
  const given = env.BK_FAULT_SEED;
  const seed = given !== undefined && given !== '' ? Number(given) >>> 0 : Math.floor(Math.random() * 2 ** 32);
  console.log(`[${what}] seed ${seed} (repeat with BK_FAULT_SEED=${seed})`);
  return seed;
}
