/**
 * age-encryption, loaded on first use. Importing it (with its curve and post-quantum libraries)
 * took ~130 ms, which every run paid at start whether or not anything was encrypted. require()
 * of an ES module works unflagged from Node 20.19, the engines floor, and keeps the callers
 * synchronous (config validation is).
 */
import { createRequire } from 'node:module';
import type * as Age from 'age-encryption';

let loaded: typeof Age | undefined;

export function age(): typeof Age {
  loaded ??= createRequire(import.meta.url)('age-encryption') as typeof Age;
  return loaded;
}
