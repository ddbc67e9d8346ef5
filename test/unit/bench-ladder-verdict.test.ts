/**
 * bench:ladder's verdicts (scripts/lib/ladder-verdict.mjs): a ladder row is compared with the best uniform
 * row of no larger linear bits per weight (on Δppl and on KL separately), the budget check, and the SVD
 * whitened / plain Δppl ratio. Expected values are worked out by hand from the rows below.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript module of the benchmark scripts (no type declarations)
import { ladderVerdicts, meanOverSeeds, svdVerdicts, verdictWord } from '../../scripts/lib/ladder-verdict.mjs';

const U = [
  { id: 'rtn-w4', method: 'rtn', bpw: 4.25, deltaPpl: 10, meanKl: 0.02 },
  { id: 'gptq-w4', method: 'gptq', bpw: 4.25, deltaPpl: 6, meanKl: 0.012 },
  { id: 'awq-w3', method: 'awq', bpw: 3.25, deltaPpl: 25, meanKl: 0.05 },
  { id: 'gptq-w3', method: 'gptq', bpw: 3.25, deltaPpl: 22, meanKl: 0.06 },
  { id: 'gptq-w2', method: 'gptq', bpw: 2.5, deltaPpl: 300, meanKl: 0.9 },
];

describe('ladderVerdicts', () => {
  const v = ladderVerdicts(
    [
      { id: 'l2.5', method: 'ladder', bpw: 2.49, budget: 2.5, deltaPpl: 120, meanKl: 0.4 },
      { id: 'l3', method: 'ladder', bpw: 2.999, budget: 3.0, deltaPpl: 30, meanKl: 0.07 },
      { id: 'l3.5', method: 'ladder', bpw: 3.5, budget: 3.5, deltaPpl: 21, meanKl: 0.055 },
      { id: 'l4', method: 'ladder', bpw: 4.01, budget: 4.0, deltaPpl: 7, meanKl: 0.01 },
    ],
    U,
  );

  it('no uniform row at or below the ladder size: n/a', () => {
    expect(v[0].bestUniformByPpl).toBeNull();
    expect(v[0].passPpl).toBeNull();
    expect(v[0].passKl).toBeNull();
    expect(v[0].withinBudget).toBe(true);
  });

  it('compares with the best smaller row, whatever the method', () => {
    // at 2.999 bpw only gptq-w2 (2.5) is no larger: 30 ≤ 300 and 0.07 ≤ 0.9
    expect(v[1].bestUniformByPpl.id).toBe('gptq-w2');
    expect(v[1].passPpl).toBe(true);
    expect(v[1].passKl).toBe(true);
    // at 3.5: best Δppl is gptq-w3 (22) → 21 passes; best KL is awq-w3 (0.05) → 0.055 fails
    expect(v[2].bestUniformByPpl.id).toBe('gptq-w3');
    expect(v[2].bestUniformByKl.id).toBe('awq-w3');
    expect(v[2].passPpl).toBe(true);
    expect(v[2].passKl).toBe(false);
  });

  it('flags a ladder over its budget and still compares it with the rows no larger than its real size', () => {
    expect(v[3].withinBudget).toBe(false);
    expect(v[3].bestUniformByPpl.id).toBe('gptq-w3');
    expect(v[3].passPpl).toBe(true);
  });

  it('a uniform row of exactly the same size is a competitor', () => {
    const [e] = ladderVerdicts([{ id: 'l', method: 'ladder', bpw: 4.25, deltaPpl: 6.5, meanKl: 0.011 }], U);
    expect(e.bestUniformByPpl.id).toBe('gptq-w4');
    expect(e.passPpl).toBe(false);
    expect(e.passKl).toBe(true);
    expect(e.withinBudget).toBeNull();
  });
});

describe('svdVerdicts', () => {
  it('whitened / plain Δppl per ratio, ≤ 0.5 passes; a plain Δppl ≤ 0 gives no ratio', () => {
    const v = svdVerdicts([
      { ratio: 0.9, whitening: 'plain', deltaPpl: 10 },
      { ratio: 0.9, whitening: 'svdllm', deltaPpl: 4 },
      { ratio: 0.9, whitening: 'asvd', deltaPpl: 6 },
      { ratio: 0.7, whitening: 'plain', deltaPpl: -0.1 },
      { ratio: 0.7, whitening: 'svdllm', deltaPpl: 3 },
    ]);
    expect(v.map((x: { ratio: number; whitening: string }) => `${x.ratio} ${x.whitening}`)).toEqual(['0.9 svdllm', '0.9 asvd', '0.7 svdllm']);
    expect(v[0].ratioVsPlain).toBeCloseTo(0.4, 12);
    expect(v[0].pass).toBe(true);
    expect(v[0].reduction).toBe(10);
    expect(v[1].ratioVsPlain).toBeCloseTo(0.6, 12);
    expect(v[1].pass).toBe(false);
    expect(v[2].ratioVsPlain).toBeNull();
    expect(v[2].pass).toBeNull();
    expect(v[2].reduction).toBe(30);
  });

  it('a plain variant (plain SVD with ranks by sensitivity) gets its ratios but no whitening verdict', () => {
    const v = svdVerdicts([
      { ratio: 0.8, whitening: 'plain', deltaPpl: 10, meanKl: 0.1 },
      { ratio: 0.8, whitening: 'plain+sensitivity', deltaPpl: 3, meanKl: 0.01 },
      { ratio: 0.8, whitening: 'svdllm+sensitivity', deltaPpl: 6, meanKl: 0.02 },
    ]);
    expect(v.map((x: { whitening: string; whitened: boolean; pass: boolean | null }) => [x.whitening, x.whitened, x.pass])).toEqual([
      ['plain+sensitivity', false, null],
      ['svdllm+sensitivity', true, false],
    ]);
    expect(v[0].ratioVsPlain).toBeCloseTo(0.3, 12);
    expect(v[1].klVsPlain).toBeCloseTo(0.2, 12);
  });

  it('verdictWord', () => {
    expect([true, false, null].map(verdictWord)).toEqual(['PASS', 'FAIL', 'n/a']);
  });
});

describe('meanOverSeeds', () => {
  it('averages each key over its seeds (sample sd), keeps deterministic rows once, takes the largest bpw', () => {
    const rows = meanOverSeeds([
      { key: 'ladder-2.5', id: 'ladder-2.5', method: 'ladder', seed: 0, bpw: 2.49, budget: 2.5, deltaPpl: 4, meanKl: 0.04 },
      { key: 'ladder-2.5', id: 'ladder-2.5-s1', method: 'ladder', seed: 1, bpw: 2.498, budget: 2.5, deltaPpl: 8, meanKl: 0.05 },
      { key: 'ladder-2.5', id: 'ladder-2.5-s2', method: 'ladder', seed: 2, bpw: 2.495, budget: 2.5, deltaPpl: 12, meanKl: 0.06 },
      { key: 'rtn-w2', id: 'rtn-w2', method: 'rtn', seed: null, bpw: 2.375, deltaPpl: 11, meanKl: 0.1 },
    ]);
    expect(rows).toHaveLength(2);
    const l = rows[0];
    expect(l.id).toBe('ladder-2.5');
    expect(l.seeds).toEqual([0, 1, 2]);
    expect(l.deltaPplValues).toEqual([4, 8, 12]);
    expect(l.deltaPpl).toBeCloseTo(8, 12);
    expect(l.deltaPplSd).toBeCloseTo(4, 12); // sqrt(((−4)² + 0 + 4²) / 2)
    expect(l.meanKl).toBeCloseTo(0.05, 12);
    expect(l.bpw).toBe(2.498);
    expect(l.budget).toBe(2.5);
    expect(rows[1]).toMatchObject({ id: 'rtn-w2', seeds: [null], deltaPpl: 11, deltaPplSd: null });
    // the means feed ladderVerdicts like any row
    const v = ladderVerdicts([l], [rows[1]]);
    expect(v[0].passPpl).toBe(true);
  });
});
