/** Greedy decoding on a LlamaModel: prefill the prompt, then one token at a time through the KV cache. */
import type { LlamaModel } from './llama-model.js';
import { argmax } from './ops.js';

export interface GreedyOptions {
  maxNewTokens: number;
  /** Stop after emitting one of these ids (the id is included). Default: never stop early. */
  stopIds?: readonly number[];
}

export function generateGreedy(model: LlamaModel, promptIds: readonly number[], opts: GreedyOptions): number[] {
  const vocab = model.config.vocabSize;
  const cache = model.createCache(promptIds.length + opts.maxNewTokens);
  const out: number[] = [];
  if (opts.maxNewTokens <= 0) return out;
  let logits = model.forward(promptIds, cache, 'last')!;
  for (;;) {
    const next = argmax(logits, 0, vocab);
    out.push(next);
    if (out.length >= opts.maxNewTokens || opts.stopIds?.includes(next)) break;
    logits = model.forward([next], cache, 'last')!;
  }
  return out;
}
