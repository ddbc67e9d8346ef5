/** bench:ladder's paired bootstrap over windows (scripts/lib/paired-bootstrap.mjs) against direct computations. */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain .mjs helper of the benchmark scripts, no type declarations
import { pairedBootstrap } from '../../scripts/lib/paired-bootstrap.mjs';
// @ts-expect-error plain .mjs helper of the benchmark scripts, no type declarations
import { xorshift32 } from '../../scripts/lib/xorshift.mjs';

type Interval = { point: number; lo: number; hi: number; dropped: number };
const boot = pairedBootstrap as (s: ArrayLike<number>[], tpw: number, stat: (p: number[]) => number, o?: { resamples?: number; seed?: number; level?: number }) => Interval;
const rnd = xorshift32 as (seed: number) => () => number;

function gauss(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
}

describe('pairedBootstrap', () => {
  it('computes the point statistic from all windows: perplexity = exp(Σ NLL / scored tokens)', () => {
    const base = [500, 520, 480, 510];
    const row = [505, 530, 470, 515];
    const r = boot([base, row], 100, ([b, q]) => q - b, { resamples: 50 });
    const direct = Math.exp(2020 / 400) - Math.exp(2010 / 400);
    expect(r.point).toBeCloseTo(direct, 10);
    expect(r.lo).toBeLessThanOrEqual(r.point + 1e-9);
    expect(r.hi).toBeGreaterThanOrEqual(r.point - 1e-9);
  });

  it('gives a zero-width interval when the statistic does not depend on the windows drawn', () => {
    const rand = rnd(7);
    const base = Array.from({ length: 40 }, () => 400 + 50 * rand());
    const shifted = base.map((x) => x + 3); // every window 3 nats worse: ppl ratio exp(3/100) on every resample
    const r = boot([base, shifted], 100, ([b, q]) => q / b);
    expect(r.lo).toBeCloseTo(Math.exp(0.03), 12);
    expect(r.hi).toBeCloseTo(Math.exp(0.03), 12);
    const same = boot([base, base.slice()], 100, ([b, q]) => q - b);
    expect(same.lo).toBe(0);
    expect(same.hi).toBe(0);
  });

  it('is paired: a small consistent difference under large shared window noise is resolved', () => {
    const rand = rnd(11);
    const difficulty = Array.from({ length: 200 }, () => 300 + 200 * rand());
    const a = difficulty.map((d) => d + 0.2 * gauss(rand));
    const b = difficulty.map((d) => d + 0.5 + 0.2 * gauss(rand)); // b worse by 0.5 nats per window
    const r = boot([a, b], 255, ([pa, pb]) => Math.log(pb) - Math.log(pa));
    expect(r.lo).toBeGreaterThan(0); // an unpaired resample (a and b drawn independently) would straddle 0
    // the same rows drawn independently: the interval is orders of magnitude wider and includes 0
    const rand2 = rnd(5);
    const idx = Array.from({ length: 200 }, () => Math.floor(rand2() * 200));
    const bShuffled = idx.map((i) => b[i]);
    const u = boot([a, bShuffled], 255, ([pa, pb]) => Math.log(pb) - Math.log(pa));
    expect(u.hi - u.lo).toBeGreaterThan(20 * (r.hi - r.lo));
  });

  it('covers the true mean difference in about 95 % of simulated benchmarks', () => {
    // windows with per-window NLL difference d_w ~ N(μ, σ²); the statistic log(ppl_b / ppl_a) estimates μ / tokens
    const tokens = 100;
    const mu = 1.5;
    let covered = 0;
    const trials = 200;
    for (let t = 0; t < trials; t++) {
      const rand = rnd(1000 + t);
      const a = Array.from({ length: 60 }, () => 400 + 30 * gauss(rand));
      const b = a.map((x) => x + mu + 4 * gauss(rand));
      const r = boot([a, b], tokens, ([pa, pb]) => Math.log(pb / pa), { resamples: 400, seed: t + 1 });
      if (r.lo <= mu / tokens && mu / tokens <= r.hi) covered++;
    }
    expect(covered / trials).toBeGreaterThan(0.9);
    expect(covered / trials).toBeLessThan(0.99);
  });

  it('leaves out resamples where the statistic is not finite, and refuses mismatched series', () => {
    const r = boot([[1, 2, 3], [1, 2, 3]], 1, ([b, q]) => (q - b) / (q - b));
    expect(r.dropped).toBe(2000);
    expect(Number.isNaN(r.lo)).toBe(true);
    expect(() => boot([[1, 2], [1]], 1, () => 0)).toThrow(/same/);
  });
});
