/**
 * The typed configuration of a Llama-family decoder, validated from a Hugging Face config.json.
 * Every number the forward pass, the quantizers and the exporters need lives here, already
 * defaulted and checked, so no other module reads raw config.json fields.
 */
import { FormatError, UnsupportedError } from '../core/errors.js';

export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface LlamaConfig {
  /** config.json model_type (llama | mistral | qwen2). */
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Which linears carry a bias (q/k/v, o, and the three MLP projections). */
  bias: { qkv: boolean; o: boolean; mlp: boolean };
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** Storage dtype announced by config.json (informational; tensors say what they really are). */
  torchDtype: string | null;
}

type Json = Record<string, unknown>;

function fail(field: string, problem: string, file?: string): never {
  throw new FormatError('E_CONFIG', `config.json field '${field}' ${problem}`, file, 'fix config.json or re-export the model with Hugging Face transformers');
}

export function positiveInt(j: Json, field: string, file?: string, fallback?: number): number {
  const v = j[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(field, `must be a positive integer (got ${JSON.stringify(v)})`, file);
  return v;
}

export function positiveNumber(j: Json, field: string, file?: string, fallback?: number): number {
  const v = j[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(field, `must be a positive number (got ${JSON.stringify(v)})`, file);
  return v;
}

export function optionalBool(j: Json, field: string, fallback: boolean, file?: string): boolean {
  const v = j[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') fail(field, `must be true or false (got ${JSON.stringify(v)})`, file);
  return v;
}

function tokenIds(v: unknown): number[] {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isSafeInteger(x));
  return [];
}

export function parseRopeScaling(v: unknown, file?: string): RopeScaling {
  if (v === undefined || v === null) return { type: 'none' };
  if (typeof v !== 'object') fail('rope_scaling', 'must be an object or null', file);
  const j = v as Json;
  const type = (j.rope_type ?? j.type) as unknown;
  if (type === 'default') return { type: 'none' };
  if (type === 'linear') return { type: 'linear', factor: positiveNumber(j, 'factor', file) };
  if (type === 'llama3') {
    const r: RopeScaling = {
      type: 'llama3',
      factor: positiveNumber(j, 'factor', file),
      lowFreqFactor: positiveNumber(j, 'low_freq_factor', file),
      highFreqFactor: positiveNumber(j, 'high_freq_factor', file),
      originalMaxPositionEmbeddings: positiveInt(j, 'original_max_position_embeddings', file),
    };
    if (r.highFreqFactor <= r.lowFreqFactor) fail('rope_scaling.high_freq_factor', 'must be greater than low_freq_factor', file);
    return r;
  }
  throw new UnsupportedError(
    'E_ROPE_SCALING',
    `rope_scaling type ${JSON.stringify(type)} is not supported`,
    'supported rope_scaling types: llama3, linear (or none)',
  );
}

/** Fields every Llama-family config shares; per-architecture defaults come from the registry. */
export function parseLlamaFamilyConfig(
  j: Json,
  defaults: { bias: (j: Json) => LlamaConfig['bias']; tieDefault: boolean },
  file?: string,
): LlamaConfig {
  const hiddenSize = positiveInt(j, 'hidden_size', file);
  const numHeads = positiveInt(j, 'num_attention_heads', file);
  const numKvHeads = positiveInt(j, 'num_key_value_heads', file, numHeads);
  if (numHeads % numKvHeads !== 0) fail('num_key_value_heads', `(${numKvHeads}) must divide num_attention_heads (${numHeads})`, file);
  const headDimRaw = j.head_dim;
  let headDim: number;
  if (headDimRaw === undefined || headDimRaw === null) {
    if (hiddenSize % numHeads !== 0) fail('hidden_size', `(${hiddenSize}) is not divisible by num_attention_heads (${numHeads}) and no head_dim is given`, file);
    headDim = hiddenSize / numHeads;
  } else headDim = positiveInt(j, 'head_dim', file);
  if (headDim % 2 !== 0) fail('head_dim', `(${headDim}) must be even for rotary embeddings`, file);
  const act = j.hidden_act ?? j.hidden_activation ?? 'silu';
  if (act !== 'silu' && act !== 'swish')
    throw new UnsupportedError('E_ACTIVATION', `hidden_act ${JSON.stringify(act)} is not supported`, 'Llama-family models use silu (SwiGLU)');
  const torchDtype = typeof j.torch_dtype === 'string' ? j.torch_dtype : typeof j.dtype === 'string' ? j.dtype : null;
  return {
    modelType: String(j.model_type),
    hiddenSize,
    intermediateSize: positiveInt(j, 'intermediate_size', file),
    numLayers: positiveInt(j, 'num_hidden_layers', file),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: positiveInt(j, 'vocab_size', file),
    rmsNormEps: positiveNumber(j, 'rms_norm_eps', file, 1e-6),
    ropeTheta: positiveNumber(j, 'rope_theta', file, 10000),
    ropeScaling: parseRopeScaling(j.rope_scaling, file),
    maxPositionEmbeddings: positiveInt(j, 'max_position_embeddings', file, 2048),
    tieWordEmbeddings: optionalBool(j, 'tie_word_embeddings', defaults.tieDefault, file),
    bias: defaults.bias(j),
    bosTokenId: typeof j.bos_token_id === 'number' ? j.bos_token_id : null,
    eosTokenIds: tokenIds(j.eos_token_id),
    torchDtype,
  };
}
