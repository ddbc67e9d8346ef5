/**
 * searchClipGram's local refinement of the lo/hi clip (`refine` rounds): every (row, group)'s best [lo, hi]
 * from the grid is refined by trying its 8 neighbours at half the step, kept only where the loss drops. Checked
 * token by token (not through the Gram matrix the search uses): no group-partial output error rises, and some
 * fall — the grid's step is coarse enough that the finer candidates find lower errors.
 */
import { describe, expect, it } from 'vitest';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { quantizeRtnFake } from '../../src/pipeline/fake-quant.js';
import { gramAccumulate, searchClipGram } from '../../src/quantizers/awq-scale.js';
import type { GridSpec } from '../../src/qtypes/types.js';
import { seededRng } from '../helpers/upstream-unpack.js';

const backend = createScalarBackend();

function gaussian(seed: number): () => number {
  const rnd = seededRng(seed);
  return () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

describe('searchClipGram lo/hi refinement', () => {
  const n = 24;
  const k = 64;
  const rows = 200;
  const g = gaussian(41);
  // heavy-tailed weights (a few large entries per group) so clipping matters
  const w = Float32Array.from({ length: n * k }, () => g() * (g() > 1.8 ? 4 : 1));
  const x = Float32Array.from({ length: rows * k }, (_, i) => g() * (i % k === 9 || i % k === 40 ? 10 : 1));
  const gram = new Float64Array(k * k);
  gramAccumulate(gram, x, rows, k, backend);

  const partialErrors = (wq: Float32Array, gs: number): number[] => {
    const out: number[] = [];
    for (let r = 0; r < n; r++)
      for (let c0 = 0; c0 < k; c0 += gs) {
        let e = 0;
        for (let t = 0; t < rows; t++) {
          let d = 0;
          for (let c = c0; c < c0 + gs; c++) d += x[t * k + c]! * (wq[r * k + c]! - w[r * k + c]!);
          e += d * d;
        }
        out.push(e);
      }
    return out;
  };

  for (const grid of [
    { bits: 4, groupSize: 32, sym: false },
    { bits: 3, groupSize: 32, sym: false },
  ] as GridSpec[]) {
    it(`never raises a group's error and lowers the total (w${grid.bits} g${grid.groupSize})`, () => {
      const base = quantizeRtnFake(searchClipGram(w, n, k, gram, grid, quantizeRtnFake, backend, { loHi: true }), n, k, grid);
      const refined = quantizeRtnFake(searchClipGram(w, n, k, gram, grid, quantizeRtnFake, backend, { loHi: true, refine: 3 }), n, k, grid);
      const a = partialErrors(base, grid.groupSize);
      const b = partialErrors(refined, grid.groupSize);
      let lower = 0;
      for (let i = 0; i < a.length; i++) {
        expect(b[i]).toBeLessThanOrEqual(a[i]! * (1 + 1e-4) + 1e-9);
        if (b[i]! < a[i]! * (1 - 1e-3)) lower++;
      }
      expect(lower).toBeGreaterThan(a.length / 4);
      const sum = (v: number[]) => v.reduce((s, e) => s + e, 0);
      expect(sum(b)).toBeLessThan(sum(a) * 0.998);
    });
  }

  it('refine is a no-op without lo/hi candidates', () => {
    const grid: GridSpec = { bits: 4, groupSize: 32, sym: false };
    const a = searchClipGram(w, n, k, gram, grid, quantizeRtnFake, backend);
    const b = searchClipGram(w, n, k, gram, grid, quantizeRtnFake, backend, { refine: 3 });
    expect(Array.from(b)).toEqual(Array.from(a));
  });
});
