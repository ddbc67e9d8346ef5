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

// ---- Gram-matrix forms of the same losses (exact over every calibration token, at k² cost per row) ----
// For a linear layer, Σ_tokens ‖x·(W − Ŵ)ᵀ‖² = Σ_r Δ_r G Δ_rᵀ with G = XᵀX and Δ = W − Ŵ, so a loss over all
// N·T tokens costs n·k² per candidate instead of N·T·n·k; G is accumulated once per linear input.

/** G (k, k) += Xᵀ X for X (rows, k), on the backend (float32 products, float64 accumulator). */
export function gramAccumulate(g: Float64Array, x: Float32Array, rows: number, k: number, backend: MatmulBackend): void {
  const xt = new Float32Array(k * rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) xt[c * rows + r] = x[r * k + c];
  const p = backend.matmulTransient(xt, k, xt, k, rows);
  for (let i = 0; i < k * k; i++) g[i] += p[i];
}

/** In place: G ← diag(1/s) G diag(1/s), the Gram matrix of X·diag(1/s). */
export function unscaleGramInPlace(g: Float64Array, k: number, s: Float32Array): void {
  for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) g[a * k + b] /= s[a] * s[b];
}

/** G[c0:c1, c0:c1] as a float32 (c1 − c0)² matrix. */
function gramBlock(g: Float64Array, k: number, c0: number, c1: number): Float32Array {
  const w = c1 - c0;
  const out = new Float32Array(w * w);
  for (let a = 0; a < w; a++) for (let b = 0; b < w; b++) out[a * w + b] = g[(c0 + a) * k + c0 + b];
  return out;
}

/**
 * Per row r of Δ (n, k) and per column group: Δ_rg G_g Δ_rgᵀ (G_g the group's diagonal block of G).
 * Returns (n, groups); with one group of width k this is the whole-row quadratic form.
 */
export function gramRowGroupErrors(delta: Float32Array, n: number, k: number, g: Float64Array, groupSize: number, backend: MatmulBackend): Float64Array {
  const gs = groupSize > 0 ? groupSize : k;
  const groups = Math.ceil(k / gs);
  const out = new Float64Array(n * groups);
  for (let gi = 0; gi < groups; gi++) {
    const c0 = gi * gs;
    const c1 = Math.min(k, c0 + gs);
    const w = c1 - c0;
    const d = columnBlock(delta, n, k, c0, c1);
    const dg = backend.matmulTransient(d, n, gramBlock(g, k, c0, c1), w, w); // (n, w) = Δ_g G_g (G symmetric)
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let c = 0; c < w; c++) s += dg[r * w + c] * d[r * w + c];
      out[r * groups + gi] = s;
    }
  }
  return out;
}

/** Σ_tokens ‖x·(W − Ŵ)ᵀ‖² / (tokens · n): the output MSE over the tokens G was built from. */
export function gramOutputMse(w: Float32Array, wq: Float32Array, n: number, k: number, g: Float64Array, tokens: number, backend: MatmulBackend): number {
  const delta = new Float32Array(n * k);
  for (let i = 0; i < n * k; i++) delta[i] = w[i] - wq[i];
  let s = 0;
  for (const e of gramRowGroupErrors(delta, n, k, g, k, backend)) s += e;
  return s / (tokens * n);
}

/**
 * searchClip's search (same candidates, same per-(row, group) choice) with its loss, the squared error of the
 * group-partial outputs, taken over every token through G = XᵀX: Δ_rg G_g Δ_rgᵀ. searchClip on the same
 * tokens is its reference. With `loHi` (for asymmetric grids) the candidates also include every clamp to
 * [min·a, max·b] with a, b ∈ {1, 1 − 1/nGrid, …} (the same shrink steps, one per side): an asymmetric grid's
 * range has two ends, and AutoAWQ's ±|w|max·shrink only ever moves the longer one. `refine` (lo/hi only) then
 * runs that many rounds of local search: each round tries, for every (row, group) at once, the 8 neighbours
 * [lo ± f·|min|, hi ± f·max] of its best bounds (f = 1/(2·nGrid), halved each round, bounds kept within
 * [min, 0] and [0, max]), each kept per group only where the loss drops — the final RTN's per-group range
 * (its scale and zero) chosen on a 4–8× finer step than the grid's at 8 candidates per round.
 */
export function searchClipGram(w: Float32Array, n: number, k: number, g: Float64Array, grid: GridSpec, fq: FakeQuant, backend: MatmulBackend, opts: { nGrid?: number; maxShrink?: number; loHi?: boolean; refine?: number } = {}): Float32Array {
  const nGrid = opts.nGrid ?? 20;
  const steps = Math.floor((opts.maxShrink ?? 0.5) * nGrid);
  const gs = grid.groupSize > 0 ? grid.groupSize : k;
  const groups = Math.ceil(k / gs);
  const gOf = (j: number): number => Math.floor(j / k) * groups + Math.floor((j % k) / gs);
  const orgMax = new Float32Array(n * groups);
  const orgLo = new Float32Array(n * groups);
  const orgHi = new Float32Array(n * groups);
  for (let j = 0; j < n * k; j++) {
    const gi = gOf(j);
    orgMax[gi] = Math.max(orgMax[gi], Math.abs(w[j]));
    orgLo[gi] = Math.min(orgLo[gi], w[j]);
    orgHi[gi] = Math.max(orgHi[gi], w[j]);
  }
  // candidates (lower bound, upper bound) per (row, group): AutoAWQ's ±|w|max·(1 − i/nGrid), then [min·a, max·b]
  const cands: { lo: (gi: number) => number; hi: (gi: number) => number }[] = [];
  for (let i = 0; i < steps; i++) {
    const sh = 1 - i / nGrid;
    cands.push({ lo: (gi) => -orgMax[gi] * sh, hi: (gi) => orgMax[gi] * sh });
  }
  if (opts.loHi)
    for (let i = 0; i < steps; i++)
      for (let j = 0; j < steps; j++) {
        if (i === 0 && j === 0) continue; // the unclipped weight, already the first candidate
        const a = 1 - i / nGrid;
        const b = 1 - j / nGrid;
        cands.push({ lo: (gi) => orgLo[gi] * a, hi: (gi) => orgHi[gi] * b });
      }
  const best = new Float64Array(n * groups).fill(Infinity);
  const bestLo = new Float32Array(n * groups);
  const bestHi = new Float32Array(n * groups);
  const cur = new Float32Array(n * k);
  const delta = new Float32Array(n * k);
  const lo = new Float32Array(n * groups);
  const hi = new Float32Array(n * groups);
  const tryBounds = (): void => {
    for (let j = 0; j < n * k; j++) cur[j] = Math.min(hi[gOf(j)], Math.max(lo[gOf(j)], w[j]));
    const q = fq(cur, n, k, grid);
    for (let j = 0; j < n * k; j++) delta[j] = q[j] - w[j];
    const err = gramRowGroupErrors(delta, n, k, g, gs, backend);
    for (let gi = 0; gi < n * groups; gi++)
      if (err[gi] < best[gi]) {
        best[gi] = err[gi];
        bestLo[gi] = lo[gi];
        bestHi[gi] = hi[gi];
      }
  };
  for (const cand of cands) {
    for (let gi = 0; gi < n * groups; gi++) {
      lo[gi] = cand.lo(gi);
      hi[gi] = cand.hi(gi);
    }
    tryBounds();
  }
  // local refinement (lo/hi grids): each round tries the 8 neighbours of every group's current best [lo, hi] at half
  // the previous step (first round: half the grid step), kept per group only where the loss drops
  if (opts.loHi)
    for (let round = 1; round <= (opts.refine ?? 0); round++) {
      const f = 1 / (nGrid * 2 ** round);
      for (let di = -1; di <= 1; di++)
        for (let dj = -1; dj <= 1; dj++) {
          if (di === 0 && dj === 0) continue;
          for (let gi = 0; gi < n * groups; gi++) {
            lo[gi] = Math.max(orgLo[gi], Math.min(0, bestLo[gi] - di * f * orgLo[gi]));
            hi[gi] = Math.min(orgHi[gi], Math.max(0, bestHi[gi] + dj * f * orgHi[gi]));
          }
          tryBounds();
        }
    }
  const out = new Float32Array(n * k);
  for (let j = 0; j < n * k; j++) out[j] = Math.min(bestHi[gOf(j)], Math.max(bestLo[gOf(j)], w[j]));
  return out;
}

/**
 * Statistics of `k` consumer channels averaged onto the `kScale` channels they share a scale with
 * (tie[j] = the shared channel of consumer channel j): GQA's v_proj→o_proj, where the o_proj inputs of all
 * query heads reading one KV head are that KV head's v channels.
 */
export function tiedMeans(v: Float64Array, tie: Int32Array, kScale: number): Float64Array {
  const sum = new Float64Array(kScale);
  const cnt = new Float64Array(kScale);
  for (let j = 0; j < tie.length; j++) {
    sum[tie[j]] += v[j];
    cnt[tie[j]]++;
  }
  return sum.map((s, i) => (cnt[i] > 0 ? s / cnt[i] : 0));
}
