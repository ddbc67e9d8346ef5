/**
 * One decoder block's weights as plain fp32 arrays (what the quantizers read and rewrite), and the
 * conversion into runnable Linears on a backend. The pipeline holds exactly one of these at a time.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { LLAMA_LINEARS, linearBiasName, linearWeightName, normName, type LinearRole } from '../arch/llama-tensors.js';
import type { TensorReader } from '../formats/safetensors/types.js';
import type { BlockLinears, BlockWeights } from '../infer/llama-block.js';
import { DenseLinear } from '../infer/linear.js';
import type { MatmulBackend } from '../kernels/backend.js';

export interface LinearF32 {
  w: Float32Array; // (n, k)
  n: number;
  k: number;
  bias: Float32Array | null; // (n,)
}

export interface BlockF32 {
  layer: number;
  inputNorm: Float32Array; // (d,)
  postNorm: Float32Array; // (d,)
  linears: Record<LinearRole, LinearF32>;
}

export async function readBlockF32(reader: TensorReader, c: LlamaConfig, layer: number): Promise<BlockF32> {
  const linears = {} as Record<LinearRole, LinearF32>;
  for (const spec of LLAMA_LINEARS) {
    const [n, k] = spec.shape(c);
    linears[spec.role] = {
      w: await reader.readF32(linearWeightName(layer, spec), { checkFinite: true }),
      n,
      k,
      bias: spec.hasBias(c) ? await reader.readF32(linearBiasName(layer, spec), { checkFinite: true }) : null,
    };
  }
  return {
    layer,
    inputNorm: await reader.readF32(normName(layer, 'input_layernorm'), { checkFinite: true }),
    postNorm: await reader.readF32(normName(layer, 'post_attention_layernorm'), { checkFinite: true }),
    linears,
  };
}

export function denseLinear(backend: MatmulBackend, l: LinearF32): DenseLinear {
  return new DenseLinear(backend, l.w, l.n, l.k, l.bias);
}

/** Runnable weights for a block (copies into the backend); call freeBlockWeights when done. */
export function toBlockWeights(backend: MatmulBackend, b: BlockF32): BlockWeights {
  const linears = {} as BlockLinears;
  for (const spec of LLAMA_LINEARS) linears[spec.role] = denseLinear(backend, b.linears[spec.role]);
  return { inputNorm: b.inputNorm, postNorm: b.postNorm, linears };
}

export function freeBlockWeights(w: BlockWeights): void {
  for (const l of Object.values(w.linears)) l.free();
}
