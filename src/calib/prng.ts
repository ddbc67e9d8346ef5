/**
 * A small seeded PRNG (mulberry32: 32-bit state, Weyl increment + xorshift-multiply output mix) for
 * deterministic calibration sampling. Only 32-bit integer ops (Math.imul, >>>, ^) and exact double
 * arithmetic are used, so a seed yields the same sequence on every platform and Node version — unlike
 * Math.random, which cannot be seeded. Not cryptographic.
 */
import { UsageError } from '../core/errors.js';

export interface Prng {
  /** Next uniform unsigned 32-bit integer. */
  nextU32(): number;
  /** Uniform integer in [0, bound) for 1 ≤ bound ≤ 2^32 (floor(u32 · bound / 2^32), exact in doubles). */
  nextInt(bound: number): number;
}

export const MAX_SEED = 0xffff_ffff;

export function assertSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED)
    throw new UsageError('E_SEED', `seed must be an integer in [0, ${MAX_SEED}] (got ${seed})`, 'pass a non-negative 32-bit integer, e.g. --seed 0');
}

export function mulberry32(seed: number): Prng {
  assertSeed(seed);
  let state = seed >>> 0;
  const nextU32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const nextInt = (bound: number): number => {
    if (!Number.isInteger(bound) || bound < 1 || bound > 2 ** 32) throw new RangeError(`nextInt bound ${bound} out of range`);
    // u32 / 2^32 is exact; the one rounding in `· bound` is IEEE-754 round-to-nearest, identical on every
    // platform, and can never reach `bound` (the gap bound·2^-32 is far above half an ulp of bound).
    return Math.floor((nextU32() / 2 ** 32) * bound);
  };
  return { nextU32, nextInt };
}
