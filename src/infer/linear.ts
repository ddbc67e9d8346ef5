/**
 * A linear layer as the forward pass sees it: y (m, out) = x (m, in) · Wᵀ + b. Dense fp32 weights run on
 * a MatmulBackend; quantized and low-rank layers implement the same interface later.
 */
import type { MatmulBackend, WeightHandle } from '../kernels/backend.js';
import { addBiasRows } from './ops.js';

export interface Linear {
  readonly outFeatures: number;
  readonly inFeatures: number;
  /** x (m, inFeatures) → (m, outFeatures). */
  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array;
  /** Weight bytes as executed (for bits-per-weight and roofline reports). */
  readonly weightBytes: number;
  free(): void;
}

export class DenseLinear implements Linear {
  readonly outFeatures: number;
  readonly inFeatures: number;
  private readonly handle: WeightHandle;

  /** w: (out, in) row-major fp32, bias: (out,) or null. The backend keeps its own copy of w. */
  constructor(
    private readonly backend: MatmulBackend,
    w: Float32Array,
    out: number,
    inF: number,
    private readonly bias: Float32Array | null,
  ) {
    this.outFeatures = out;
    this.inFeatures = inF;
    this.handle = backend.prepareWeight(w, out, inF);
  }

  get weightBytes(): number {
    return this.outFeatures * this.inFeatures * 4;
  }

  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    const y = this.backend.matmul(x, m, this.handle, out);
    if (this.bias) addBiasRows(y, this.bias, m, this.outFeatures);
    return y;
  }

  free(): void {
    this.backend.freeWeight(this.handle);
  }
}
