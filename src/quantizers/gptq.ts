/**
 * GPTQ (Frantar et al. 2022), the pure solve of IST-DASLab `gptq.py GPTQ.fasterquant`: quantize W (n, k)
 * column by column on `grid`, after each column spreading its rounding error over the not-yet-quantized
 * columns so that the layer-output error ½·tr((W − Q) H (W − Q)ᵀ) stays small, H = 2XᵀX/N (hessian.ts).
 *
 *   1. dead inputs: diag(H)_d = 0 -> H[d,d] = 1, W[:, d] = 0
 *   2. act-order (optional): perm = argsort(diag H) descending (stable), W and H permuted, undone at the end
 *   3. damping: H += damp·mean(diag H)·I; when the factorization fails the damp grows
 *      (damp ← max(damp + 0.01, 2·damp), at most `maxDampRetries` times) and it is retried
 *   4. Hinv = U, upper, UᵀU = H⁻¹ (linalg64.ts, Float64)
 *   5. blocks of `blockSize` columns [i1, i2): per column i, at a group boundary (i % g = 0) the group's
 *      params come from the row's CURRENT (already error-updated) weights W[r, i : i+g] (min/max, or
 *      quant.py's MSE clip search); q = quant(w), err = (w − q)/U[i,i], W[:, i+1:i2] −= err ⊗ U[i, i+1:i2];
 *      then the lazy batch update W[:, i2:] −= Err1 · U[i1:i2, i2:] as one matmul on the backend (fp32).
 *      (Unlike the reference, which reads group params of later groups of a block from W before the block's
 *      own updates, the params here always see the fully updated weights.)
 *   6. loss = Σ (w − q)²/U[i,i]²/2 over all weights, which equals ½·tr((W−Q)·H_damped·(W−Q)ᵀ) in exact
 *      arithmetic (W with dead columns zeroed).
 *
 * With act-order and groups, groups are runs of g consecutive columns in permuted order: the result's gIdx
 * (k,) maps each original column to its group (non-monotonic), codes stay in original column order.
 */
import { EdgeqError, UsageError } from '../core/errors.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { createScalarBackend } from '../kernels/scalar-backend.js';
import {
  allocQuantized,
  checkGroupable,
  dequantValue,
  maxQ,
  minMaxParams,
  mseParams,
  quantCode,
  type GroupParams,
} from '../qtypes/int-grid.js';
import { qtypeFor } from '../qtypes/registry.js';
import type { GridSpec, QuantizedWeight } from '../qtypes/types.js';
import { tsLinalg64, type Linalg64 } from './linalg64.js';
import { assertFinite } from './rtn.js';

/** gptqSolve's options (the group/clip/block choices and the backend; damping lives in gptqPrepare). */
export interface GptqSolveOptions {
  /** Lazy-batch block width (default 128; rounded up to a multiple of the group size). */
  blockSize?: number;
  /** Quantize columns in order of decreasing diag(H) (desc_act); must match the Hinv's. */
  actOrder?: boolean;
  /** quant.py MSE clip search for group params (grid 100, maxshrink 0.8, norm 2.4). */
  mseClip?: boolean;
  /** Backend for the lazy batch update (default: the scalar backend). */
  backend?: MatmulBackend;
  /** Tensor name for error messages. */
  name?: string;
  /** Also return the solved weights Q (n, k) in original column order (what dequantize(q) gives), in the working copy. */
  returnDequantized?: boolean;
  /** Overwrite w: it is the working copy and ends holding Q in original order (= result.dequantized). */
  inPlace?: boolean;
  /** Columns of the lazy batch update per backend call (default 1024): bounds the (n, cols) product buffer. */
  lazyColumns?: number;
}

export interface GptqOptions extends GptqSolveOptions {
  /** Relative damping percdamp: H += damp·mean(diag H)·I (default 0.01). */
  damp?: number;
  /** Float64 Cholesky etc. (default: TypeScript; createWasmLinalg64() for large k). */
  linalg?: Linalg64;
  /** Damping increases tried after a failed factorization (default 30). */
  maxDampRetries?: number;
}

export interface GptqResult {
  q: QuantizedWeight;
  /** Σ (w − q)²/Hinv[i,i]²/2 = ½·tr((W−Q) H_damped (W−Q)ᵀ). */
  loss: number;
  /** The relative damping that made H factorizable (opts.damp unless retries were needed). */
  dampUsed: number;
  /** Q (n, k), when opts.returnDequantized or inPlace (the working copy; w itself when inPlace). */
  dequantized?: Float32Array;
}

/** Pivots below this fraction of their diagonal entry count as a failed factorization (then more damping). */
const PIVOT_TOL = 1e-10;

/** perm = argsort(d) descending, ties by index (stable). */
export function actOrderPermutation(diag: Float64Array): Int32Array {
  const idx = Array.from({ length: diag.length }, (_, i) => i);
  idx.sort((a, b) => diag[b]! - diag[a]! || a - b);
  return Int32Array.from(idx);
}

/** What the column loop needs from H: U (upper, UᵀU = (P·H_damped·Pᵀ)⁻¹), the permutation, dead columns. */
export interface GptqHinv {
  readonly k: number;
  /** (k, k) upper-triangular Hinv in permuted order. */
  readonly U: Float64Array;
  /** perm[i] = original column of permuted column i. */
  readonly perm: Int32Array;
  /** dead[c] = 1: original column c had diag(H) = 0 (its weights are zeroed). */
  readonly dead: Uint8Array;
  /** The relative damping that made H factorizable. */
  readonly dampUsed: number;
}

export interface GptqPrepareOptions {
  damp?: number;
  actOrder?: boolean;
  linalg?: Linalg64;
  name?: string;
  maxDampRetries?: number;
  /**
   * Overwrite H with U (permute, damp and invert it where it is, e.g. in Linalg64.matrix(k): no second
   * k×k copy). Default false: H is left alone and U is a new array (the reference path).
   */
  inPlace?: boolean;
}

/** Steps 1-4 of the module comment: one Hinv serves every weight that shares H (q/k/v, gate/up). */
export function gptqPrepare(H: Float64Array, k: number, opts: GptqPrepareOptions = {}): GptqHinv {
  const name = opts.name;
  if (!Number.isInteger(k) || k < 1) throw new UsageError('E_HESSIAN_SHAPE', `Hessian width k must be a positive integer, got ${k}`);
  if (H.length < k * k) throw new UsageError('E_HESSIAN_SHAPE', `Hessian has ${H.length} values, expected k*k = ${k * k}`);
  for (let i = 0; i < k * k; i++) {
    if (!Number.isFinite(H[i]!)) throw new EdgeqError('E_HESSIAN_NONFINITE', `the Hessian${name ? ` of '${name}'` : ''} has a non-finite value at ${i}`, 'calibration activations overflowed; check the calibration data and the fp32 forward pass');
  }
  const damp0 = opts.damp ?? 0.01;
  if (!(damp0 >= 0) || !Number.isFinite(damp0)) throw new UsageError('E_GPTQ_DAMP', `damp must be a finite value ≥ 0, got ${damp0}`);

  // 1-2. dead columns, permutation
  const diag = new Float64Array(k);
  const dead = new Uint8Array(k);
  for (let i = 0; i < k; i++) {
    diag[i] = H[i * k + i]!;
    if (diag[i] === 0) {
      dead[i] = 1;
      diag[i] = 1;
    }
  }
  const perm = opts.actOrder ? actOrderPermutation(diag) : Int32Array.from({ length: k }, (_, i) => i);

  // 3-4. damping with retries, Hinv
  let meanDiag = 0;
  for (let i = 0; i < k; i++) meanDiag += diag[i]!;
  meanDiag /= k;
  const linalg = opts.linalg ?? tsLinalg64;
  let U: Float64Array;
  if (opts.inPlace) {
    U = H.length === k * k ? H : H.subarray(0, k * k);
    if (opts.actOrder) permuteSymmetricInPlace(U, k, perm);
  } else U = new Float64Array(k * k); // (k, k) permuted H, then Hinv (upper)
  let dampUsed = damp0;
  const retries = opts.maxDampRetries ?? 30;
  for (let attempt = 0; ; attempt++) {
    if (opts.inPlace) {
      for (let i = 0; i < k; i++) U[i * k + i] = diag[perm[i]!]! + dampUsed * meanDiag;
      if (linalg.cholInverseUpperInPlace(U, k, PIVOT_TOL)) break;
    } else {
      for (let i = 0; i < k; i++) {
        const hi = perm[i]! * k;
        for (let j = 0; j < k; j++) U[i * k + j] = H[hi + perm[j]!]!;
        U[i * k + i] = diag[perm[i]!]! + dampUsed * meanDiag;
      }
      if (linalg.cholInverseUpper(U, k, { out: U, pivotTol: PIVOT_TOL })) break;
    }
    if (attempt >= retries) {
      throw new EdgeqError(
        'E_GPTQ_HESSIAN',
        `the Hessian${name ? ` of '${name}'` : ''} is not positive definite even with damp ${dampUsed}`,
        'check the calibration data (enough tokens, no degenerate inputs) or quantize this tensor with RTN',
      );
    }
    dampUsed = Math.max(dampUsed + 0.01, 2 * dampUsed);
  }
  return { k, U, perm, dead, dampUsed };
}

/** In place: A (k, k) -> P·A·Pᵀ, i.e. A'[i, j] = A[perm[i], perm[j]], with two k-long temporaries. */
export function permuteSymmetricInPlace(a: Float64Array, k: number, perm: Int32Array): void {
  const tmp = new Float64Array(k);
  for (let r = 0; r < k; r++) {
    const row = a.subarray(r * k, (r + 1) * k);
    tmp.set(row);
    for (let j = 0; j < k; j++) row[j] = tmp[perm[j]!]!;
  }
  // rows: row i <- old row perm[i], cycle by cycle
  const done = new Uint8Array(k);
  for (let s = 0; s < k; s++) {
    if (done[s] || perm[s] === s) continue;
    tmp.set(a.subarray(s * k, (s + 1) * k)); // old row s
    let i = s;
    for (;;) {
      done[i] = 1;
      const src = perm[i]!;
      if (src === s) {
        a.set(tmp, i * k);
        break;
      }
      a.copyWithin(i * k, src * k, (src + 1) * k);
      i = src;
    }
  }
}

/** Quantizes W (n, k) with Hessian H (k, k) on `grid`; see the module comment. H and W are not modified. */
export function gptqQuantize(
  w: Float32Array,
  n: number,
  k: number,
  H: Float64Array,
  grid: GridSpec,
  opts: GptqOptions = {},
): GptqResult {
  checkGroupable(grid, k, opts.name);
  if (w.length < n * k) throw new UsageError('E_QUANT_SHAPE', `weight${opts.name ? ` '${opts.name}'` : ''} has ${w.length} values, expected n*k = ${n * k}`);
  assertFinite(w, n * k, opts.name);
  const hinv = gptqPrepare(H, k, { damp: opts.damp, actOrder: opts.actOrder, linalg: opts.linalg, name: opts.name, maxDampRetries: opts.maxDampRetries });
  return gptqSolve(w, n, k, hinv, grid, opts);
}

/**
 * Step 5-6 of the module comment on a prepared Hinv. The working copy (n, k) is a new array unless
 * opts.inPlace (then w itself); with returnDequantized or inPlace it ends holding Q in original order.
 */
export function gptqSolve(w: Float32Array, n: number, k: number, hinv: GptqHinv, grid: GridSpec, opts: GptqSolveOptions = {}): GptqResult {
  const name = opts.name;
  checkGroupable(grid, k, name);
  if (w.length < n * k) throw new UsageError('E_QUANT_SHAPE', `weight${name ? ` '${name}'` : ''} has ${w.length} values, expected n*k = ${n * k}`);
  if (hinv.k !== k) throw new UsageError('E_HESSIAN_SHAPE', `Hinv is ${hinv.k}×${hinv.k}, the weight has k = ${k}`);
  assertFinite(w, n * k, name);
  const { U, perm, dead, dampUsed } = hinv;
  const q = allocQuantized(qtypeFor(grid).id, grid, n, k);
  const g = q.groupSize;
  const G = q.numGroups;
  const bs0 = opts.blockSize ?? 128;
  if (!Number.isInteger(bs0) || bs0 < 1) throw new UsageError('E_GPTQ_BLOCK', `blockSize must be a positive integer, got ${bs0}`);
  const B = g < k ? Math.ceil(bs0 / g) * g : bs0; // groups never straddle blocks
  const lazy0 = opts.lazyColumns ?? 1024;
  if (!Number.isInteger(lazy0) || lazy0 < 1) throw new UsageError('E_GPTQ_BLOCK', `lazyColumns must be a positive integer, got ${lazy0}`);

  // the (n, k) permuted working copy, dead columns zeroed
  const W = opts.inPlace ? w : new Float32Array(n * k);
  const tmpRow = new Float32Array(k);
  for (let r = 0; r < n; r++) {
    const src = w.subarray(r * k, (r + 1) * k);
    if (opts.inPlace) tmpRow.set(src);
    const from = opts.inPlace ? tmpRow : src;
    for (let j = 0; j < k; j++) W[r * k + j] = dead[perm[j]!] ? 0 : from[perm[j]!]!;
  }

  // 5. column loop in blocks
  const backend = opts.backend ?? createScalarBackend();
  const mq = maxQ(grid.bits);
  const keepQ = !!(opts.returnDequantized || opts.inPlace); // W[r, i] <- q once column i is done
  const err = new Float32Array(n * B); // Err1 (n, cnt)
  const bt = new Float32Array(Math.max(0, k - 1) * B); // Hinv[i1:i2, i2:]ᵀ (k − i2, cnt)
  const lazyCols = Math.min(lazy0, Math.max(1, k - B));
  const y = new Float32Array(n * lazyCols); // Err1 · Hinv[i1:i2, c0:c1] (n, c1 − c0)
  const params = (off: number): GroupParams =>
    opts.mseClip ? mseParams(W, off, g, grid, { name }) : minMaxParams(W, off, g, grid, name);
  let scale = 0;
  let zero = 0;
  let loss = 0;
  for (let i1 = 0; i1 < k; i1 += B) {
    const i2 = Math.min(i1 + B, k);
    const cnt = i2 - i1;
    for (let r = 0; r < n; r++) {
      const row = r * k;
      if (i1 % g !== 0) {
        // a group that started in an earlier block (per-channel): resume this row's params
        scale = q.scales[r * G + Math.floor(i1 / g)]!;
        zero = q.zeros[r * G + Math.floor(i1 / g)]!;
      }
      for (let i = i1; i < i2; i++) {
        if (i % g === 0) {
          ({ scale, zero } = params(row + i));
          q.scales[r * G + i / g] = scale;
          q.zeros[r * G + i / g] = zero;
        }
        const d = U[i * k + i]!;
        const x = W[row + i]!;
        const code = quantCode(x, scale, zero, mq);
        const qv = dequantValue(scale, code, zero);
        q.codes[row + perm[i]!] = code;
        if (keepQ) W[row + i] = qv;
        const e = (x - qv) / d;
        loss += (e * e) / 2;
        err[r * cnt + (i - i1)] = e;
        const ui = i * k;
        for (let j = i + 1; j < i2; j++) W[row + j] -= e * U[ui + j]!;
      }
    }
    const rest = k - i2;
    if (rest > 0) {
      for (let t = 0; t < cnt; t++) {
        const ui = (i1 + t) * k + i2;
        for (let c = 0; c < rest; c++) bt[c * cnt + t] = U[ui + c]!;
      }
      // lazy batch update, lazyCols columns of W[:, i2:] at a time (a bounded product buffer)
      for (let c0 = 0; c0 < rest; c0 += lazyCols) {
        const w1 = Math.min(lazyCols, rest - c0);
        const yv = y.subarray(0, n * w1);
        backend.matmulTransient(err.subarray(0, n * cnt), n, bt.subarray(c0 * cnt, (c0 + w1) * cnt), w1, cnt, yv);
        for (let r = 0; r < n; r++) {
          const row = r * k + i2 + c0;
          const yr = r * w1;
          for (let c = 0; c < w1; c++) W[row + c] -= yv[yr + c]!;
        }
      }
    }
  }

  // groups in permuted order -> gIdx for the original columns (null when it is the default c / g)
  if (g < k && perm.some((p, i) => p !== i)) {
    const gIdx = new Int32Array(k);
    for (let i = 0; i < k; i++) gIdx[perm[i]!] = Math.floor(i / g);
    q.gIdx = gIdx;
  }
  if (!keepQ) return { q, loss, dampUsed };
  // W holds Q in permuted order: back to the original column order, row by row
  if (perm.some((p, i) => p !== i)) {
    for (let r = 0; r < n; r++) {
      const row = W.subarray(r * k, (r + 1) * k);
      tmpRow.set(row);
      for (let i = 0; i < k; i++) row[perm[i]!] = tmpRow[i]!;
    }
  }
  return { q, loss, dampUsed, dequantized: W };
}
