/** Decoding on a LlamaModel: prefill the prompt, then one token at a time through the KV cache. */
import { mulberry32 } from '../calib/prng.js';
import type { LlamaModel } from './llama-model.js';
import { argmax } from './ops.js';
import { checkSampling, sampleToken, type SamplingOptions } from './sampler.js';

export interface GreedyOptions {
  maxNewTokens: number;
  /** Stop after emitting one of these ids (the id is included). Default: never stop early. */
  stopIds?: readonly number[];
}

export interface GenerateOptions extends GreedyOptions {
  /** Sampling (temperature 0 or absent = greedy). */
  sampling?: SamplingOptions;
  /** Seed of the sampler (default 0). */
  seed?: number;
}

export function generate(model: LlamaModel, promptIds: readonly number[], opts: GenerateOptions): number[] {
  if (opts.sampling) checkSampling(opts.sampling);
  const rng = mulberry32(opts.seed ?? 0);
  const pick = (logits: Float32Array, vocab: number): number =>
    opts.sampling && opts.sampling.temperature > 0 ? sampleToken(logits, 0, vocab, opts.sampling, rng) : argmax(logits, 0, vocab);
  const vocab = model.config.vocabSize;
  const out: number[] = [];
  if (opts.maxNewTokens <= 0) return out;
  const cache = model.createCache(promptIds.length + opts.maxNewTokens);
  let logits = model.forward(promptIds, cache, 'last')!;
  for (;;) {
    const next = pick(logits, vocab);
    out.push(next);
    if (out.length >= opts.maxNewTokens || opts.stopIds?.includes(next)) break;
    logits = model.forward([next], cache, 'last')!;
  }
  return out;
}

export function generateGreedy(model: LlamaModel, promptIds: readonly number[], opts: GreedyOptions): number[] {
  return generate(model, promptIds, opts);
}
