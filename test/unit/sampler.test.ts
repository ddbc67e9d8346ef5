import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/calib/prng.js';
import { sampleToken, samplingDistribution } from '../../src/infer/sampler.js';

const logits = Float32Array.from([0.5, 2.0, -1.0, 1.5, 0.0, 3.0, -2.0, 1.0]);
const n = logits.length;

/** Exact softmax at temperature T over the given ids (float64, straight from the definition). */
function softmaxOver(ids: number[], T: number): number[] {
  const e = ids.map((i) => Math.exp(logits[i] / T));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

describe('sampler', () => {
  it('temperature 0 is argmax', () => {
    expect(sampleToken(logits, 0, n, { temperature: 0 }, mulberry32(1))).toBe(5);
  });

  it('distribution: full softmax without top-k/top-p', () => {
    const d = samplingDistribution(logits, 0, n, { temperature: 0.7 });
    expect(d.ids).toEqual([5, 1, 3, 7, 0, 4, 2, 6]);
    const ref = softmaxOver(d.ids, 0.7);
    d.probs.forEach((p, i) => expect(p).toBeCloseTo(ref[i], 12));
  });

  it('top-k keeps the k most likely, renormalized', () => {
    const d = samplingDistribution(logits, 0, n, { temperature: 1, topK: 3 });
    expect(d.ids).toEqual([5, 1, 3]);
    const ref = softmaxOver([5, 1, 3], 1);
    d.probs.forEach((p, i) => expect(p).toBeCloseTo(ref[i], 12));
  });

  it('top-p keeps the smallest prefix reaching the mass', () => {
    const full = softmaxOver([5, 1, 3, 7, 0, 4, 2, 6], 1);
    // the first two tokens hold less than 0.8, the first three at least 0.8
    expect(full[0] + full[1]).toBeLessThan(0.8);
    expect(full[0] + full[1] + full[2]).toBeGreaterThanOrEqual(0.8);
    const d = samplingDistribution(logits, 0, n, { temperature: 1, topP: 0.8 });
    expect(d.ids).toEqual([5, 1, 3]);
    const s = full[0] + full[1] + full[2];
    d.probs.forEach((p, i) => expect(p).toBeCloseTo(full[i] / s, 12));
  });

  it('empirical frequencies match the distribution (chi-square, 7 dof)', () => {
    const o = { temperature: 1.3 };
    const d = samplingDistribution(logits, 0, n, o);
    const rng = mulberry32(42);
    const N = 40000;
    const counts = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      const t = sampleToken(logits, 0, n, o, rng);
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    let chi2 = 0;
    d.ids.forEach((id, i) => {
      const e = N * d.probs[i];
      chi2 += ((counts.get(id) ?? 0) - e) ** 2 / e;
    });
    expect(chi2).toBeLessThan(24.3); // p = 0.001 critical value for 7 degrees of freedom
  });

  it('same seed, same draws; tokens outside top-k never drawn', () => {
    const o = { temperature: 1, topK: 2 };
    const a = mulberry32(9);
    const b = mulberry32(9);
    for (let i = 0; i < 200; i++) {
      const x = sampleToken(logits, 0, n, o, a);
      expect(x).toBe(sampleToken(logits, 0, n, o, b));
      expect([5, 1]).toContain(x);
    }
  });
});
