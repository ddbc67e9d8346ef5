/**
 * The dense weight a low-rank linear stands for: W (n, k) = Û (n, r) · V̂ (r, k), with quantized factors
 * dequantized first. Each output row is accumulated in float64 over t = 0..r−1 and rounded to fp32 once,
 * so the result does not depend on a kernel's summation order; it is the "dequantized reference" of a
 * low-rank linear (build-model's quantized: 'dequantized' mode, GGUF/ONNX expansion with --allow-requantize).
 */
import { EdgeqError } from '../core/errors.js';
import type { LowRankWeight } from '../formats/edgeq/reader.js';
import { dequantize } from '../qtypes/registry.js';

/** Û·V̂ as fp32 (n, k), row-major. */
export function lowRankProduct(w: LowRankWeight): Float32Array {
  const { n, k, r } = w;
  const u = w.u instanceof Float32Array ? w.u : dequantize(w.u);
  const v = w.v instanceof Float32Array ? w.v : dequantize(w.v);
  if (u.length !== n * r || v.length !== r * k) {
    throw new EdgeqError('E_LOWRANK_SHAPE', `low-rank factors hold ${u.length} and ${v.length} values, expected n·r = ${n * r} and r·k = ${r * k}`);
  }
  const out = new Float32Array(n * k);
  const acc = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    for (let t = 0; t < r; t++) {
      const a = u[i * r + t]!;
      if (a === 0) continue;
      const row = t * k;
      for (let j = 0; j < k; j++) acc[j]! += a * v[row + j]!;
    }
    out.set(acc, i * k);
  }
  return out;
}
