/**
 * Linears that read the same input (q/k/v; gate/up) run as one packed weight: their rows concatenated
 * into a single QuantizedWeight, so a decode step prepares the activation side (LUT tables or int8
 * activations) once and wakes the thread pool once per group instead of once per linear. Exact: every
 * output row is computed from its own codes, scales and zeros exactly as in the separate weights (the
 * kernels never mix rows), so the outputs are bit-identical to the unfused linears (tested).
 *
 * Fusable: the same quant type and grid, the same k, and the same act-order column map (or none).
 */
import { EdgeqError } from '../core/errors.js';
import type { MatmulBackend, PrepareQuantizedOptions, QuantWeightHandle } from '../kernels/backend.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import type { Linear } from './linear.js';
import { addBiasRows } from './ops.js';

/** Several linears of one input computed together: outputs in member order. */
export interface LinearGroup {
  forwardAll(x: Float32Array, m: number): Float32Array[];
}

/** Whether these quantized weights can be concatenated by rows into one. */
export function canFuseQuantized(qs: readonly QuantizedWeight[]): boolean {
  if (qs.length < 2) return false;
  const a = qs[0]!;
  return qs.every((q) => {
    if (q.qtype !== a.qtype || q.k !== a.k || q.groupSize !== a.groupSize || q.numGroups !== a.numGroups) return false;
    if (q.grid.bits !== a.grid.bits || q.grid.sym !== a.grid.sym || q.grid.groupSize !== a.grid.groupSize) return false;
    if ((q.gIdx === null) !== (a.gIdx === null)) return false;
    return q.gIdx === null || q.gIdx.every((v, i) => v === a.gIdx![i]);
  });
}

/** Row concatenation [q₀; q₁; …] (n = Σ nᵢ), the members' codes, scales and zeros copied in order. */
export function concatQuantizedRows(qs: readonly QuantizedWeight[]): QuantizedWeight {
  if (!canFuseQuantized(qs)) throw new EdgeqError('E_MATMUL_SHAPE', 'only weights of one quant type, grid, width and column map can be concatenated');
  const a = qs[0]!;
  const n = qs.reduce((s, q) => s + q.n, 0);
  const codes = new Uint8Array(n * a.k);
  const scales = new Float32Array(n * a.numGroups);
  const zeros = new Uint8Array(n * a.numGroups);
  let row = 0;
  for (const q of qs) {
    codes.set(q.codes.subarray(0, q.n * q.k), row * a.k);
    scales.set(q.scales.subarray(0, q.n * q.numGroups), row * a.numGroups);
    zeros.set(q.zeros.subarray(0, q.n * q.numGroups), row * a.numGroups);
    row += q.n;
  }
  return { qtype: a.qtype, grid: a.grid, n, k: a.k, groupSize: a.groupSize, numGroups: a.numGroups, codes, scales, zeros, gIdx: a.gIdx };
}

/** One packed weight for several same-input linears; `members` are the individual linears as views. */
export class FusedQuantizedLinear implements LinearGroup {
  readonly members: readonly Linear[];
  private readonly handle: QuantWeightHandle;
  private readonly widths: number[];
  private readonly bias: Float32Array | null;
  private readonly n: number;
  private readonly k: number;
  private freed = false;

  constructor(
    private readonly backend: MatmulBackend,
    qs: readonly QuantizedWeight[],
    biases: readonly (Float32Array | null)[],
    opts?: PrepareQuantizedOptions,
  ) {
    qs.forEach((q, i) => {
      const b = biases[i];
      if (b && b.length !== q.n) throw new EdgeqError('E_MATMUL_SHAPE', `bias ${i} has ${b.length} values, expected out features ${q.n}`);
    });
    const fused = concatQuantizedRows(qs);
    this.n = fused.n;
    this.k = fused.k;
    this.widths = qs.map((q) => q.n);
    if (biases.some((b) => b)) {
      this.bias = new Float32Array(fused.n);
      let o = 0;
      qs.forEach((q, i) => {
        if (biases[i]) this.bias!.set(biases[i]!, o);
        o += q.n;
      });
    } else this.bias = null;
    this.handle = backend.prepareQuantized(fused, opts);
    const share = (i: number): number => Math.round((this.handle.bytes * this.widths[i]!) / this.n);
    this.members = this.widths.map((w, i) => ({
      outFeatures: w,
      inFeatures: this.k,
      get weightBytes() {
        return share(i);
      },
      forward: (x: Float32Array, m: number, out?: Float32Array) => {
        const y = this.forwardAll(x, m)[i]!;
        if (!out) return y;
        out.set(y);
        return out;
      },
      free: () => this.free(),
    }));
  }

  get kernel(): 'lut' | 'int8' {
    return this.handle.kernel;
  }

  /** x (m, k) → one (m, nᵢ) output per member (views of one buffer when m = 1). */
  forwardAll(x: Float32Array, m: number): Float32Array[] {
    const y = this.backend.matmulQuantized(x, m, this.handle);
    if (this.bias) addBiasRows(y, this.bias, m, this.n);
    const outs: Float32Array[] = [];
    let c0 = 0;
    for (const w of this.widths) {
      if (m === 1) outs.push(y.subarray(c0, c0 + w));
      else {
        const o = new Float32Array(m * w);
        for (let t = 0; t < m; t++) o.set(y.subarray(t * this.n + c0, t * this.n + c0 + w), t * w);
        outs.push(o);
      }
      c0 += w;
    }
    return outs;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.backend.freeWeight(this.handle);
  }
}
