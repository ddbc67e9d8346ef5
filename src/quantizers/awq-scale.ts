/**
 * AWQ's pure pieces (activation-aware weight scaling, after AutoAWQ `_search_best_scale` and
 * `_search_best_clip`): per-channel statistics, the duo-scaling candidate formula and the clip search.
 * Nothing here knows about blocks; awq.ts drives them on a decoder block's real module outputs.
 */
import type { MatmulBackend } from '../kernels/backend.js';
import type { GridSpec } from '../qtypes/types.js';

/** Quantize then dequantize W (n, k) on a grid (RTN); injected so AWQ stays grid-agnostic. */
export type FakeQuant = (w: Float32Array, n: number, k: number, grid: GridSpec) => Float32Array;

/** mean |x| per channel of X (rows, cols). */
export function meanAbsPerChannel(x: Float32Array, rows: number, cols: number): Float64Array {
  const s = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) s[c] += Math.abs(x[o + c]);
  }
  for (let c = 0; c < cols; c++) s[c] /= rows;
  return s;
}

/**
 * AutoAWQ's w_mean: |W| / max|W| within each group of `groupSize` input columns, then the mean over all
 * output rows of all the balance layers (stacked): one value per input column.
 */
export function weightMeanPerChannel(ws: { w: Float32Array; n: number }[], k: number, groupSize: number): Float64Array {
  const g = groupSize > 0 ? groupSize : k;
  const out = new Float64Array(k);
  let rows = 0;
  for (const { w, n } of ws) {
    for (let r = 0; r < n; r++) {
      const o = r * k;
      for (let c0 = 0; c0 < k; c0 += g) {
        const c1 = Math.min(k, c0 + g);
        let m = 0;
        for (let c = c0; c < c1; c++) m = Math.max(m, Math.abs(w[o + c]));
        const inv = m > 0 ? 1 / m : 0;
        for (let c = c0; c < c1; c++) out[c] += Math.abs(w[o + c]) * inv;
      }
    }
    rows += n;
  }
  for (let c = 0; c < k; c++) out[c] /= rows;
  return out;
}

/**
 * Duo-scaling candidate for ratio α: s = x_mean^α / (w_mean^(1−α) + 1e-4), clamped at 1e-4 and normalised
 * by sqrt(max(s)·min(s)) so the scales straddle 1.
 */
export function awqScales(xMean: Float64Array, wMean: Float64Array, alpha: number, duo = true): Float32Array {
  const k = xMean.length;
  const s = new Float64Array(k);
  let mx = 0;
  let mn = Infinity;
  for (let c = 0; c < k; c++) {
    const v = Math.max(1e-4, duo ? Math.pow(xMean[c], alpha) / (Math.pow(wMean[c], 1 - alpha) + 1e-4) : Math.pow(Math.max(xMean[c], 1e-4), alpha));
    s[c] = v;
    mx = Math.max(mx, v);
    mn = Math.min(mn, v);
  }
  const norm = Math.sqrt(mx * mn);
  return Float32Array.from(s, (v) => v / norm);
}

/** W (n, k) with column c multiplied by s[c] (into a new array). */
export function scaleColumns(w: Float32Array, n: number, k: number, s: Float32Array): Float32Array {
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) out[r * k + c] = w[r * k + c] * s[c];
  return out;
}

/** In place: W (n, k) column c divided by s[c]. */
export function unscaleColumnsInPlace(w: Float32Array, n: number, k: number, s: Float32Array): void {
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) w[r * k + c] /= s[c];
}

/** Q(W·diag(s))·diag(s)⁻¹: the effective weight a candidate scale gives. */
export function scaledFakeQuant(w: Float32Array, n: number, k: number, s: Float32Array, grid: GridSpec, fq: FakeQuant): Float32Array {
  const q = fq(scaleColumns(w, n, k, s), n, k, grid);
  unscaleColumnsInPlace(q, n, k, s);
  return q;
}

export function mse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s / a.length;
}

/** Columns [c0, c1) of M (rows, k) as a contiguous (rows, c1 − c0) copy. */
function columnBlock(m: Float32Array, rows: number, k: number, c0: number, c1: number): Float32Array {
  const w = c1 - c0;
  const out = new Float32Array(rows * w);
  for (let r = 0; r < rows; r++) out.set(m.subarray(r * k + c0, r * k + c1), r * w);
  return out;
}

/**
 * Clip search (AutoAWQ `_search_best_clip`): for every (output row, group), try max_val = org_max·(1 − i/20)
 * for i < 20·maxShrink and keep the one whose group-partial output Σ_{c∈group} x_c·ŵ_c has the lowest
 * squared error summed over the sampled tokens X (t, k). The partial outputs of a group are one matmul
 * Xg (t, g) · Wgᵀ (g, n) on the backend. Returns the clipped weight (n, k).
 */
export function searchClip(w: Float32Array, n: number, k: number, x: Float32Array, t: number, grid: GridSpec, fq: FakeQuant, backend: MatmulBackend, opts: { nGrid?: number; maxShrink?: number } = {}): Float32Array {
  const nGrid = opts.nGrid ?? 20;
  const maxShrink = opts.maxShrink ?? 0.5;
  const g = grid.groupSize > 0 ? grid.groupSize : k;
  const groups = Math.ceil(k / g);
  const best = new Float64Array(n * groups).fill(Infinity);
  const bestMax = new Float32Array(n * groups);
  const orgMax = new Float32Array(n * groups);
  for (let r = 0; r < n; r++)
    for (let gi = 0; gi < groups; gi++) {
      let m = 0;
      for (let c = gi * g; c < Math.min(k, (gi + 1) * g); c++) m = Math.max(m, Math.abs(w[r * k + c]));
      orgMax[r * groups + gi] = m;
    }
  const xg: Float32Array[] = [];
  const ref: Float32Array[] = []; // per group: (t, n) partial outputs of the original weights
  for (let gi = 0; gi < groups; gi++) {
    const c0 = gi * g;
    const c1 = Math.min(k, c0 + g);
    xg.push(columnBlock(x, t, k, c0, c1));
    ref.push(backend.matmulTransient(xg[gi], t, columnBlock(w, n, k, c0, c1), n, c1 - c0));
  }
  const cur = new Float32Array(n * k);
  for (let i = 0; i < Math.floor(maxShrink * nGrid); i++) {
    const shrink = 1 - i / nGrid;
    for (let r = 0; r < n; r++)
      for (let gi = 0; gi < groups; gi++) {
        const mv = orgMax[r * groups + gi] * shrink;
        for (let c = gi * g; c < Math.min(k, (gi + 1) * g); c++) cur[r * k + c] = Math.min(mv, Math.max(-mv, w[r * k + c]));
      }
    const q = fq(cur, n, k, grid);
    for (let gi = 0; gi < groups; gi++) {
      const c0 = gi * g;
      const c1 = Math.min(k, c0 + g);
      const pq = backend.matmulTransient(xg[gi], t, columnBlock(q, n, k, c0, c1), n, c1 - c0); // (t, n)
      const pr = ref[gi];
      for (let r = 0; r < n; r++) {
        let err = 0;
        for (let tok = 0; tok < t; tok++) {
          const d = pq[tok * n + r] - pr[tok * n + r];
          err += d * d;
        }
        if (err < best[r * groups + gi]) {
          best[r * groups + gi] = err;
          bestMax[r * groups + gi] = orgMax[r * groups + gi] * shrink;
        }
      }
    }
  }
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < k; c++) {
      const mv = bestMax[r * groups + Math.floor(c / g)];
      out[r * k + c] = Math.min(mv, Math.max(-mv, w[r * k + c]));
    }
  return out;
}
