/**
 * The dense weight a low-rank linear stands for: W (n, k) = Û (n, r) · V̂ (r, k), with quantized factors
 * dequantized first. Each output row is accumulated in float64 over t = 0..r−1 and rounded to fp32 once,
 * so the result does not depend on a kernel's summation order; it is the "dequantized reference" of a
 * low-rank linear (WeightSource.readF32, the GGUF/ONNX expansion with --allow-requantize).
 *
 * lowRankProductOn is the fast path build-model's quantized: 'dequantized' mode uses: the same product as
 * one backend matmul, U (n, r) · (Vᵀ)ᵀ, fp32 accumulation in the backend's order (a test compares the two).
 */
import { EdgeqError } from '../core/errors.js';
import type { MatmulBackend } from '../kernels/backend.js';
import type { LowRankWeight } from '../formats/edgeq/reader.js';
import { dequantize } from '../qtypes/registry.js';

function denseFactors(w: LowRankWeight): { u: Float32Array; v: Float32Array } {
  const { n, k, r } = w;
  const u = w.u instanceof Float32Array ? w.u : dequantize(w.u);
  const v = w.v instanceof Float32Array ? w.v : dequantize(w.v);
  if (u.length !== n * r || v.length !== r * k) {
    throw new EdgeqError('E_LOWRANK_SHAPE', `low-rank factors hold ${u.length} and ${v.length} values, expected n·r = ${n * r} and r·k = ${r * k}`);
  }
  return { u, v };
}

/** Û·V̂ as fp32 (n, k) on `backend`: x = Û (n rows of r), weight = V̂ᵀ (k, r), so x·weightᵀ = Û·V̂. */
export function lowRankProductOn(backend: MatmulBackend, w: LowRankWeight): Float32Array {
  const { n, k, r } = w;
  const { u, v } = denseFactors(w);
  const vt = new Float32Array(k * r);
  for (let t = 0; t < r; t++) for (let j = 0; j < k; j++) vt[j * r + t] = v[t * k + j]!;
  const h = backend.prepareWeight(vt, k, r);
  try {
    return backend.matmul(u, n, h);
  } finally {
    backend.freeWeight(h);
  }
}

/** Û·V̂ as fp32 (n, k), row-major (float64 accumulation: the reference). */
export function lowRankProduct(w: LowRankWeight): Float32Array {
  const { n, k, r } = w;
  const { u, v } = denseFactors(w);
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
