/**
 * A linear layer whose weight stays packed in low-bit form: y (m, out) = x (m, in) · Ŵᵀ + b, run by the
 * backend's low-bit kernels (LUT for 2/3/4-bit by default, int8-dot for 8-bit; see src/kernels/lowbit-plan.ts).
 */
import { EdgeqError } from '../core/errors.js';
import type { MatmulBackend, PrepareQuantizedOptions, QuantWeightHandle } from '../kernels/backend.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import type { Linear } from './linear.js';
import { addBiasRows } from './ops.js';

export class QuantizedLinear implements Linear {
  readonly outFeatures: number;
  readonly inFeatures: number;
  private readonly handle: QuantWeightHandle;

  /** q: (out, in) quantized weight; bias: (out,) or null. The backend keeps its own packed copy of q. */
  constructor(
    private readonly backend: MatmulBackend,
    q: QuantizedWeight,
    private readonly bias: Float32Array | null,
    opts?: PrepareQuantizedOptions,
  ) {
    if (bias && bias.length !== q.n) {
      throw new EdgeqError('E_MATMUL_SHAPE', `bias has ${bias.length} values, expected out features ${q.n}`);
    }
    this.outFeatures = q.n;
    this.inFeatures = q.k;
    this.handle = backend.prepareQuantized(q, opts);
  }

  /** Which kernel runs this layer. */
  get kernel(): 'lut' | 'int8' {
    return this.handle.kernel;
  }

  get weightBytes(): number {
    return this.handle.bytes;
  }

  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    const y = this.backend.matmulQuantized(x, m, this.handle, out);
    if (this.bias) addBiasRows(y, this.bias, m, this.outFeatures);
    return y;
  }

  free(): void {
    this.backend.freeWeight(this.handle);
  }
}
