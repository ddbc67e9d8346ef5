/**
 * One linear layer through the chosen method: which calibration statistics it needs (GPTQ: the Hessian
 * 2XᵀX/N; importance-weighted RTN: mean x² per input channel; plain RTN and AWQ's final step: none), and
 * the solve. Statistics are accumulated here; the solvers in src/quantizers are pure.
 */
import type { MatmulBackend } from '../kernels/backend.js';
import type { Linalg64 } from '../quantizers/linalg64.js';
import type { GridSpec, QuantizedWeight } from '../qtypes/types.js';
import { gptqQuantize } from '../quantizers/gptq.js';
import { HessianAccumulator } from '../quantizers/hessian.js';
import { quantizeRtn } from '../quantizers/rtn.js';
import type { QuantMethod } from './plan.js';

export type StatsKind = 'hessian' | 'sqmean';

export interface LayerStats {
  readonly kind: StatsKind;
  add(x: Float32Array, rows: number): void;
}

/** Mean x² per input channel (llama.cpp's imatrix statistic). */
export class SquareMeanAccumulator implements LayerStats {
  readonly kind = 'sqmean';
  private readonly sum: Float64Array;
  private rows = 0;
  constructor(readonly k: number) {
    this.sum = new Float64Array(k);
  }
  add(x: Float32Array, rows: number): void {
    const k = this.k;
    for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) this.sum[c] += x[r * k + c] * x[r * k + c];
    this.rows += rows;
  }
  mean(): Float32Array {
    return Float32Array.from(this.sum, (s) => (this.rows ? s / this.rows : 0));
  }
}

class HessianStats implements LayerStats {
  readonly kind = 'hessian';
  constructor(readonly acc: HessianAccumulator) {}
  add(x: Float32Array, rows: number): void {
    this.acc.addBatch(x, rows);
  }
}

export function statsFor(method: QuantMethod, imatrix: boolean): StatsKind | null {
  if (method === 'gptq') return 'hessian';
  if (method === 'rtn' && imatrix) return 'sqmean';
  return null;
}

export function createStats(kind: StatsKind, k: number, backend: MatmulBackend): LayerStats {
  return kind === 'hessian' ? new HessianStats(new HessianAccumulator(k, { backend })) : new SquareMeanAccumulator(k);
}

export interface LinearQuantOptions {
  name: string;
  damp?: number;
  actOrder?: boolean;
  backend: MatmulBackend;
  /** Float64 Cholesky/inverse for GPTQ (the WASM one; the TS oracle is the default). */
  linalg?: Linalg64;
}

export function quantizeLinear(method: QuantMethod, w: Float32Array, n: number, k: number, grid: GridSpec, stats: LayerStats | null, opts: LinearQuantOptions): { q: QuantizedWeight; loss?: number } {
  if (method === 'gptq') {
    if (!(stats instanceof HessianStats)) throw new Error('GPTQ needs Hessian statistics');
    const r = gptqQuantize(w, n, k, stats.acc.H, grid, { damp: opts.damp ?? 0.01, actOrder: opts.actOrder, backend: opts.backend, linalg: opts.linalg, name: opts.name });
    return { q: r.q, loss: r.loss };
  }
  const importance = stats instanceof SquareMeanAccumulator ? stats.mean() : undefined;
  return { q: quantizeRtn(w, n, k, grid, { importance, name: opts.name }) };
}
