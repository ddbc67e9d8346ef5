// Seeded uniform random numbers for the benchmark scripts (weights and resamples are reproducible run to run).

/** xorshift32: a function returning uniform numbers in [0, 1) (seed 0 is taken as 1). */
export function xorshift32(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}
