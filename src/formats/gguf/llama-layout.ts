/**
 * How a Hugging Face Llama-family checkpoint maps onto llama.cpp's GGUF `llama` architecture: metadata
 * keys from the typed LlamaConfig, tensor names (`blk.N.attn_q.weight` …) and dims (ne[0] = input
 * features: a torch [out, in] weight is written as [in, out]), the q/k row permutation that turns HF's
 * rotate-half rotary layout into GGUF's interleaved-pairs layout, and llama3 `rope_freqs`.
 */
import type { LlamaConfig } from '../../arch/llama-config.js';
import { GLOBAL_TENSORS, LLAMA_LINEARS, LLAMA_NORMS, linearBiasName, linearWeightName, normName } from '../../arch/llama-tensors.js';
import { UnsupportedError } from '../../core/errors.js';
import { gv, type GgufValue } from './metadata-values.js';

/** GGUF architectures edgeq writes: HF model_type → GGUF general.architecture. */
const GGUF_ARCH: Record<string, string> = { llama: 'llama', mistral: 'llama' };

const LINEAR_NAMES: Record<string, string> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};
const NORM_NAMES: Record<string, string> = { input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm' };

export interface GgufTensorMapping {
  /** HF tensor name (null for tensors edgeq computes, e.g. rope_freqs). */
  hf: string | null;
  gguf: string;
  /** Torch shape [out, in] or [n]. */
  shape: number[];
  /** Rows are permuted with this many heads (q: numHeads, k: numKvHeads), or null. */
  permuteHeads: number | null;
  role: 'embedding' | 'output' | 'linear' | 'norm' | 'bias' | 'rope';
}

export function ggufArchitecture(c: LlamaConfig): string {
  const arch = GGUF_ARCH[c.modelType];
  if (!arch)
    throw new UnsupportedError(
      'E_GGUF_ARCH',
      `GGUF export of model_type '${c.modelType}' is not supported`,
      `edgeq writes GGUF for: ${Object.keys(GGUF_ARCH).join(', ')}`,
    );
  return arch;
}

/** GGUF dims (ne[0] first) of a torch shape. */
export function ggufDims(shape: readonly number[]): number[] {
  return [...shape].reverse();
}

/** Every tensor of the GGUF file, in llama.cpp's order (token_embd, blocks, output_norm, output). */
export function llamaTensorMappings(c: LlamaConfig): GgufTensorMapping[] {
  ggufArchitecture(c);
  const out: GgufTensorMapping[] = [{ hf: GLOBAL_TENSORS.embed, gguf: 'token_embd.weight', shape: [c.vocabSize, c.hiddenSize], permuteHeads: null, role: 'embedding' }];
  if (c.ropeScaling.type === 'llama3') out.push({ hf: null, gguf: 'rope_freqs.weight', shape: [c.headDim / 2], permuteHeads: null, role: 'rope' });
  for (let l = 0; l < c.numLayers; l++) {
    for (const r of LLAMA_NORMS) out.push({ hf: normName(l, r), gguf: `blk.${l}.${NORM_NAMES[r]}.weight`, shape: [c.hiddenSize], permuteHeads: null, role: 'norm' });
    for (const s of LLAMA_LINEARS) {
      const heads = s.role === 'q_proj' ? c.numHeads : s.role === 'k_proj' ? c.numKvHeads : null;
      const shape = s.shape(c);
      out.push({ hf: linearWeightName(l, s), gguf: `blk.${l}.${LINEAR_NAMES[s.role]}.weight`, shape, permuteHeads: heads, role: 'linear' });
      if (s.hasBias(c)) out.push({ hf: linearBiasName(l, s), gguf: `blk.${l}.${LINEAR_NAMES[s.role]}.bias`, shape: [shape[0]], permuteHeads: heads, role: 'bias' });
    }
  }
  out.push({ hf: GLOBAL_TENSORS.finalNorm, gguf: 'output_norm.weight', shape: [c.hiddenSize], permuteHeads: null, role: 'norm' });
  if (!c.tieWordEmbeddings) out.push({ hf: GLOBAL_TENSORS.lmHead, gguf: 'output.weight', shape: [c.vocabSize, c.hiddenSize], permuteHeads: null, role: 'output' });
  return out;
}

/**
 * convert_hf_to_gguf's `permute`: w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).reshape(rows, cols).
 * GGUF row h·hd + 2i + j is HF row h·hd + j·hd/2 + i. Returns the HF source row of each GGUF row.
 */
export function qkRowPermutation(rows: number, heads: number): Int32Array {
  const hd = rows / heads;
  const src = new Int32Array(rows);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < hd / 2; i++)
      for (let j = 0; j < 2; j++) src[h * hd + 2 * i + j] = h * hd + j * (hd / 2) + i;
  return src;
}

/** Rows of a row-major (rows, cols) array reordered: out[r] = x[src[r]]. */
export function permuteRows<T extends Float32Array | Uint8Array>(x: T, rows: number, src: Int32Array): T {
  const cols = x.length / rows;
  const out = new (x.constructor as new (n: number) => T)(x.length);
  for (let r = 0; r < rows; r++) out.set(x.subarray(src[r]! * cols, (src[r]! + 1) * cols), r * cols);
  return out;
}

/** llama3 rope scaling as llama.cpp reads it: per-frequency factors (rope_freqs.weight). */
export function llama3RopeFactors(c: LlamaConfig): Float32Array {
  const s = c.ropeScaling;
  if (s.type !== 'llama3') throw new UnsupportedError('E_ROPE_SCALING', 'rope_freqs is only written for llama3 rope scaling');
  const dim = c.headDim;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = 1 / c.ropeTheta ** ((2 * i) / dim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/** The `general.*` and `<arch>.*` hyper-parameter keys. */
export function llamaMetadata(c: LlamaConfig, name: string): [string, GgufValue][] {
  const arch = ggufArchitecture(c);
  const kv: [string, GgufValue][] = [
    ['general.architecture', gv.str(arch)],
    ['general.name', gv.str(name)],
    [`${arch}.context_length`, gv.u32(c.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, gv.u32(c.hiddenSize)],
    [`${arch}.block_count`, gv.u32(c.numLayers)],
    [`${arch}.feed_forward_length`, gv.u32(c.intermediateSize)],
    [`${arch}.attention.head_count`, gv.u32(c.numHeads)],
    [`${arch}.attention.head_count_kv`, gv.u32(c.numKvHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(c.rmsNormEps)],
    [`${arch}.rope.freq_base`, gv.f32(c.ropeTheta)],
    [`${arch}.rope.dimension_count`, gv.u32(c.headDim)],
    [`${arch}.vocab_size`, gv.u32(c.vocabSize)],
  ];
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    kv.push([`${arch}.attention.key_length`, gv.u32(c.headDim)], [`${arch}.attention.value_length`, gv.u32(c.headDim)]);
  }
  if (c.ropeScaling.type === 'linear') {
    kv.push([`${arch}.rope.scaling.type`, gv.str('linear')], [`${arch}.rope.scaling.factor`, gv.f32(c.ropeScaling.factor)]);
  }
  return kv;
}
