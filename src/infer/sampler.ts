/**
 * Next-token choice from one logit row: greedy (temperature 0) or sampling with temperature, top-k and
 * top-p (nucleus), seeded so that a run is reproducible. The order follows llama.cpp / transformers:
 * top-k, then softmax at the temperature, then the smallest prefix of tokens (by probability) whose mass
 * reaches top-p, renormalized.
 */
import { UsageError } from '../core/errors.js';
import type { Prng } from '../calib/prng.js';
import { argmax } from './ops.js';

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Keep the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
}

export function checkSampling(o: SamplingOptions): void {
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) throw new UsageError('E_SAMPLING', `--temperature must be ≥ 0 (got ${o.temperature})`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) throw new UsageError('E_SAMPLING', `--top-k must be a non-negative integer (got ${o.topK})`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new UsageError('E_SAMPLING', `--top-p must be in (0, 1] (got ${o.topP})`);
}

/**
 * The distribution sampling draws from: candidate token ids (most likely first) and their probabilities
 * (summing to 1). Exposed so that tests can compare empirical frequencies with it.
 */
export function samplingDistribution(logits: Float32Array, offset: number, n: number, o: SamplingOptions): { ids: number[]; probs: number[] } {
  let ids = Array.from({ length: n }, (_, i) => i);
  ids.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
  if (o.topK && o.topK < n) ids = ids.slice(0, o.topK);
  const max = logits[offset + ids[0]];
  let probs = ids.map((id) => Math.exp((logits[offset + id] - max) / o.temperature));
  let sum = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / sum);
  const topP = o.topP ?? 1;
  if (topP < 1) {
    let mass = 0;
    let keep = 0;
    while (keep < probs.length && mass < topP) mass += probs[keep++];
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / sum);
  }
  return { ids, probs };
}

/** Picks the next token id from logits[offset, offset + n). */
export function sampleToken(logits: Float32Array, offset: number, n: number, o: SamplingOptions, rng: Prng): number {
  if (o.temperature === 0) return argmax(logits, offset, n);
  const { ids, probs } = samplingDistribution(logits, offset, n, o);
  const u = rng.nextU32() / 2 ** 32;
  let acc = 0;
  for (let i = 0; i < ids.length; i++) {
    acc += probs[i];
    if (u < acc) return ids[i];
  }
  return ids[ids.length - 1];
}
