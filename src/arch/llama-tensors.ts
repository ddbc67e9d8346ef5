/**
 * Tensor naming and shapes of the Llama family in Hugging Face checkpoints. One table: the loader,
 * `edgeq inspect`, the quantizers and the exporters all derive names and shapes from it.
 */
import type { LlamaConfig } from './llama-config.js';

/** The linear layers of one decoder block, in dependency order ("true sequential" groups). */
export type LinearRole = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';
export type NormRole = 'input_layernorm' | 'post_attention_layernorm';

export interface LinearSpec {
  role: LinearRole;
  /** Path below `model.layers.{i}.` */
  hf: string;
  /** Sequential group: 0 q/k/v · 1 o · 2 gate/up · 3 down (inputs of a group are shared). */
  group: 0 | 1 | 2 | 3;
  /** [out, in] */
  shape: (c: LlamaConfig) => [number, number];
  hasBias: (c: LlamaConfig) => boolean;
}

export const LLAMA_LINEARS: readonly LinearSpec[] = [
  { role: 'q_proj', hf: 'self_attn.q_proj', group: 0, shape: (c) => [c.numHeads * c.headDim, c.hiddenSize], hasBias: (c) => c.bias.qkv },
  { role: 'k_proj', hf: 'self_attn.k_proj', group: 0, shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize], hasBias: (c) => c.bias.qkv },
  { role: 'v_proj', hf: 'self_attn.v_proj', group: 0, shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize], hasBias: (c) => c.bias.qkv },
  { role: 'o_proj', hf: 'self_attn.o_proj', group: 1, shape: (c) => [c.hiddenSize, c.numHeads * c.headDim], hasBias: (c) => c.bias.o },
  { role: 'gate_proj', hf: 'mlp.gate_proj', group: 2, shape: (c) => [c.intermediateSize, c.hiddenSize], hasBias: (c) => c.bias.mlp },
  { role: 'up_proj', hf: 'mlp.up_proj', group: 2, shape: (c) => [c.intermediateSize, c.hiddenSize], hasBias: (c) => c.bias.mlp },
  { role: 'down_proj', hf: 'mlp.down_proj', group: 3, shape: (c) => [c.hiddenSize, c.intermediateSize], hasBias: (c) => c.bias.mlp },
];

export const LLAMA_NORMS: readonly NormRole[] = ['input_layernorm', 'post_attention_layernorm'];

export const GLOBAL_TENSORS = {
  embed: 'model.embed_tokens.weight',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
} as const;

export function blockPrefix(layer: number): string {
  return `model.layers.${layer}.`;
}

export function linearWeightName(layer: number, spec: LinearSpec): string {
  return `${blockPrefix(layer)}${spec.hf}.weight`;
}

export function linearBiasName(layer: number, spec: LinearSpec): string {
  return `${blockPrefix(layer)}${spec.hf}.bias`;
}

export function normName(layer: number, role: NormRole): string {
  return `${blockPrefix(layer)}${role}.weight`;
}

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** Tensor group for `edgeq inspect` size breakdowns. */
  group: 'embedding' | 'attention' | 'mlp' | 'norm' | 'lm_head';
}

/** Every tensor a checkpoint of this config must contain, with its shape. */
export function expectedTensors(c: LlamaConfig): ExpectedTensor[] {
  const out: ExpectedTensor[] = [{ name: GLOBAL_TENSORS.embed, shape: [c.vocabSize, c.hiddenSize], group: 'embedding' }];
  for (let l = 0; l < c.numLayers; l++) {
    for (const r of LLAMA_NORMS) out.push({ name: normName(l, r), shape: [c.hiddenSize], group: 'norm' });
    for (const s of LLAMA_LINEARS) {
      const group = s.group <= 1 ? 'attention' : 'mlp';
      const shape = s.shape(c);
      out.push({ name: linearWeightName(l, s), shape, group });
      if (s.hasBias(c)) out.push({ name: linearBiasName(l, s), shape: [shape[0]], group });
    }
  }
  out.push({ name: GLOBAL_TENSORS.finalNorm, shape: [c.hiddenSize], group: 'norm' });
  if (!c.tieWordEmbeddings) out.push({ name: GLOBAL_TENSORS.lmHead, shape: [c.vocabSize, c.hiddenSize], group: 'lm_head' });
  return out;
}
