/** Quantize-dequantize helpers the pipeline and AWQ share. */
import { dequantize } from '../qtypes/registry.js';
import type { GridSpec } from '../qtypes/types.js';
import { quantizeRtn } from '../quantizers/rtn.js';

export { dequantize };

/** Ŵ = dequantize(RTN(W)) for W (n, k): AWQ's fake quantization. */
export function quantizeRtnFake(w: Float32Array, n: number, k: number, grid: GridSpec): Float32Array {
  return dequantize(quantizeRtn(w, n, k, grid));
}
