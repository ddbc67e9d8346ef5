/** KL divergence and the comparison eval against direct computations. */
import { describe, expect, it } from 'vitest';
import { klDivergence } from '../../src/eval/compare.js';

describe('klDivergence', () => {
  it('matches Σ p log(p/q) of the softmaxes, is 0 for equal rows and shift-invariant', () => {
    const p = Float32Array.from([1, 2, 3, -1]);
    const q = Float32Array.from([0.5, 2.5, 2, 0]);
    const sm = (x: Float32Array) => {
      const e = Array.from(x, Math.exp);
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / s);
    };
    const P = sm(p);
    const Q = sm(q);
    const direct = P.reduce((a, pi, i) => a + pi * Math.log(pi / Q[i]), 0);
    expect(klDivergence(p, 0, q, 0, 4)).toBeCloseTo(direct, 6);
    expect(klDivergence(p, 0, p, 0, 4)).toBe(0);
    const shifted = Float32Array.from(q, (v) => v + 7);
    expect(klDivergence(p, 0, shifted, 0, 4)).toBeCloseTo(direct, 5);
  });
});
