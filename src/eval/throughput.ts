/**
 * Throughput in the style of llama-bench: pp<N> (prefill N tokens in one batch into an empty KV cache,
 * logits of the last position only) and tg<N> (N single-token decode steps from an empty cache), each
 * repeated, reported as mean ± sd tokens/s. Tokens are seeded random ids (as llama-bench uses random
 * tokens), so the numbers depend only on shapes, never on text.
 */
import { UsageError } from '../core/errors.js';
import { mulberry32 } from '../calib/prng.js';
import type { LlamaModel } from '../infer/llama-model.js';

export interface ThroughputOptions {
  /** Prompt tokens per prefill run (pp); 0 skips prefill. */
  promptTokens: number;
  /** Tokens per decode run (tg); 0 skips decode. */
  genTokens: number;
  /** Timed repetitions of each test (after one untimed warm-up run). */
  reps: number;
  seed?: number;
  /** One untimed run of each test first (default true). */
  warmup?: boolean;
  /** Called after each timed run (for progress output). */
  onRun?: (test: 'pp' | 'tg', rep: number, reps: number) => void | Promise<void>;
}

export interface Rate {
  /** Mean tokens/s over the repetitions. */
  mean: number;
  /** Sample standard deviation of tokens/s (0 for a single repetition). */
  sd: number;
  /** tokens/s of each repetition. */
  samples: number[];
}

export interface ThroughputResult {
  promptTokens: number;
  genTokens: number;
  reps: number;
  threads: number;
  prefill: Rate | null;
  decode: Rate | null;
}

export function summarizeRates(samples: number[]): Rate {
  const n = samples.length;
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, samples };
}

/** `n` seeded random token ids in [0, vocab) (the benchmark input; shared with the llama.cpp peer). */
export function randomIds(n: number, vocab: number, seed: number): number[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => rng.nextInt(vocab));
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new UsageError('E_BENCH_ARGS', `${name} must be an integer ≥ ${min} (got ${v})`);
}

/** Largest sequence the model's positions allow (max_position_embeddings). */
export function maxSequence(model: LlamaModel): number {
  return model.config.maxPositionEmbeddings;
}

export async function measureThroughput(model: LlamaModel, opts: ThroughputOptions): Promise<ThroughputResult> {
  checkCount('prompt tokens', opts.promptTokens, 0);
  checkCount('generated tokens', opts.genTokens, 0);
  checkCount('repetitions', opts.reps, 1);
  const limit = maxSequence(model);
  for (const [name, v] of [['prompt tokens', opts.promptTokens], ['generated tokens', opts.genTokens]] as const)
    if (v > limit)
      throw new UsageError('E_BENCH_ARGS', `${name} (${v}) exceed the model's max_position_embeddings (${limit})`, `use at most ${limit}`);
  const vocab = model.config.vocabSize;
  const seed = opts.seed ?? 0;
  const first = opts.warmup === false ? 0 : -1;
  const result: ThroughputResult = { promptTokens: opts.promptTokens, genTokens: opts.genTokens, reps: opts.reps, threads: model.backend.threads, prefill: null, decode: null };

  if (opts.promptTokens > 0) {
    const ids = randomIds(opts.promptTokens, vocab, seed);
    const cache = model.createCache(opts.promptTokens);
    const samples: number[] = [];
    for (let r = first; r < opts.reps; r++) {
      cache.reset();
      const t0 = process.hrtime.bigint();
      model.forward(ids, cache, 'last');
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (r >= 0) {
        samples.push(opts.promptTokens / s);
        await opts.onRun?.('pp', r + 1, opts.reps);
      }
    }
    result.prefill = summarizeRates(samples);
  }

  if (opts.genTokens > 0) {
    const ids = randomIds(opts.genTokens, vocab, seed + 1);
    const cache = model.createCache(opts.genTokens);
    const samples: number[] = [];
    for (let r = first; r < opts.reps; r++) {
      cache.reset();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < opts.genTokens; i++) model.forward([ids[i]], cache, 'last');
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (r >= 0) {
        samples.push(opts.genTokens / s);
        await opts.onRun?.('tg', r + 1, opts.reps);
      }
    }
    result.decode = summarizeRates(samples);
  }
  return result;
}
