/**
 * The ladder's allocation — pure: each layer has a few rungs (bytes it would take, estimated loss it
 * would add); pick one rung per layer so that the total bytes stay within the budget and the total
 * estimated loss is smallest. This is a multiple-choice knapsack, solved exactly by dynamic programming
 * over the budget in units of `granule` bytes (item sizes rounded UP to whole granules, so a plan never
 * exceeds the budget; the granule is chosen so that the table has at most `maxUnits` columns, which makes
 * the result optimal up to that rounding). Ties prefer the smaller plan.
 */
import { UsageError } from '../core/errors.js';

export interface RungChoice {
  /** Stored bytes of the layer at this rung. */
  bytes: number;
  /** Estimated loss increase at this rung (e.g. the block-output error or Δloss measured on calibration). */
  loss: number;
}

export interface AllocationResult {
  /** Chosen rung index per layer. */
  choice: number[];
  bytes: number;
  loss: number;
  /** Bytes per DP unit used (1 = exact). */
  granule: number;
}

export interface AllocateOptions {
  /** Upper bound on DP columns (default 20000). */
  maxUnits?: number;
}

export function allocateLadder(layers: readonly (readonly RungChoice[])[], budgetBytes: number, opts: AllocateOptions = {}): AllocationResult {
  if (layers.length === 0) return { choice: [], bytes: 0, loss: 0, granule: 1 };
  for (const [i, rungs] of layers.entries()) {
    if (rungs.length === 0) throw new UsageError('E_LADDER', `layer ${i} has no rungs`);
    for (const r of rungs)
      if (!(r.bytes >= 0) || !Number.isFinite(r.loss)) throw new UsageError('E_LADDER', `layer ${i} has an invalid rung (bytes ${r.bytes}, loss ${r.loss})`);
  }
  const minBytes = layers.reduce((a, rungs) => a + Math.min(...rungs.map((r) => r.bytes)), 0);
  if (budgetBytes < minBytes)
    throw new UsageError('E_LADDER_BUDGET', `the budget (${budgetBytes} B) is below the smallest possible model (${minBytes} B: every layer on its smallest rung)`, 'raise --target-bpw / --max-size or add a smaller rung');
  const maxUnits = opts.maxUnits ?? 20000;
  const granule = Math.max(1, Math.ceil(budgetBytes / maxUnits));
  const units = (b: number): number => Math.ceil(b / granule);
  let cap = Math.floor(budgetBytes / granule);
  // rounding every item up may make even the smallest plan infeasible by a few granules: widen to fit it
  const minUnits = layers.reduce((a, rungs) => a + Math.min(...rungs.map((r) => units(r.bytes))), 0);
  cap = Math.max(cap, minUnits);
  const L = layers.length;
  const W = cap + 1;
  // best[w] = min loss using layers so far with exactly... at most w units; keep the argmin per layer
  let best = new Float64Array(W).fill(0);
  const pick = new Int16Array(L * W);
  for (let l = 0; l < L; l++) {
    const next = new Float64Array(W).fill(Infinity);
    const rungs = layers[l];
    for (let w = 0; w < W; w++) {
      let bestV = Infinity;
      let bestJ = -1;
      for (let j = 0; j < rungs.length; j++) {
        const u = units(rungs[j].bytes);
        if (u > w) continue;
        const v = best[w - u] + rungs[j].loss;
        if (v < bestV || (v === bestV && bestJ >= 0 && rungs[j].bytes < rungs[bestJ].bytes)) {
          bestV = v;
          bestJ = j;
        }
      }
      next[w] = bestV;
      pick[l * W + w] = bestJ;
    }
    best = next;
  }
  // smallest column reaching the optimum = the smallest plan among the best
  let w = cap;
  for (let x = 0; x <= cap; x++)
    if (best[x] === best[cap]) {
      w = x;
      break;
    }
  const choice = new Array<number>(L);
  for (let l = L - 1; l >= 0; l--) {
    const j = pick[l * W + w];
    choice[l] = j;
    w -= units(layers[l][j].bytes);
  }
  const total = (c: number[]): { bytes: number; loss: number } => {
    let bytes = 0;
    let loss = 0;
    c.forEach((j, l) => {
      bytes += layers[l][j].bytes;
      loss += layers[l][j].loss;
    });
    return { bytes, loss };
  };
  let t = total(choice);
  if (t.bytes > budgetBytes) {
    // only possible when the rounded-up smallest plan had to widen the table: fall back to it
    for (let l = 0; l < L; l++) choice[l] = layers[l].reduce((bi, r, j, a) => (r.bytes < a[bi].bytes ? j : bi), 0);
    t = total(choice);
  }
  return { choice, ...t, granule };
}
