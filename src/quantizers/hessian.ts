/**
 * GPTQ's layer statistic, accumulated over calibration batches (IST-DASLab `GPTQ.add_batch`):
 *
 *     H ← H · n/(n+t) + (2/(n+t)) · XᵀX          X (t, k) = one batch of t input rows, n = rows so far
 *
 * i.e. H = 2·XᵀX/N over all N rows seen, kept as a running average in Float64. The XᵀX product runs
 * on a MatmulBackend (fp32, WebAssembly SIMD in practice) as Xᵀ (k, t) · (Xᵀ)ᵀ and is symmetrized and
 * scaled in f64; without a backend (k < 512 only) a symmetric f64 loop is used.
 */
import { EdgeqError, UsageError } from '../core/errors.js';
import type { MatmulBackend } from '../kernels/backend.js';

/** Widths from which the XᵀX product must go through a matmul backend. */
export const HESSIAN_BACKEND_MIN_K = 512;

export interface HessianOptions {
  /** Backend for the XᵀX product; required when k ≥ 512. */
  backend?: MatmulBackend;
}

export class HessianAccumulator {
  /** (k, k) running 2·XᵀX/N, symmetric. */
  readonly H: Float64Array;
  private rows = 0;
  private readonly backend: MatmulBackend | undefined;
  private xt: Float32Array | undefined; // (k, t) transposed batch, grown on demand
  private prod: Float32Array | undefined; // (k, k) fp32 XᵀX of one batch

  constructor(
    readonly k: number,
    opts: HessianOptions = {},
  ) {
    if (!Number.isInteger(k) || k < 1) throw new UsageError('E_HESSIAN_SHAPE', `Hessian width k must be a positive integer, got ${k}`);
    if (!opts.backend && k >= HESSIAN_BACKEND_MIN_K) {
      throw new EdgeqError('E_HESSIAN_BACKEND', `a ${k}×${k} Hessian needs a matmul backend for XᵀX`, 'pass { backend } (createWasmBackend())');
    }
    this.backend = opts.backend;
    this.H = new Float64Array(k * k);
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
      this.prod ??= new Float32Array(k * k);
      const p = this.backend.matmulTransient(xt, k, xt, k, t, this.prod); // (k, k) = Xᵀ·X
      for (let i = 0; i < k; i++) {
        for (let j = 0; j <= i; j++) {
          const v = H[i * k + j]! * decay + f * 0.5 * (p[i * k + j]! + p[j * k + i]!);
          H[i * k + j] = v;
          H[j * k + i] = v;
        }
      }
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
