/**
 * A low-rank linear layer: W (out n, in k) ≈ U (n, r) · V (r, k), run as two backend matmuls
 *
 *   t (m, r) = x (m, k) · Vᵀ        y (m, n) = t · Uᵀ (+ b)
 *
 * i.e. (n + k)·r multiply-adds per row instead of n·k. The factors are either dense fp32 (prepared with
 * prepareWeight) or quantized registry weights (prepared with prepareQuantized, run by the low-bit
 * kernels); each is prepared once. weightBytes counts what is executed: (n + k)·r·4 for fp32 factors, the
 * packed bytes of both handles for quantized ones.
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

type Handles =
  | { kind: 'dense'; u: WeightHandle; v: WeightHandle }
  | { kind: 'quantized'; u: QuantWeightHandle; v: QuantWeightHandle };

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
    const v = backend.prepareWeight(f.v, r, k);
    const u = backend.prepareWeight(f.u, n, r);
    return new LowRankLinear(backend, { kind: 'dense', u, v }, n, k, r, bias);
  }

  /** Quantized factors, run by the backend's low-bit kernels. */
  static fromQuantized(backend: MatmulBackend, q: QuantFactors, bias: Float32Array | null = null, opts?: PrepareQuantizedOptions): LowRankLinear {
    const { n, k, r } = q;
    LowRankLinear.checkCommon(n, k, r, bias);
    if (q.u.n !== n || q.u.k !== r) throw shapeError(`U is ${q.u.n}×${q.u.k}, expected ${n}×${r}`);
    if (q.v.n !== r || q.v.k !== k) throw shapeError(`V is ${q.v.n}×${q.v.k}, expected ${r}×${k}`);
    const v = backend.prepareQuantized(q.v, opts);
    let u: QuantWeightHandle;
    try {
      u = backend.prepareQuantized(q.u, opts);
    } catch (e) {
      backend.freeWeight(v);
      throw e;
    }
    return new LowRankLinear(backend, { kind: 'quantized', u, v }, n, k, r, bias);
  }

  get weightBytes(): number {
    return this.h.kind === 'dense' ? (this.outFeatures + this.inFeatures) * this.rank * 4 : this.h.u.bytes + this.h.v.bytes;
  }

  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    const need = m * this.rank;
    if (!this.scratch || this.scratch.length < need) this.scratch = new Float32Array(need);
    const t = this.scratch.subarray(0, need);
    const be = this.backend;
    let y: Float32Array;
    if (this.h.kind === 'dense') {
      be.matmul(x, m, this.h.v, t);
      y = be.matmul(t, m, this.h.u, out);
    } else {
      be.matmulQuantized(x, m, this.h.v, t);
      y = be.matmulQuantized(t, m, this.h.u, out);
    }
    if (this.bias) addBiasRows(y, this.bias, m, this.outFeatures);
    return y;
  }

  free(): void {
    this.backend.freeWeight(this.h.v);
    this.backend.freeWeight(this.h.u);
    this.scratch = undefined;
  }
}
