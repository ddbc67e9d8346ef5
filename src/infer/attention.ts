/**
 * Causal grouped-query attention over the KV cache. For each KV head g, the `rep` query heads that share
 * it are stacked into one (rep·T, headDim) matrix so that scores and the weighted sum are two matmuls:
 *   S = Qg · Kgᵀ  (rep·T, S)      P = softmax(S / √d, causal)      O = P · Vg  (rep·T, d)
 */
import type { MatmulBackend } from '../kernels/backend.js';
import type { KvCache } from './kv-cache.js';
import { softmaxPrefixInPlace } from './ops.js';

export function causalAttention(
  backend: MatmulBackend,
  q: Float32Array, // (T, nHeads, d), already rotated
  T: number,
  pos0: number,
  cache: KvCache,
  layer: number,
  nHeads: number,
  out: Float32Array, // (T, nHeads, d)
): void {
  const d = cache.headDim;
  const kvHeads = cache.kvHeads;
  // the backend's own kernel when the cache lives in its memory (the code below is its reference)
  if (backend.attention?.({ q, T, pos0, k: cache.k[layer]!, v: cache.v[layer]!, capacity: cache.capacity, kvHeads, headDim: d, nHeads, out })) return;
  const rep = nHeads / kvHeads;
  const S = pos0 + T;
  const rows = rep * T;
  const scale = 1 / Math.sqrt(d);
  const qg = new Float32Array(rows * d);
  const vt = new Float32Array(d * S);
  for (let g = 0; g < kvHeads; g++) {
    // Qg rows ordered (j, t): query head g·rep + j at token t.
    for (let j = 0; j < rep; j++) {
      const head = g * rep + j;
      for (let t = 0; t < T; t++) qg.set(q.subarray((t * nHeads + head) * d, (t * nHeads + head + 1) * d), (j * T + t) * d);
    }
    const base = g * cache.capacity * d;
    const kg = cache.k[layer].subarray(base, base + S * d); // (S, d)
    const vg = cache.v[layer].subarray(base, base + S * d); // (S, d)
    const scores = backend.matmulTransient(qg, rows, kg, S, d); // (rows, S)
    for (let r = 0; r < rows; r++) {
      const t = r % T;
      const allowed = pos0 + t + 1; // causal: positions [0, pos0 + t]
      softmaxPrefixInPlace(scores, r * S, allowed, scale);
      scores.fill(0, r * S + allowed, (r + 1) * S);
    }
    for (let s = 0; s < S; s++) for (let i = 0; i < d; i++) vt[i * S + s] = vg[s * d + i]; // Vgᵀ (d, S)
    const o = backend.matmulTransient(scores, rows, vt, d, S); // (rows, d)
    for (let j = 0; j < rep; j++) {
      const head = g * rep + j;
      for (let t = 0; t < T; t++) out.set(o.subarray((j * T + t) * d, (j * T + t + 1) * d), (t * nHeads + head) * d);
    }
  }
}
