/**
 * Perplexity with edgeq's protocol (the one the float64 references use): consecutive windows of ctx−1
 * tokens, BOS prepended to each, every window token scored (position i predicts token i+1), a trailing
 * partial window dropped. NLL in float64.
 */
import { UsageError } from '../core/errors.js';
import type { LlamaModel } from '../infer/llama-model.js';
import { logSumExp } from '../infer/ops.js';

export interface PerplexityOptions {
  ctx: number;
  bosId: number;
  maxWindows?: number;
  /** Called after each window; awaited, so a spinner can repaint. */
  onWindow?: (done: number, total: number, meanNllSoFar: number) => void | Promise<void>;
}

export interface PerplexityResult {
  ppl: number;
  meanNll: number;
  scoredTokens: number;
  windows: number;
  /** Windows the whole text holds (≥ windows when --max-windows cut it). */
  windowsAvailable: number;
  windowMeanNll: number[];
  seconds: number;
  /** Tokens pushed through the model per second (ctx per window). */
  prefillTokPerSec: number;
}

export function windowCount(tokens: number, ctx: number): number {
  return Math.floor(tokens / (ctx - 1));
}

/** Mean NLL of ids[1..] given ids[0..i] from (T, vocab) logits. */
export function windowNll(logits: Float32Array, ids: ArrayLike<number>, vocab: number): number {
  let sum = 0;
  for (let i = 0; i + 1 < ids.length; i++) sum += logSumExp(logits, i * vocab, vocab) - logits[i * vocab + ids[i + 1]];
  return sum / (ids.length - 1);
}

export async function evaluatePerplexity(model: LlamaModel, tokens: ArrayLike<number>, opts: PerplexityOptions): Promise<PerplexityResult> {
  const { ctx, bosId } = opts;
  if (!Number.isInteger(ctx) || ctx < 2) throw new UsageError('E_CTX', `--ctx must be an integer ≥ 2 (got ${ctx})`);
  const available = windowCount(tokens.length, ctx);
  const windows = Math.min(available, opts.maxWindows ?? available);
  if (windows < 1)
    throw new UsageError('E_TEXT_TOO_SHORT', `the text has ${tokens.length} tokens, fewer than one window of ${ctx - 1}`, 'use a longer text or a smaller --ctx');
  const vocab = model.config.vocabSize;
  const cache = model.createCache(ctx);
  const ids = new Array<number>(ctx);
  const windowMeanNll: number[] = [];
  let total = 0;
  const t0 = performance.now();
  for (let w = 0; w < windows; w++) {
    ids[0] = bosId;
    for (let i = 1; i < ctx; i++) ids[i] = tokens[w * (ctx - 1) + i - 1];
    cache.reset();
    const logits = model.forward(ids, cache, 'all')!;
    const nll = windowNll(logits, ids, vocab);
    windowMeanNll.push(nll);
    total += nll * (ctx - 1);
    await opts.onWindow?.(w + 1, windows, total / ((w + 1) * (ctx - 1)));
  }
  const seconds = (performance.now() - t0) / 1000;
  const scoredTokens = windows * (ctx - 1);
  const meanNll = total / scoredTokens;
  return { ppl: Math.exp(meanNll), meanNll, scoredTokens, windows, windowsAvailable: available, windowMeanNll, seconds, prefillTokPerSec: (windows * ctx) / seconds };
}
