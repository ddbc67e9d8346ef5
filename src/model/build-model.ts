/**
 * Build a runnable LlamaModel from an opened WeightSource (Hugging Face or edgeq checkpoint): check that
 * every tensor config.json implies is present with the right shape, then tensor by tensor: quantized
 * linears of an edgeq checkpoint go to the backend's low-bit kernels still packed (QuantizedLinear), low-rank
 * linears run as their two factors (LowRankLinear: quantized factors packed, F16-stored factors in fp32), or —
 * with quantized: 'dequantized', the reference path — both are expanded to fp32 like every dense tensor
 * (a low-rank linear as the product Û·V̂, see lowrank-product.ts; each decoded one at a time, with a NaN/Inf
 * check naming the tensor). fp16-stored linears of a mixed checkpoint are DenseLinears either way. No Node.js imports: this also runs
 * in a browser; load-model.ts opens folders on disk.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { expectedTensors, GLOBAL_TENSORS, LLAMA_LINEARS, linearBiasName, linearWeightName, normName } from '../arch/llama-tensors.js';
import type { LinearRole } from '../arch/llama-tensors.js';
import { FormatError } from '../core/errors.js';
import type { MatmulBackend } from '../kernels/backend.js';
import type { BlockWeights } from '../infer/llama-block.js';
import { LlamaModel } from '../infer/llama-model.js';
import { DenseLinear, type Linear } from '../infer/linear.js';
import { LowRankLinear } from '../infer/lowrank-linear.js';
import { QuantizedLinear } from '../infer/quantized-linear.js';
import { getQType, qtypeFor } from '../qtypes/registry.js';
import type { GridSpec } from '../qtypes/types.js';
import { lowRankProductOn } from './lowrank-product.js';
import type { WeightSource } from './weight-source.js';

export interface LoadProgress {
  tensor: string;
  index: number;
  count: number;
}

export interface LoadOptions {
  checkFinite?: boolean;
  onProgress?: (p: LoadProgress) => void;
  /**
   * How the linears of a quantized checkpoint run: 'packed' (default) executes the packed low-bit weights
   * on the backend's kernels; 'dequantized' expands them to fp32 (the reference the kernels are checked
   * against).
   */
  quantized?: 'packed' | 'dequantized';
  /** Low-bit GEMV kernel for packed linears (default: the backend's choice per bit width). */
  kernel?: 'lut' | 'int8';
  /**
   * The LM head (the embedding matrix when tied) as stored and executed in fp32 ('dense', default), or
   * quantized at load to int8 per output channel (symmetric, round-to-nearest) and run on the int8-dot
   * kernel — 4× fewer bytes per decoded token, as llama.cpp keeps its output tensor at 6–8 bits.
   */
  head?: 'dense' | 'int8';
}

/** Grid of the load-time int8 LM head. */
export const HEAD_INT8_GRID: GridSpec = { bits: 8, groupSize: -1, sym: true };

/** Throws a FormatError naming the first missing or mis-shaped tensor. */
export function validateCheckpointTensors(config: LlamaConfig, ckpt: Pick<WeightSource, 'tensors'>, dir: string): void {
  for (const t of expectedTensors(config)) {
    const info = ckpt.tensors.get(t.name);
    if (!info)
      throw new FormatError('E_MISSING_TENSOR', `tensor '${t.name}' is missing`, dir, 'the checkpoint does not match config.json (wrong num_hidden_layers, biases or tie_word_embeddings?)');
    if (info.shape.length !== t.shape.length || info.shape.some((v, i) => v !== t.shape[i]))
      throw new FormatError(
        'E_TENSOR_SHAPE',
        `tensor '${t.name}' has shape [${info.shape}] but config.json implies [${t.shape}]`,
        dir,
        'the checkpoint does not match config.json',
      );
  }
}

/**
 * Over-estimate of the bytes the backend will hold for this model's weights (what MatmulBackend.reserve
 * wants): fp32 panels for dense tensors, the low-bit layouts (bits per weight, or nibbles on the int8 kernel,
 * plus ≤ 4 bytes per row per 32-column block of metadata) for packed ones; and each tensor's, in the order
 * buildModel prepares them.
 */
export function backendWeightBytes(config: LlamaConfig, ckpt: Pick<WeightSource, 'tensors'>, opts: LoadOptions = {}): { total: number; tensors: number[] } {
  const packed = (opts.quantized ?? 'packed') === 'packed';
  const dense = (n: number, k: number): number => Math.ceil(n / 16) * 16 * k * 4;
  const lowbit = (bits: number, n: number, k: number, kernel = opts.kernel): number => {
    const kPad = Math.ceil(k / 32) * 32;
    const nPad = Math.ceil(n / 32) * 32;
    const b = bits === 8 ? 8 : kernel === 'int8' ? 4 : bits;
    return (nPad * kPad * b) / 8 + nPad * (kPad / 32) * 4;
  };
  const stored = (dtype: string, n: number, k: number): number => {
    if (!packed) return dense(n, k);
    let bits: number;
    try {
      bits = getQType(dtype).grid.bits;
    } catch {
      return dense(n, k); // a dense dtype (F16, F32, ...)
    }
    return lowbit(bits, n, k);
  };
  let total = 0;
  const tensors: number[] = [];
  const add = (b: number): void => {
    total += b;
    tensors.push(b);
  };
  for (let l = 0; l < config.numLayers; l++) {
    for (const spec of LLAMA_LINEARS) {
      const [n, k] = spec.shape(config);
      const lr = ckpt.tensors.get(linearWeightName(l, spec))?.lowRank;
      if (lr && packed) {
        add(stored(lr.u, n, lr.rank));
        add(stored(lr.v, lr.rank, k));
      } else add(stored(ckpt.tensors.get(linearWeightName(l, spec))?.dtype ?? 'F32', n, k));
    }
  }
  add(opts.head === 'int8' ? lowbit(8, config.vocabSize, config.hiddenSize) : dense(config.vocabSize, config.hiddenSize));
  return { total, tensors };
}

/** Builds the model; does not close `ckpt`. `label` names the checkpoint in errors. */
export async function buildModel(config: LlamaConfig, ckpt: WeightSource, backend: MatmulBackend, opts: LoadOptions = {}, label = '<checkpoint>'): Promise<LlamaModel> {
  validateCheckpointTensors(config, ckpt, label);
  if (backend.reserve) {
    // prepare* is synchronous: room for every weight (e.g. more wasm memories) is made before packing
    const { total, tensors } = backendWeightBytes(config, ckpt, opts);
    await backend.reserve(total, tensors);
  }
  const count = expectedTensors(config).length;
  const packed = (opts.quantized ?? 'packed') === 'packed';
  let index = 0;
  const read = async (name: string): Promise<Float32Array> => {
    opts.onProgress?.({ tensor: name, index: index++, count });
    return ckpt.readF32(name);
  };
  const embed = await read(GLOBAL_TENSORS.embed);
  const blocks: BlockWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const inputNorm = await read(normName(l, 'input_layernorm'));
    const postNorm = await read(normName(l, 'post_attention_layernorm'));
    const linears = {} as Record<LinearRole, Linear>;
    for (const spec of LLAMA_LINEARS) {
      const [n, k] = spec.shape(config);
      const name = linearWeightName(l, spec);
      const q = packed ? await ckpt.readQuantized(name) : null;
      const lrAny = q ? null : await ckpt.readLowRank(name);
      const lr = packed ? lrAny : null;
      if (q || lrAny) opts.onProgress?.({ tensor: name, index: index++, count });
      // dequantized mode: a low-rank linear becomes the dense product Û·V̂ (one backend matmul)
      const w = q || lr ? null : lrAny ? lowRankProductOn(backend, lrAny) : await read(name);
      const bias = spec.hasBias(config) ? await read(linearBiasName(l, spec)) : null;
      if (lrAny && (lrAny.n !== n || lrAny.k !== k)) {
        throw new FormatError('E_TENSOR_SHAPE', `low-rank tensor '${name}' is [${lrAny.n}, ${lrAny.k}] but config.json implies [${n}, ${k}]`, label);
      }
      linears[spec.role] = q
        ? new QuantizedLinear(backend, q, bias, { kernel: opts.kernel })
        : lr
          ? LowRankLinear.fromParts(backend, lr, bias, { kernel: opts.kernel })
          : new DenseLinear(backend, w!, n, k, bias);
    }
    blocks.push({ inputNorm, postNorm, linears });
  }
  const finalNorm = await read(GLOBAL_TENSORS.finalNorm);
  const lmHeadW = config.tieWordEmbeddings ? embed : await read(GLOBAL_TENSORS.lmHead);
  const lmHead =
    opts.head === 'int8'
      ? new QuantizedLinear(backend, qtypeFor(HEAD_INT8_GRID).quantizeRef(lmHeadW, config.vocabSize, config.hiddenSize, GLOBAL_TENSORS.lmHead), null, { kernel: 'int8' })
      : new DenseLinear(backend, lmHeadW, config.vocabSize, config.hiddenSize, null);
  return new LlamaModel(config, { embed, blocks, finalNorm, lmHead }, backend);
}
