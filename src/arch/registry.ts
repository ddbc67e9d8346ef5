/**
 * Architecture registry: which config.json model_types edgeq runs, and how their tensors are named
 * and shaped. Declarative on purpose — algorithms never branch on model_type; they read this table.
 */
import { UnsupportedError } from '../core/errors.js';
import { optionalBool, parseLlamaFamilyConfig, type LlamaConfig } from './llama-config.js';

type Json = Record<string, unknown>;

export interface ArchSpec {
  modelType: string;
  /** Human description for `edgeq inspect` and errors. */
  description: string;
  tieDefault: boolean;
  bias: (j: Json) => LlamaConfig['bias'];
}

/** The one table of supported architectures. */
export const ARCHITECTURES: readonly ArchSpec[] = [
  {
    modelType: 'llama',
    description: 'Llama / Llama 2 / Llama 3 (RMSNorm, RoPE, GQA, SwiGLU; optional attention_bias/mlp_bias)',
    tieDefault: false,
    bias: (j) => {
      const attn = optionalBool(j, 'attention_bias', false);
      return { qkv: attn, o: attn, mlp: optionalBool(j, 'mlp_bias', false) };
    },
  },
  {
    modelType: 'mistral',
    description: 'Mistral (Llama layout; sliding_window ignored for sequences shorter than the window)',
    tieDefault: false,
    bias: () => ({ qkv: false, o: false, mlp: false }),
  },
  {
    modelType: 'qwen2',
    description: 'Qwen2 / Qwen2.5 (Llama layout with q/k/v biases)',
    tieDefault: false,
    bias: () => ({ qkv: true, o: false, mlp: false }),
  },
];

export function supportedModelTypes(): string[] {
  return ARCHITECTURES.map((a) => a.modelType);
}

export function findArch(modelType: unknown): ArchSpec {
  const spec = ARCHITECTURES.find((a) => a.modelType === modelType);
  if (!spec)
    throw new UnsupportedError(
      'E_UNSUPPORTED_ARCH',
      `model_type ${JSON.stringify(modelType)} is not supported`,
      `edgeq supports: ${supportedModelTypes().join(', ')}`,
    );
  return spec;
}

/** Validate a parsed config.json object into a LlamaConfig. */
export function parseModelConfig(json: unknown, file?: string): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new UnsupportedError('E_CONFIG', `${file ?? 'config.json'} is not a JSON object`, 'fix config.json');
  const j = json as Json;
  const spec = findArch(j.model_type);
  const cfg = parseLlamaFamilyConfig(j, spec, file);
  if (spec.modelType === 'mistral' && typeof j.sliding_window === 'number') {
    // A sliding window only changes attention for sequences longer than the window.
    cfg.maxPositionEmbeddings = Math.min(cfg.maxPositionEmbeddings, j.sliding_window);
  }
  return cfg;
}
