/**
 * A model against its baseline (e.g. quantized vs FP16) on the same perplexity windows: perplexity of
 * both, mean KL divergence KL(P_baseline ‖ P_model) per scored position, and top-1 agreement (the share of
 * positions where both put the same token first). All in float64 from the fp32 logits.
 *
 * Also what a reader of Δppl needs to judge it: each window's summed NLL (for paired bootstrap intervals over
 * windows: rows scored on the same windows share their text's difficulty), the mean predictive entropy of each
 * model (a noisier model is flatter), and optionally the baseline's perplexity with its logits divided by
 * temperatures T (on text a model reads out of distribution, flattening alone can lower perplexity).
 */
import { UsageError } from '../core/errors.js';
import type { LlamaModel } from '../infer/llama-model.js';
import { argmax, logSumExp } from '../infer/ops.js';
import { windowCount } from './perplexity.js';

export interface CompareOptions {
  ctx: number;
  bosId: number;
  maxWindows?: number;
  onWindow?: (done: number, total: number) => void | Promise<void>;
  /**
   * Also score the baseline and every model at these softmax temperatures (logits / T):
   * CompareResult.baselinePplAtTemperature and the per-window NLLs at each temperature.
   */
  temperatures?: readonly number[];
}

export interface CompareResult {
  windows: number;
  /** Windows the whole text holds (≥ windows when maxWindows cut it). */
  windowsAvailable: number;
  scoredTokens: number;
  ppl: number;
  baselinePpl: number;
  deltaPpl: number;
  meanKl: number;
  top1Agreement: number;
  /** Mean entropy (nats) of the model's and of the baseline's next-token distributions per scored position. */
  entropy: number;
  baselineEntropy: number;
  /** Σ NLL (nats) of each window's ctx − 1 scored positions, model and baseline. */
  windowNll: Float64Array;
  baselineWindowNll: Float64Array;
  /** The baseline's perplexity at each requested temperature, as [T, ppl] pairs. */
  baselinePplAtTemperature: [number, number][];
  /** Per requested temperature (same order), Σ NLL of each window at that temperature, model and baseline. */
  windowNllAtTemperature: Float64Array[];
  baselineWindowNllAtTemperature: Float64Array[];
}

/** KL(P ‖ Q) of two logit rows (n,), each at its offset. */
export function klDivergence(p: Float32Array, po: number, q: Float32Array, qo: number, n: number): number {
  const lp = logSumExp(p, po, n);
  const lq = logSumExp(q, qo, n);
  let kl = 0;
  for (let i = 0; i < n; i++) {
    const a = p[po + i] - lp;
    kl += Math.exp(a) * (a - (q[qo + i] - lq));
  }
  return Math.max(0, kl);
}

/** A CompareResult without its per-window arrays and temperature scan: what reports and --json carry. */
export type CompareSummary = Omit<
  CompareResult,
  'windowNll' | 'baselineWindowNll' | 'baselinePplAtTemperature' | 'windowNllAtTemperature' | 'baselineWindowNllAtTemperature'
>;
export function compareSummary(r: CompareResult): CompareSummary {
  const { windowNll: _w, baselineWindowNll: _b, baselinePplAtTemperature: _t, windowNllAtTemperature: _wt, baselineWindowNllAtTemperature: _bt, ...summary } = r;
  return summary;
}

/** Entropy (nats) of the softmax of a logit row (n,) at offset; `lse`: the row's logSumExp when the caller has it. */
export function softmaxEntropy(l: Float32Array, o: number, n: number, lse = logSumExp(l, o, n)): number {
  let h = 0;
  for (let i = 0; i < n; i++) {
    const a = l[o + i] - lse;
    h -= Math.exp(a) * a;
  }
  return h;
}

/** −log softmax(l / T)[target] of a logit row (n,) at offset. */
export function nllAtTemperature(l: Float32Array, o: number, n: number, target: number, T: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (l[o + i] > max) max = l[o + i];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp((l[o + i] - max) / T);
  return max / T + Math.log(sum) - l[o + target] / T;
}

/** Scores one or more models against one baseline; the baseline runs once per window. */
export async function compareManyWithBaseline(models: LlamaModel[], baseline: LlamaModel, tokens: ArrayLike<number>, opts: CompareOptions): Promise<CompareResult[]> {
  const { ctx, bosId } = opts;
  const V = baseline.config.vocabSize;
  for (const m of models)
    if (m.config.vocabSize !== V) throw new UsageError('E_BASELINE', `the baseline's vocabulary (${V}) differs from the model's (${m.config.vocabSize})`, 'compare a quantized model with the model it was made from');
  const available = windowCount(tokens.length, ctx);
  const windows = Math.min(available, opts.maxWindows ?? available);
  if (windows < 1) throw new UsageError('E_TEXT_TOO_SHORT', `the text has ${tokens.length} tokens, fewer than one window of ${ctx - 1}`);
  const cb = baseline.createCache(ctx);
  const caches = models.map((m) => m.createCache(ctx));
  const acc = models.map(() => ({ nll: 0, kl: 0, agree: 0, ent: 0, win: new Float64Array(windows) }));
  const temps = opts.temperatures ?? [];
  for (const T of temps) if (!(T > 0)) throw new UsageError('E_USAGE', `temperatures must be positive, got ${T}`);
  const baseWinT = temps.map(() => new Float64Array(windows));
  const winT = models.map(() => temps.map(() => new Float64Array(windows)));
  const baseWin = new Float64Array(windows);
  let nllBase = 0;
  let entBase = 0;
  const ids = new Array<number>(ctx);
  const baseTop = new Int32Array(ctx);
  for (let w = 0; w < windows; w++) {
    ids[0] = bosId;
    for (let i = 1; i < ctx; i++) ids[i] = tokens[w * (ctx - 1) + i - 1];
    cb.reset();
    const lb = baseline.forward(ids, cb, 'all')!;
    const nllBefore = nllBase;
    for (let i = 0; i + 1 < ctx; i++) {
      const lse = logSumExp(lb, i * V, V);
      nllBase += lse - lb[i * V + ids[i + 1]];
      entBase += softmaxEntropy(lb, i * V, V, lse);
      baseTop[i] = argmax(lb, i * V, V);
      for (let t = 0; t < temps.length; t++) baseWinT[t][w] += nllAtTemperature(lb, i * V, V, ids[i + 1], temps[t]);
    }
    baseWin[w] = nllBase - nllBefore;
    for (let m = 0; m < models.length; m++) {
      caches[m].reset();
      const lm = models[m].forward(ids, caches[m], 'all')!;
      const a = acc[m];
      const before = a.nll;
      for (let i = 0; i + 1 < ctx; i++) {
        const o = i * V;
        const lse = logSumExp(lm, o, V);
        a.nll += lse - lm[o + ids[i + 1]];
        a.kl += klDivergence(lb, o, lm, o, V);
        a.ent += softmaxEntropy(lm, o, V, lse);
        for (let t = 0; t < temps.length; t++) winT[m][t][w] += nllAtTemperature(lm, o, V, ids[i + 1], temps[t]);
        if (argmax(lm, o, V) === baseTop[i]) a.agree++;
      }
      a.win[w] = a.nll - before;
    }
    await opts.onWindow?.(w + 1, windows);
  }
  const n = windows * (ctx - 1);
  const baselinePpl = Math.exp(nllBase / n);
  const sum = (a: Float64Array): number => a.reduce((x, y) => x + y, 0);
  const baselinePplAtTemperature = temps.map((T, t): [number, number] => [T, Math.exp(sum(baseWinT[t]) / n)]);
  return acc.map((a, m) => {
    const ppl = Math.exp(a.nll / n);
    return {
      windows,
      windowsAvailable: available,
      scoredTokens: n,
      ppl,
      baselinePpl,
      deltaPpl: ppl - baselinePpl,
      meanKl: a.kl / n,
      top1Agreement: a.agree / n,
      entropy: a.ent / n,
      baselineEntropy: entBase / n,
      windowNll: a.win,
      baselineWindowNll: baseWin,
      baselinePplAtTemperature,
      windowNllAtTemperature: winT[m],
      baselineWindowNllAtTemperature: baseWinT,
    };
  });
}

export async function compareWithBaseline(model: LlamaModel, baseline: LlamaModel, tokens: ArrayLike<number>, opts: CompareOptions): Promise<CompareResult> {
  return (await compareManyWithBaseline([model], baseline, tokens, opts))[0];
}
