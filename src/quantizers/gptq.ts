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

export interface GptqOptions {
  /** Relative damping percdamp: H += damp·mean(diag H)·I (default 0.01). */
  damp?: number;
  /** Lazy-batch block width (default 128; rounded up to a multiple of the group size). */
  blockSize?: number;
  /** Quantize columns in order of decreasing diag(H) (desc_act). */
  actOrder?: boolean;
  /** quant.py MSE clip search for group params (grid 100, maxshrink 0.8, norm 2.4). */
  mseClip?: boolean;
  /** Backend for the lazy batch update (default: the scalar backend). */
  backend?: MatmulBackend;
  /** Float64 Cholesky etc. (default: TypeScript; createWasmLinalg64() for large k). */
  linalg?: Linalg64;
  /** Tensor name for error messages. */
  name?: string;
  /** Damping increases tried after a failed factorization (default 30). */
  maxDampRetries?: number;
  /** Also return the solved weights Q (n, k) in original column order (what dequantize(q) gives). */
  returnDequantized?: boolean;
}

export interface GptqResult {
  q: QuantizedWeight;
  /** Σ (w − q)²/Hinv[i,i]²/2 = ½·tr((W−Q) H_damped (W−Q)ᵀ). */
  loss: number;
  /** The relative damping that made H factorizable (opts.damp unless retries were needed). */
  dampUsed: number;
  /** Q (n, k), when opts.returnDequantized. */
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

/** Quantizes W (n, k) with Hessian H (k, k) on `grid`; see the module comment. H and W are not modified. */
export function gptqQuantize(
  w: Float32Array,
  n: number,
  k: number,
  H: Float64Array,
  grid: GridSpec,
  opts: GptqOptions = {},
): GptqResult {
  const name = opts.name;
  checkGroupable(grid, k, name);
  if (w.length < n * k) throw new UsageError('E_QUANT_SHAPE', `weight${name ? ` '${name}'` : ''} has ${w.length} values, expected n*k = ${n * k}`);
  if (H.length < k * k) throw new UsageError('E_HESSIAN_SHAPE', `Hessian has ${H.length} values, expected k*k = ${k * k}`);
  assertFinite(w, n * k, name);
  for (let i = 0; i < k * k; i++) {
    if (!Number.isFinite(H[i]!)) throw new EdgeqError('E_HESSIAN_NONFINITE', `the Hessian${name ? ` of '${name}'` : ''} has a non-finite value at ${i}`, 'calibration activations overflowed; check the calibration data and the fp32 forward pass');
  }
  const damp0 = opts.damp ?? 0.01;
  if (!(damp0 >= 0) || !Number.isFinite(damp0)) throw new UsageError('E_GPTQ_DAMP', `damp must be a finite value ≥ 0, got ${damp0}`);
  const q = allocQuantized(qtypeFor(grid).id, grid, n, k);
  const g = q.groupSize;
  const G = q.numGroups;
  const bs0 = opts.blockSize ?? 128;
  if (!Number.isInteger(bs0) || bs0 < 1) throw new UsageError('E_GPTQ_BLOCK', `blockSize must be a positive integer, got ${bs0}`);
  const B = g < k ? Math.ceil(bs0 / g) * g : bs0; // groups never straddle blocks

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
  const W = new Float32Array(n * k); // (n, k) permuted working copy
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < k; j++) W[r * k + j] = dead[perm[j]!] ? 0 : w[r * k + perm[j]!]!;
  }

  // 3-4. damping with retries, Hinv
  let meanDiag = 0;
  for (let i = 0; i < k; i++) meanDiag += diag[i]!;
  meanDiag /= k;
  const linalg = opts.linalg ?? tsLinalg64;
  const U = new Float64Array(k * k); // (k, k) permuted H, then Hinv (upper)
  let dampUsed = damp0;
  const retries = opts.maxDampRetries ?? 30;
  for (let attempt = 0; ; attempt++) {
    for (let i = 0; i < k; i++) {
      const hi = perm[i]! * k;
      for (let j = 0; j < k; j++) U[i * k + j] = H[hi + perm[j]!]!;
      U[i * k + i] = diag[perm[i]!]! + dampUsed * meanDiag;
    }
    if (linalg.cholInverseUpper(U, k, { out: U, pivotTol: PIVOT_TOL })) break;
    if (attempt >= retries) {
      throw new EdgeqError(
        'E_GPTQ_HESSIAN',
        `the Hessian${name ? ` of '${name}'` : ''} is not positive definite even with damp ${dampUsed}`,
        'check the calibration data (enough tokens, no degenerate inputs) or quantize this tensor with RTN',
      );
    }
    dampUsed = Math.max(dampUsed + 0.01, 2 * dampUsed);
  }

  // 5. column loop in blocks
  const backend = opts.backend ?? createScalarBackend();
  const mq = maxQ(grid.bits);
  const deq = opts.returnDequantized ? new Float32Array(n * k) : undefined; // (n, k) original order
  const err = new Float32Array(n * B); // Err1 (n, cnt)
  const bt = new Float32Array(Math.max(0, k - 1) * B); // Hinv[i1:i2, i2:]ᵀ (k − i2, cnt)
  const y = new Float32Array(n * Math.max(0, k - B)); // Err1 · Hinv[i1:i2, i2:] (n, k − i2)
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
        if (deq) deq[row + perm[i]!] = qv;
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
      const yv = y.subarray(0, n * rest);
      backend.matmulTransient(err.subarray(0, n * cnt), n, bt.subarray(0, rest * cnt), rest, cnt, yv);
      for (let r = 0; r < n; r++) {
        const row = r * k + i2;
        const yr = r * rest;
        for (let c = 0; c < rest; c++) W[row + c] -= yv[yr + c]!;
      }
    }
  }

  // groups in permuted order -> gIdx for the original columns (null when it is the default c / g)
  if (opts.actOrder && g < k && perm.some((p, i) => p !== i)) {
    const gIdx = new Int32Array(k);
    for (let i = 0; i < k; i++) gIdx[perm[i]!] = Math.floor(i / g);
    q.gIdx = gIdx;
  }
  return deq ? { q, loss, dampUsed, dequantized: deq } : { q, loss, dampUsed };
}
