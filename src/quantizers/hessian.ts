/**
 * GPTQ's layer statistic, accumulated over calibration batches (IST-DASLab `GPTQ.add_batch`):
 *
 *     H ← H · n/(n+t) + (2/(n+t)) · XᵀX          X (t, k) = one batch of t input rows, n = rows so far
 *
 * i.e. H = 2·XᵀX/N over all N rows seen, kept as a running average in Float64. The XᵀX product runs
 * on a MatmulBackend (fp32, WebAssembly SIMD in practice) as Xᵀ (k, t) · (Xᵀ)ᵀ and is symmetrized and
 * scaled in f64; without a backend (k < 512 only) a symmetric f64 loop is used.
 *
 * The product is formed a band of rows at a time (Xᵀ[i0:i1] · X, a few MiB) instead of as one k×k fp32
 * matrix, and only its lower triangle: band [i0, i1) forms P[i0:i1, 0:i1] (MatmulBackend.matmulPrefix), about
 * half of the full product's work. Row i updates H[i, j ≤ i] with ½(P[i, j] + P[j, i]) = P[i, j]: P is
 * exactly symmetric, because P[i, j] and P[j, i] sum the same fp32 products x_ri·x_rj in the same order.
 * The upper triangle is mirrored at the end. The full product (opts.product 'full': every column, P[i, j > i]
 * parked in the strict upper triangle of H for row j) is the reference; a test checks the two agree bit for bit.
 * H itself may live in caller-provided storage (Linalg64.matrix(k): the wasm buffer GPTQ inverts in place).
 */
import { EdgeqError, UsageError } from '../core/errors.js';
import type { MatmulBackend } from '../kernels/backend.js';

/** Widths from which the XᵀX product must go through a matmul backend. */
export const HESSIAN_BACKEND_MIN_K = 512;

export interface HessianOptions {
  /** Backend for the XᵀX product; required when k ≥ 512. */
  backend?: MatmulBackend;
  /** Where H lives (≥ k·k values; zeroed here), e.g. Linalg64.matrix(k). Default: a new Float64Array. */
  storage?: Float64Array;
  /**
   * Rows of XᵀX formed per backend call (default: about 8 MiB of fp32 product; at least 16: a backend's
   * few-row path may round differently from its GEMM).
   */
  bandRows?: number;
  /**
   * 'half' (default, when the backend has matmulPrefix): each band forms only the columns up to its last row,
   * about half of XᵀX, using P's symmetry; 'full': every column, the strict upper triangle parked (the
   * reference the half product is tested against: the same H bit for bit).
   */
  product?: 'half' | 'full';
}

export class HessianAccumulator {
  /** (k, k) running 2·XᵀX/N, symmetric. */
  readonly H: Float64Array;
  private rows = 0;
  private readonly backend: MatmulBackend | undefined;
  private xt: Float32Array | undefined; // (k, t) transposed batch, grown on demand
  private prod: Float32Array | undefined; // (bandRows, k) fp32 band of XᵀX
  private readonly bandRows: number;
  private readonly half: boolean;

  constructor(
    readonly k: number,
    opts: HessianOptions = {},
  ) {
    if (!Number.isInteger(k) || k < 1) throw new UsageError('E_HESSIAN_SHAPE', `Hessian width k must be a positive integer, got ${k}`);
    if (!opts.backend && k >= HESSIAN_BACKEND_MIN_K) {
      throw new EdgeqError('E_HESSIAN_BACKEND', `a ${k}×${k} Hessian needs a matmul backend for XᵀX`, 'pass { backend } (createWasmBackend())');
    }
    this.backend = opts.backend;
    if (opts.storage) {
      if (opts.storage.length < k * k) throw new UsageError('E_HESSIAN_SHAPE', `Hessian storage has ${opts.storage.length} values, expected k*k = ${k * k}`);
      this.H = opts.storage.length === k * k ? opts.storage : opts.storage.subarray(0, k * k);
      this.H.fill(0);
    } else this.H = new Float64Array(k * k);
    const band = opts.bandRows ?? Math.max(16, Math.floor((8 << 20) / 4 / k));
    if (!Number.isInteger(band) || band < 1) throw new UsageError('E_HESSIAN_SHAPE', `bandRows must be a positive integer, got ${band}`);
    this.bandRows = Math.min(Math.max(16, band), k);
    this.half = opts.product !== 'full';
  }

  /** Rows (tokens) accumulated so far. */
  get nsamples(): number {
    return this.rows;
  }

  /** Adds one batch x (t, k) row-major. */
  addBatch(x: Float32Array, t: number): void {
    const k = this.k;
    if (!Number.isInteger(t) || t < 0) throw new UsageError('E_HESSIAN_SHAPE', `batch rows must be a non-negative integer, got ${t}`);
    if (x.length < t * k) throw new UsageError('E_HESSIAN_SHAPE', `batch has ${x.length} values, expected t*k = ${t}*${k}`);
    if (t === 0) return;
    const H = this.H;
    const decay = this.rows / (this.rows + t);
    const f = 2 / (this.rows + t);
    this.rows += t;
    // Xᵀ (k, t)
    if (!this.xt || this.xt.length < k * t) this.xt = new Float32Array(k * t);
    const xt = this.xt;
    for (let r = 0; r < t; r++) for (let c = 0; c < k; c++) xt[c * t + r] = x[r * k + c]!;
    if (this.backend) {
      const R = this.bandRows;
      this.prod ??= new Float32Array(R * k);
      const handle = this.backend.prepareWeight(xt, k, t); // Xᵀ (k, t) as the "weight": rows of Xᵀ · X
      const half = this.half && !!this.backend.matmulPrefix;
      try {
        for (let i0 = 0; i0 < k; i0 += R) {
          const i1 = Math.min(k, i0 + R);
          const band = xt.subarray(i0 * t, i1 * t);
          if (half) {
            // P[i0:i1, 0:i1] only: the lower triangle's rows. P is symmetric value for value (P[i, j] and P[j, i]
            // are the same products summed in the same order), so ½(P[i, j] + P[j, i]) = ½(P[i, j] + P[i, j]).
            const p = this.backend.matmulPrefix!(band, i1 - i0, handle, i1, this.prod); // (i1 − i0, i1)
            for (let i = i0; i < i1; i++) {
              const pi = (i - i0) * i1;
              const hi = i * k;
              for (let j = 0; j <= i; j++) {
                const v = p[pi + j]!;
                H[hi + j] = H[hi + j]! * decay + f * 0.5 * (v + v);
              }
            }
            continue;
          }
          const p = this.backend.matmul(band, i1 - i0, handle, this.prod); // (i1 − i0, k)
          for (let i = i0; i < i1; i++) {
            const pi = (i - i0) * k;
            const hi = i * k;
            for (let j = 0; j <= i; j++) H[hi + j] = H[hi + j]! * decay + f * 0.5 * (p[pi + j]! + (j === i ? p[pi + j]! : H[j * k + i]!));
            for (let j = i + 1; j < k; j++) H[hi + j] = p[pi + j]!; // parked for row j
          }
        }
      } finally {
        this.backend.freeWeight(handle);
      }
      for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) H[j * k + i] = H[i * k + j]!;
      return;
    }
    for (let i = 0; i < k; i++) {
      const xi = i * t;
      for (let j = 0; j <= i; j++) {
        const xj = j * t;
        let s = 0;
        for (let r = 0; r < t; r++) s += xt[xi + r]! * xt[xj + r]!;
        const v = H[i * k + j]! * decay + f * s;
        H[i * k + j] = v;
        H[j * k + i] = v;
      }
    }
  }
}
