import { describe, expect, it } from 'vitest';
import { allocateLadder, type RungChoice } from '../../src/ladder/allocate.js';
import { mulberry32 } from '../../src/calib/prng.js';

/** Exhaustive optimum: every combination of rungs. */
function bruteForce(layers: RungChoice[][], budget: number): { loss: number; bytes: number } {
  let best = { loss: Infinity, bytes: Infinity };
  const rec = (l: number, bytes: number, loss: number): void => {
    if (bytes > budget) return;
    if (l === layers.length) {
      if (loss < best.loss || (loss === best.loss && bytes < best.bytes)) best = { loss, bytes };
      return;
    }
    for (const r of layers[l]) rec(l + 1, bytes + r.bytes, loss + r.loss);
  };
  rec(0, 0, 0);
  return best;
}

function randomInstance(seed: number, L: number, R: number, scale: number): RungChoice[][] {
  const rng = mulberry32(seed);
  return Array.from({ length: L }, () =>
    Array.from({ length: R }, () => ({ bytes: 1 + rng.nextInt(scale), loss: rng.nextInt(1000) / 100 })),
  );
}

describe('ladder allocation (multiple-choice knapsack)', () => {
  it('equals the exhaustive optimum when the DP is exact (granule 1)', () => {
    for (let seed = 0; seed < 40; seed++) {
      const layers = randomInstance(seed, 5, 4, 200);
      const minB = layers.reduce((a, r) => a + Math.min(...r.map((x) => x.bytes)), 0);
      const maxB = layers.reduce((a, r) => a + Math.max(...r.map((x) => x.bytes)), 0);
      const budget = minB + Math.floor(((seed % 7) / 6) * (maxB - minB));
      const res = allocateLadder(layers, budget);
      const bf = bruteForce(layers, budget);
      expect(res.granule).toBe(1);
      expect(res.loss).toBeCloseTo(bf.loss, 9);
      expect(res.bytes).toBeLessThanOrEqual(budget);
      expect(res.bytes).toBe(bf.bytes); // ties broken toward the smaller plan, like the brute force
    }
  });

  it('with a coarse granule: never over budget, and at least as good as the exact optimum of a budget smaller by the rounding slack', () => {
    for (let seed = 100; seed < 130; seed++) {
      const layers = randomInstance(seed, 6, 4, 100000);
      const minB = layers.reduce((a, r) => a + Math.min(...r.map((x) => x.bytes)), 0);
      const maxB = layers.reduce((a, r) => a + Math.max(...r.map((x) => x.bytes)), 0);
      const budget = Math.floor((minB + maxB) / 2);
      const res = allocateLadder(layers, budget, { maxUnits: 500 });
      expect(res.granule).toBeGreaterThan(1);
      expect(res.bytes).toBeLessThanOrEqual(budget);
      const exact = bruteForce(layers, budget);
      const tighter = bruteForce(layers, budget - layers.length * res.granule);
      expect(res.loss).toBeGreaterThanOrEqual(exact.loss - 1e-9);
      if (Number.isFinite(tighter.loss)) expect(res.loss).toBeLessThanOrEqual(tighter.loss + 1e-9);
    }
  });

  it('the reported totals are the chosen rungs', () => {
    const layers = randomInstance(7, 8, 5, 1000);
    const res = allocateLadder(layers, 4000);
    expect(res.bytes).toBe(res.choice.reduce((a, j, l) => a + layers[l][j].bytes, 0));
    expect(res.loss).toBeCloseTo(res.choice.reduce((a, j, l) => a + layers[l][j].loss, 0), 12);
  });

  it('refuses a budget below the smallest model and names it', () => {
    const layers = [[{ bytes: 10, loss: 1 }, { bytes: 20, loss: 0 }], [{ bytes: 5, loss: 2 }]];
    expect(() => allocateLadder(layers, 14)).toThrow(/smallest possible model \(15 B/);
    expect(allocateLadder(layers, 15).choice).toEqual([0, 0]);
    expect(allocateLadder(layers, 25).choice).toEqual([1, 0]);
  });
});
