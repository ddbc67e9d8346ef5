/** bench:ladder's temperature-calibrated perplexity (scripts/lib/temperature-fit.mjs) against hand-worked cases. */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain .mjs helper of the benchmark scripts, no type declarations
import { calibratedPerplexity } from '../../scripts/lib/temperature-fit.mjs';

const fit = calibratedPerplexity as (s: ArrayLike<number>[], temps: number[], tpw: number) => { T: number; ppl: number; fitWindows: number; scoredWindows: number };

describe('calibratedPerplexity', () => {
  it('fits T on the even windows and scores the odd windows at that T', () => {
    // 4 windows of 10 tokens; T = 1.2 is best on the even windows (0, 2) although T = 1 is best on the odd ones
    const atT = [
      [50, 40, 50, 40], // T = 1
      [45, 41, 45, 43], // T = 1.2
      [48, 60, 48, 60], // T = 1.5
    ];
    const r = fit(atT, [1, 1.2, 1.5], 10);
    expect(r.T).toBe(1.2);
    expect(r.ppl).toBeCloseTo(Math.exp((41 + 43) / 20), 12);
    expect([r.fitWindows, r.scoredWindows]).toEqual([2, 2]);
  });
  it('an odd number of windows fits on one more window than it scores; refuses mismatched input', () => {
    const r = fit([[1, 2, 3]], [1], 1);
    expect([r.T, r.fitWindows, r.scoredWindows]).toEqual([1, 2, 1]);
    expect(r.ppl).toBeCloseTo(Math.exp(2), 12);
    expect(() => fit([[1, 2]], [1, 2], 1)).toThrow(/per temperature/);
    expect(() => fit([[1]], [1], 1)).toThrow(/2 windows/);
  });
});
