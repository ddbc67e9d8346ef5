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

/** An empty weight: the linear's fp32 values are not held (readBlockF32 with `weights: false`). */
const NOT_LOADED = new Float32Array(0);

/**
 * Reads one block. With `weights: false` the linears' w stay empty (norms, biases and shapes only): the
 * streaming pipeline reads each weight when it needs it (linearWeightF32) and keeps the runnable copy on
 * the backend (PackedBlock), so the block is never held twice.
 */
export async function readBlockF32(reader: TensorReader, c: LlamaConfig, layer: number, opts: { weights?: boolean } = {}): Promise<BlockF32> {
  const linears = {} as Record<LinearRole, LinearF32>;
  for (const spec of LLAMA_LINEARS) {
    const [n, k] = spec.shape(c);
    linears[spec.role] = {
      w: opts.weights === false ? NOT_LOADED : await reader.readF32(linearWeightName(layer, spec), { checkFinite: true }),
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

/** The fp32 weight of `role`: the block's own (e.g. AWQ-scaled) copy, or read from the checkpoint when not held. */
export async function linearWeightF32(reader: TensorReader, b: BlockF32, role: LinearRole): Promise<Float32Array> {
  const lin = b.linears[role];
  if (lin.w.length > 0 || lin.n * lin.k === 0) return lin.w;
  return reader.readF32(linearWeightName(b.layer, LLAMA_LINEARS.find((s) => s.role === role)!), { checkFinite: true });
}

/**
 * A block's runnable weights packed on the backend once, for every pass over the block (statistics,
 * propagation); a linear is swapped for its quantized values as soon as it is solved (replace).
 */
export class PackedBlock {
  readonly weights: BlockWeights;
  private constructor(
    private readonly backend: MatmulBackend,
    private readonly b: BlockF32,
    linears: BlockLinears,
  ) {
    this.weights = { inputNorm: b.inputNorm, postNorm: b.postNorm, linears };
  }

  /** Packs every linear, reading the ones the block does not hold from `reader` one at a time. */
  static async create(backend: MatmulBackend, reader: TensorReader, b: BlockF32): Promise<PackedBlock> {
    const linears = {} as BlockLinears;
    try {
      for (const spec of LLAMA_LINEARS) {
        const l = b.linears[spec.role];
        linears[spec.role] = new DenseLinear(backend, await linearWeightF32(reader, b, spec.role), l.n, l.k, l.bias);
      }
    } catch (err) {
      for (const l of Object.values(linears)) l.free();
      throw err;
    }
    return new PackedBlock(backend, b, linears);
  }

  /** The runnable `role` now computes with w (n, k) (the old copy is freed first, its space reused). */
  replace(role: LinearRole, w: Float32Array): void {
    const l = this.b.linears[role];
    this.weights.linears[role].free();
    this.weights.linears[role] = new DenseLinear(this.backend, w, l.n, l.k, l.bias);
  }

  free(): void {
    freeBlockWeights(this.weights);
  }
}
