/**
 * The scalar oracle: obviously-correct triple loops in plain TypeScript, single-threaded.
 *
 * Accumulation: each dot product is summed in a JS number (float64) in index order k = 0..K-1 and
 * rounded to float32 once, when stored into the output. This is slightly *more* accurate than any
 * fp32-accumulating kernel, which is what an oracle should be.
 */
import { EdgeqError } from '../core/errors.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import {
  checkMatmulArgs,
  checkWeightArgs,
  checkWeightBand,
  checkWeightShape,
  type MatmulBackend,
  type PrepareQuantizedOptions,
  type QuantWeightHandle,
  type WeightHandle,
  type WeightWriter,
} from './backend.js';
import { lowbitMatmulRef } from './lowbit-oracle.js';
import { makePlan, type LowbitPlan } from './lowbit-plan.js';

class ScalarWeight implements WeightHandle {
  lent = false;
  constructor(
    readonly n: number,
    readonly k: number,
    public data: Float32Array | null,
  ) {}
}

/** A quantized weight for the oracle: the unpacked codes plus the plan the WASM kernels would use. */
class ScalarQuantWeight implements QuantWeightHandle {
  readonly n: number;
  readonly k: number;
  readonly kernel: 'lut' | 'int8';
  readonly bytes: number;
  constructor(
    public q: QuantizedWeight | null,
    readonly plan: LowbitPlan,
  ) {
    this.n = plan.n;
    this.k = plan.k;
    this.kernel = plan.kernel;
    this.bytes = plan.packedBytes + (plan.perm ? plan.k * 4 : 0);
  }
}

// Y (m, n) = A (m, k) · B (n, k)ᵀ, all row-major.
function matmulRef(a: Float32Array, m: number, b: Float32Array, n: number, k: number, out: Float32Array): void {
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s = 0; // float64
      for (let p = 0; p < k; p++) s += a[ai + p]! * b[bj + p]!;
      out[i * n + j] = s;
    }
  }
}

export class ScalarBackend implements MatmulBackend {
  readonly name = 'scalar';
  readonly threads = 1;

  prepareWeight(w: Float32Array, n: number, k: number): WeightHandle {
    checkWeightArgs(w, n, k);
    return new ScalarWeight(n, k, w.slice(0, n * k));
  }

  beginWeight(n: number, k: number): WeightWriter {
    checkWeightShape(n, k);
    let data: Float32Array | null = new Float32Array(n * k);
    const wr = {
      n,
      k,
      rowAlign: 1,
      rowsWritten: 0,
      write(band: Float32Array, rows: number): void {
        if (!data) throw new EdgeqError('E_MATMUL_HANDLE', 'this weight writer was finished or aborted');
        checkWeightBand(wr, band, rows);
        data.set(band.subarray(0, rows * k), wr.rowsWritten * k);
        wr.rowsWritten += rows;
      },
      finish(): WeightHandle {
        if (!data) throw new EdgeqError('E_MATMUL_HANDLE', 'this weight writer was finished or aborted');
        if (wr.rowsWritten !== n) throw new EdgeqError('E_MATMUL_SHAPE', `weight writer got ${wr.rowsWritten} of ${n} rows`);
        const h = new ScalarWeight(n, k, data);
        data = null;
        return h;
      },
      abort(): void {
        data = null;
      },
    };
    return wr;
  }

  private data(w: WeightHandle, lentOk = false): Float32Array {
    if (!(w instanceof ScalarWeight)) {
      throw new EdgeqError('E_MATMUL_HANDLE', 'weight handle was not prepared by this scalar backend');
    }
    if (!w.data) throw new EdgeqError('E_MATMUL_HANDLE', 'weight handle was already freed');
    if (w.lent && !lentOk) throw new EdgeqError('E_MATMUL_HANDLE', 'weight handle is lent out (unpackWeight) until repackWeight');
    return w.data;
  }

  matmul(x: Float32Array, m: number, w: WeightHandle, out?: Float32Array): Float32Array {
    const data = this.data(w);
    checkMatmulArgs(x, m, w.n, w.k, out);
    const y = out ?? new Float32Array(m * w.n);
    matmulRef(x, m, data, w.n, w.k, y);
    return y;
  }

  unpackWeight(w: WeightHandle): Float32Array {
    const data = this.data(w);
    (w as ScalarWeight).lent = true;
    return data;
  }

  repackWeight(w: WeightHandle, values: Float32Array): void {
    const h = w as ScalarWeight;
    const data = this.data(w, true);
    checkWeightArgs(values, h.n, h.k);
    if (values !== data) data.set(values.subarray(0, h.n * h.k));
    h.lent = false;
  }

  matmulPrefix(x: Float32Array, m: number, w: WeightHandle, rows: number, out?: Float32Array): Float32Array {
    const data = this.data(w);
    if (!Number.isInteger(rows) || rows < 0 || rows > w.n) throw new EdgeqError('E_MATMUL_SHAPE', `rows must be an integer in 0..${w.n}, got ${rows}`);
    checkMatmulArgs(x, m, rows, w.k, out);
    const y = out ?? new Float32Array(m * rows);
    matmulRef(x, m, data, rows, w.k, y);
    return y;
  }

  matmulTransient(a: Float32Array, m: number, b: Float32Array, n: number, k: number, out?: Float32Array): Float32Array {
    checkMatmulArgs(a, m, n, k, out, b);
    const y = out ?? new Float32Array(m * n);
    matmulRef(a, m, b, n, k, y);
    return y;
  }

  prepareQuantized(q: QuantizedWeight, opts: PrepareQuantizedOptions = {}): QuantWeightHandle {
    return new ScalarQuantWeight(q, makePlan(q, opts.kernel));
  }

  matmulQuantized(x: Float32Array, m: number, h: QuantWeightHandle, out?: Float32Array): Float32Array {
    if (!(h instanceof ScalarQuantWeight)) {
      throw new EdgeqError('E_MATMUL_HANDLE', 'quantized weight handle was not prepared by this scalar backend');
    }
    if (!h.q) throw new EdgeqError('E_MATMUL_HANDLE', 'quantized weight handle was already freed');
    checkMatmulArgs(x, m, h.n, h.k, out);
    const y = out ?? new Float32Array(m * h.n);
    return lowbitMatmulRef(h.q, h.plan, x, m, y);
  }

  freeWeight(w: WeightHandle): void {
    if (w instanceof ScalarWeight) w.data = null;
    if (w instanceof ScalarQuantWeight) w.q = null;
  }

  dispose(): void {}
}

export function createScalarBackend(): MatmulBackend {
  return new ScalarBackend();
}
