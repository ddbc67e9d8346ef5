/**
 * One Llama decoder block, forward only:
 *   x += o_proj(attn(rope(q_proj(norm1 x)), rope(k_proj(norm1 x)), v_proj(norm1 x)))
 *   x += down_proj(silu(gate_proj(norm2 x)) · up_proj(norm2 x))
 * The same function serves inference (with a KV cache) and the quantization pipeline (fresh cache).
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import type { LinearRole } from '../arch/llama-tensors.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { causalAttention } from './attention.js';
import type { KvCache } from './kv-cache.js';
import type { Linear } from './linear.js';
import { addInPlace, rmsNorm, siluMulInPlace } from './ops.js';
import type { RopeTable } from './rope.js';

export interface BlockWeights {
  inputNorm: Float32Array; // (d,)
  postNorm: Float32Array; // (d,)
  linears: Record<LinearRole, Linear>;
}

/** Optional taps: called with the input of each linear group (for calibration statistics). */
export type BlockTap = (role: 'qkv' | 'o' | 'gate_up' | 'down', x: Float32Array, T: number) => void;

/** Runs block `layer` on x (T, d) in place; tokens sit at positions [cache.length, cache.length + T). */
export function llamaBlockForward(
  c: LlamaConfig,
  w: BlockWeights,
  backend: MatmulBackend,
  rope: RopeTable,
  cache: KvCache,
  layer: number,
  x: Float32Array,
  T: number,
  tap?: BlockTap,
): void {
  const d = c.hiddenSize;
  const pos0 = cache.length;
  const L = w.linears;
  const h = rmsNorm(x, w.inputNorm, T, d, c.rmsNormEps, new Float32Array(T * d));
  tap?.('qkv', h, T);
  const q = L.q_proj.forward(h, T); // (T, nHeads·hd)
  const k = L.k_proj.forward(h, T); // (T, kvHeads·hd)
  const v = L.v_proj.forward(h, T);
  rope.apply(q, T, c.numHeads, pos0);
  rope.apply(k, T, c.numKvHeads, pos0);
  cache.write(layer, k, v, T, pos0);
  const attn = new Float32Array(T * c.numHeads * c.headDim);
  causalAttention(backend, q, T, pos0, cache, layer, c.numHeads, attn);
  tap?.('o', attn, T);
  addInPlace(x, L.o_proj.forward(attn, T));
  const h2 = rmsNorm(x, w.postNorm, T, d, c.rmsNormEps, h);
  tap?.('gate_up', h2, T);
  const gate = L.gate_proj.forward(h2, T); // (T, ff)
  siluMulInPlace(gate, L.up_proj.forward(h2, T));
  tap?.('down', gate, T);
  addInPlace(x, L.down_proj.forward(gate, T));
}
