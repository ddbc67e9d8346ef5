/**
 * One Llama decoder block, forward only:
 *   x += o_proj(attn(rope(q_proj(norm1 x)), rope(k_proj(norm1 x)), v_proj(norm1 x)))
 *   x += down_proj(silu(gate_proj(norm2 x)) · up_proj(norm2 x))
 * The same functions serve inference (with a KV cache) and the quantization pipeline (fresh cache per
 * calibration sequence); the two sub-layers are exported separately so AWQ can score candidate weights
 * on the real module outputs.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import type { LinearRole } from '../arch/llama-tensors.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { causalAttention } from './attention.js';
import type { KvCache } from './kv-cache.js';
import type { Linear } from './linear.js';
import { addInPlace, rmsNorm, siluMulInPlace } from './ops.js';
import type { RopeTable } from './rope.js';

export type BlockLinears = Record<LinearRole, Linear>;

export interface BlockWeights {
  inputNorm: Float32Array; // (d,)
  postNorm: Float32Array; // (d,)
  linears: BlockLinears;
}

/** The input of each linear group: q/k/v share one, gate/up share one. */
export type TapPoint = 'qkv' | 'o' | 'gate_up' | 'down';

/** Optional taps: called with the input of each linear group (for calibration statistics). */
export type BlockTap = (point: TapPoint, x: Float32Array, T: number) => void;

export interface AttentionContext {
  c: LlamaConfig;
  backend: MatmulBackend;
  rope: RopeTable;
  cache: KvCache;
  layer: number;
}

/** Attention sub-layer: h (T, d) normalised input → o_proj output (T, d). Writes K/V at cache.length. */
export function attentionSublayer(ctx: AttentionContext, L: Pick<BlockLinears, 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj'>, h: Float32Array, T: number, tap?: BlockTap): Float32Array {
  const { c, cache } = ctx;
  const pos0 = cache.length;
  const q = L.q_proj.forward(h, T); // (T, nHeads·hd)
  const k = L.k_proj.forward(h, T); // (T, kvHeads·hd)
  const v = L.v_proj.forward(h, T);
  ctx.rope.apply(q, T, c.numHeads, pos0);
  ctx.rope.apply(k, T, c.numKvHeads, pos0);
  cache.write(ctx.layer, k, v, T, pos0);
  const attn = new Float32Array(T * c.numHeads * c.headDim);
  causalAttention(ctx.backend, q, T, pos0, cache, ctx.layer, c.numHeads, attn);
  tap?.('o', attn, T);
  return L.o_proj.forward(attn, T);
}

/** MLP sub-layer: h2 (T, d) normalised input → down_proj output (T, d). */
export function mlpSublayer(L: Pick<BlockLinears, 'gate_proj' | 'up_proj' | 'down_proj'>, h2: Float32Array, T: number, tap?: BlockTap, backend?: MatmulBackend): Float32Array {
  const gate = L.gate_proj.forward(h2, T); // (T, ff)
  const up = L.up_proj.forward(h2, T);
  if (backend?.siluMul) backend.siluMul(gate, up);
  else siluMulInPlace(gate, up);
  tap?.('down', gate, T);
  return L.down_proj.forward(gate, T);
}

/**
 * Runs block `layer` on x (T, d) in place; tokens sit at positions [cache.length, cache.length + T).
 * `stopAfter` ends the pass once that group's input has been tapped (statistics need no more; x is then
 * left partially updated).
 */
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
  stopAfter?: TapPoint,
): void {
  const d = c.hiddenSize;
  const h = rmsNorm(x, w.inputNorm, T, d, c.rmsNormEps, new Float32Array(T * d));
  tap?.('qkv', h, T);
  if (stopAfter === 'qkv') return;
  addInPlace(x, attentionSublayer({ c, backend, rope, cache, layer }, w.linears, h, T, tap));
  if (stopAfter === 'o') return;
  const h2 = rmsNorm(x, w.postNorm, T, d, c.rmsNormEps, h);
  tap?.('gate_up', h2, T);
  if (stopAfter === 'gate_up') return;
  addInPlace(x, mlpSublayer(w.linears, h2, T, tap, backend));
}
