// Paired bootstrap intervals over evaluation windows (pure; tested in test/unit/paired-bootstrap.test.ts).
//
// Every row of a benchmark is scored on the same windows as its FP16 baseline, so one resample of window
// indices (drawn with replacement) is applied to all the series at once: the windows' shared difficulty cancels
// out of differences and ratios, and what is left is how much the verdict depends on which windows were drawn.
// Each series is the per-window Σ NLL of one model (eval/compare.ts: windowNll, baselineWindowNll); a
// resample's perplexity of a series is exp(Σ over the drawn windows / (drawn windows × tokens per window)).
import { xorshift32 } from './xorshift.mjs';


/**
 * The statistic on all windows and its percentile interval over `resamples` paired resamples.
 * @param {ArrayLike<number>[]} series per-window Σ NLL, all of the same length (the windows)
 * @param {number} tokensPerWindow scored positions per window
 * @param {(ppl: number[]) => number} stat a function of the series' perplexities (e.g. a Δppl ratio)
 * @param {{ resamples?: number, seed?: number, level?: number }} [opts] default 2000 resamples, seed 1, level 0.95
 * @returns {{ point: number, lo: number, hi: number, level: number, resamples: number, dropped: number }}
 *   dropped: resamples where the statistic was not finite (e.g. a ratio over a zero denominator), left out
 */
export function pairedBootstrap(series, tokensPerWindow, stat, opts = {}) {
  const { resamples = 2000, seed = 1, level = 0.95 } = opts;
  const W = series[0].length;
  if (W < 2 || series.some((s) => s.length !== W)) throw new Error(`pairedBootstrap: every series needs the same ≥ 2 windows (got ${series.map((s) => s.length).join(', ')})`);
  const n = W * tokensPerWindow;
  const pplOf = (sums) => sums.map((x) => Math.exp(x / n));
  const full = series.map((s) => Array.prototype.reduce.call(s, (a, b) => a + b, 0));
  const point = stat(pplOf(full));
  const rand = xorshift32(seed);
  const values = [];
  const sums = new Float64Array(series.length);
  for (let r = 0; r < resamples; r++) {
    sums.fill(0);
    for (let i = 0; i < W; i++) {
      const w = Math.floor(rand() * W);
      for (let s = 0; s < series.length; s++) sums[s] += series[s][w];
    }
    const v = stat(pplOf(Array.from(sums)));
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  const q = (p) => values[Math.min(values.length - 1, Math.max(0, Math.floor(p * values.length)))];
  const tail = (1 - level) / 2;
  return { point, lo: values.length ? q(tail) : NaN, hi: values.length ? q(1 - tail) : NaN, level, resamples, dropped: resamples - values.length };
}
