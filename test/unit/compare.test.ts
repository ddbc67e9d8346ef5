/** KL divergence, entropy, temperature NLL and the comparison eval against direct computations. */
import { describe, expect, it } from 'vitest';
import { BUNDLED } from '../../src/core/paths.js';
import { compareManyWithBaseline, compareSummary, klDivergence, nllAtTemperature, softmaxEntropy } from '../../src/eval/compare.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { loadModel } from '../../src/model/load-model.js';

const sm = (x: ArrayLike<number>, T = 1): number[] => {
  const e = Array.from(x, (v) => Math.exp(v / T));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe('klDivergence', () => {
  it('matches Σ p log(p/q) of the softmaxes, is 0 for equal rows and shift-invariant', () => {
    const p = Float32Array.from([1, 2, 3, -1]);
    const q = Float32Array.from([0.5, 2.5, 2, 0]);
    const P = sm(p);
    const Q = sm(q);
    const direct = P.reduce((a, pi, i) => a + pi * Math.log(pi / Q[i]), 0);
    expect(klDivergence(p, 0, q, 0, 4)).toBeCloseTo(direct, 6);
    expect(klDivergence(p, 0, p, 0, 4)).toBe(0);
    const shifted = Float32Array.from(q, (v) => v + 7);
    expect(klDivergence(p, 0, shifted, 0, 4)).toBeCloseTo(direct, 5);
  });
});

describe('softmaxEntropy and nllAtTemperature', () => {
  const row = Float32Array.from([9, 0.5, 2.5, 2, 0, -3]); // at offset 1: [0.5, 2.5, 2, 0, -3]
  it('entropy = −Σ p log p of the softmax; log n for a flat row', () => {
    const P = sm(row.subarray(1));
    expect(softmaxEntropy(row, 1, 5)).toBeCloseTo(-P.reduce((a, p) => a + p * Math.log(p), 0), 6);
    expect(softmaxEntropy(new Float32Array(8).fill(3), 0, 8)).toBeCloseTo(Math.log(8), 6);
  });
  it('NLL of the target under softmax(l / T); T = 1 is the plain NLL; large values do not overflow', () => {
    for (const T of [0.5, 1, 1.3, 4]) expect(nllAtTemperature(row, 1, 5, 2, T)).toBeCloseTo(-Math.log(sm(row.subarray(1), T)[2]), 6);
    const big = Float32Array.from([1000, 1001, 999]);
    expect(nllAtTemperature(big, 0, 3, 0, 1.1)).toBeCloseTo(-Math.log(sm([0, 1, -1], 1.1)[0]), 6);
  });
});

describe('compareManyWithBaseline on stories260K (scalar backend)', () => {
  it('per-window NLLs add up to the perplexities; a model against itself has zero Δppl and KL and the same entropy', async () => {
    const backend = createScalarBackend();
    const model = await loadModel(BUNDLED.models.stories260K!, backend);
    const tokens = Array.from({ length: 200 }, (_, i) => 3 + ((i * 37) % 500));
    const ctx = 64;
    const [r] = await compareManyWithBaseline([model], model, tokens, { ctx, bosId: 1, temperatures: [1, 1.5] });
    expect(r.windows).toBe(Math.floor(200 / (ctx - 1)));
    const n = r.windows * (ctx - 1);
    expect(r.windowNll).toHaveLength(r.windows);
    expect(Math.exp(r.windowNll.reduce((a, b) => a + b, 0) / n)).toBeCloseTo(r.ppl, 9);
    expect(Math.exp(r.baselineWindowNll.reduce((a, b) => a + b, 0) / n)).toBeCloseTo(r.baselinePpl, 9);
    expect(Array.from(r.windowNll)).toEqual(Array.from(r.baselineWindowNll));
    expect(r.deltaPpl).toBe(0);
    expect(r.meanKl).toBe(0);
    expect(r.entropy).toBe(r.baselineEntropy);
    expect(r.entropy).toBeGreaterThan(0);
    expect(r.entropy).toBeLessThan(Math.log(model.config.vocabSize));
    expect(r.baselinePplAtTemperature[0][0]).toBe(1);
    expect(r.baselinePplAtTemperature[0][1]).toBeCloseTo(r.baselinePpl, 9);
    expect(r.baselinePplAtTemperature[1][1]).not.toBeCloseTo(r.baselinePpl, 3);
    // per-window NLLs at each temperature, model and baseline: equal for a model against itself, T = 1 is windowNll
    expect(r.windowNllAtTemperature.map((x) => Array.from(x))).toEqual(r.baselineWindowNllAtTemperature.map((x) => Array.from(x)));
    r.windowNllAtTemperature[0].forEach((v, w) => expect(v).toBeCloseTo(r.windowNll[w], 6));
    expect(Math.exp(r.baselineWindowNllAtTemperature[1].reduce((a, b) => a + b, 0) / n)).toBeCloseTo(r.baselinePplAtTemperature[1][1], 9);
    const s = compareSummary(r) as Record<string, unknown>;
    expect(s).not.toHaveProperty('windowNll');
    expect(s).not.toHaveProperty('baselinePplAtTemperature');
    expect(s).not.toHaveProperty('windowNllAtTemperature');
    expect(s.entropy).toBe(r.entropy);
    await expect(compareManyWithBaseline([model], model, tokens, { ctx, bosId: 1, temperatures: [0] })).rejects.toThrow(/positive/);
    model.dispose();
  });
});
