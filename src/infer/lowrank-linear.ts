/**
 * A low-rank linear layer: W (out n, in k) ≈ U (n, r) · V (r, k), run as two backend matmuls
 *
 *   t (m, r) = x (m, k) · Vᵀ        y (m, n) = t · Uᵀ (+ b)
 *
 * i.e. (n + k)·r multiply-adds per row instead of n·k. Each factor is either dense fp32 (prepared with
 * prepareWeight) or a quantized registry weight (prepared with prepareQuantized, run by the low-bit
 * kernels), independently (fromParts: e.g. an int8 U with an fp16-stored V); each is prepared once.
 * weightBytes counts what is executed: rows·cols·4 for an fp32 factor, the packed bytes of a quantized one.
 */
import { EdgeqError } from '../core/errors.js';
import type { MatmulBackend, PrepareQuantizedOptions, QuantWeightHandle, WeightHandle } from '../kernels/backend.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import type { Linear } from './linear.js';
import { addBiasRows } from './ops.js';

/** Dense fp32 factors: u (n, r), v (r, k), row-major. */
export interface DenseFactors {
  n: number;
  k: number;
  r: number;
  u: Float32Array;
  v: Float32Array;
}

/** Quantized factors: u (n, r) and v (r, k) as registry weights. */
export interface QuantFactors {
  n: number;
  k: number;
  r: number;
  u: QuantizedWeight;
  v: QuantizedWeight;
}

type FactorHandle = { kind: 'dense'; h: WeightHandle; bytes: number } | { kind: 'quantized'; h: QuantWeightHandle; bytes: number };

interface Handles {
  u: FactorHandle;
  v: FactorHandle;
}

function shapeError(msg: string): EdgeqError {
  return new EdgeqError('E_MATMUL_SHAPE', `low-rank linear: ${msg}`);
}

export class LowRankLinear implements Linear {
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly rank: number;
  private scratch: Float32Array | undefined;

  private constructor(
    private readonly backend: MatmulBackend,
    private readonly h: Handles,
    n: number,
    k: number,
    r: number,
    private readonly bias: Float32Array | null,
  ) {
    this.outFeatures = n;
    this.inFeatures = k;
    this.rank = r;
  }

  private static checkCommon(n: number, k: number, r: number, bias: Float32Array | null): void {
    for (const [what, v] of [['n', n], ['k', k], ['r', r]] as const) {
      if (!Number.isInteger(v) || v < 1) throw shapeError(`${what} must be a positive integer, got ${v}`);
    }
    if (bias && bias.length !== n) throw shapeError(`bias has ${bias.length} values, expected out features ${n}`);
  }

  /** Dense fp32 factors; the backend keeps its own copies. */
  static fromFactors(backend: MatmulBackend, f: DenseFactors, bias: Float32Array | null = null): LowRankLinear {
    const { n, k, r } = f;
    LowRankLinear.checkCommon(n, k, r, bias);
    if (f.u.length !== n * r) throw shapeError(`U has ${f.u.length} values, expected n·r = ${n}·${r}`);
    if (f.v.length !== r * k) throw shapeError(`V has ${f.v.length} values, expected r·k = ${r}·${k}`);
    return LowRankLinear.fromParts(backend, { n, k, r, u: f.u, v: f.v }, bias);
  }

  /**
   * Each factor dense fp32 (Float32Array, row-major) or quantized, independently: U (n, r), V (r, k).
   */
  static fromParts(
    backend: MatmulBackend,
    f: { n: number; k: number; r: number; u: Float32Array | QuantizedWeight; v: Float32Array | QuantizedWeight },
    bias: Float32Array | null = null,
    opts?: PrepareQuantizedOptions,
  ): LowRankLinear {
    const { n, k, r } = f;
    LowRankLinear.checkCommon(n, k, r, bias);
    const prep = (what: 'U' | 'V', x: Float32Array | QuantizedWeight, rows: number, cols: number): FactorHandle => {
      if (x instanceof Float32Array) {
        if (x.length !== rows * cols) throw shapeError(`${what} has ${x.length} values, expected ${rows}·${cols}`);
        return { kind: 'dense', h: backend.prepareWeight(x, rows, cols), bytes: rows * cols * 4 };
      }
      if (x.n !== rows || x.k !== cols) throw shapeError(`${what} is ${x.n}×${x.k}, expected ${rows}×${cols}`);
      const h = backend.prepareQuantized(x, opts);
      return { kind: 'quantized', h, bytes: h.bytes };
    };
    const v = prep('V', f.v, r, k);
    let u: FactorHandle;
    try {
      u = prep('U', f.u, n, r);
    } catch (e) {
      backend.freeWeight(v.h);
      throw e;
    }
    return new LowRankLinear(backend, { u, v }, n, k, r, bias);
  }

  /** Quantized factors, run by the backend's low-bit kernels. */
  static fromQuantized(backend: MatmulBackend, q: QuantFactors, bias: Float32Array | null = null, opts?: PrepareQuantizedOptions): LowRankLinear {
    const { n, k, r } = q;
    LowRankLinear.checkCommon(n, k, r, bias);
    return LowRankLinear.fromParts(backend, { n, k, r, u: q.u, v: q.v }, bias, opts);
  }

  get weightBytes(): number {
    return this.h.u.bytes + this.h.v.bytes;
  }

  /** How each factor runs. */
  get factorKinds(): { u: 'dense' | 'quantized'; v: 'dense' | 'quantized' } {
    return { u: this.h.u.kind, v: this.h.v.kind };
  }

  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    const need = m * this.rank;
    if (!this.scratch || this.scratch.length < need) this.scratch = new Float32Array(need);
    const t = this.scratch.subarray(0, need);
    const be = this.backend;
    const run = (a: Float32Array, f: FactorHandle, o?: Float32Array): Float32Array =>
      f.kind === 'dense' ? be.matmul(a, m, f.h, o) : be.matmulQuantized(a, m, f.h, o);
    run(x, this.h.v, t);
    const y = run(t, this.h.u, out);
    if (this.bias) addBiasRows(y, this.bias, m, this.outFeatures);
    return y;
  }

  free(): void {
    this.backend.freeWeight(this.h.v.h);
    this.backend.freeWeight(this.h.u.h);
    this.scratch = undefined;
  }
}
