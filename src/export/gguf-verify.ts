/**
 * `edgeq export --verify` for GGUF: load the written file in llama.cpp (node-llama-cpp, when installed)
 * and compare its WikiText perplexity and logits with edgeq's core — on the same weights (the GGUF
 * decoded with edgeq's reference codecs) and on the source checkpoint.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { BUNDLED } from '../core/paths.js';
import { readEvalText } from '../eval/dataset.js';
import { windowNll } from '../eval/perplexity.js';
import type { LlamaModel } from '../infer/llama-model.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { loadModel } from '../model/load-model.js';
import { EdgeqTokenizer } from '../tokenizer/tokenizer.js';
import { loadGgufAsModel } from './gguf-model.js';
import { LlamaCppModel, llamaCppAvailable } from './llamacpp-runner.js';

export interface GgufVerifyOptions {
  file: string;
  modelDir: string;
  config: LlamaConfig;
  backend: MatmulBackend;
  ctx?: number;
  windows?: number;
  /** Text file (default: the bundled WikiText-2 test split). */
  dataset?: string;
  onWindow?: (done: number, total: number) => void;
}

export interface GgufVerifyResult {
  available: boolean;
  reason?: string;
  ctx: number;
  windows: number;
  ppl?: { llamaCpp: number; edgeqSameWeights: number; edgeqSource: number };
  /** |ppl_llama.cpp / ppl_edgeq(same weights) − 1|. */
  pplRelDiff?: number;
  /** Largest |logit difference| llama.cpp vs edgeq on the same weights, over all scored positions. */
  maxLogitDiff?: number;
  /** Tokenizers agree on the verification text. */
  tokenizerMatch?: boolean;
}

export async function verifyGguf(o: GgufVerifyOptions): Promise<GgufVerifyResult> {
  const ctx = o.ctx ?? 256;
  const windows = o.windows ?? 8;
  if (!(await llamaCppAvailable())) return { available: false, reason: 'node-llama-cpp is not installed (npm install node-llama-cpp)', ctx, windows };
  const V = o.config.vocabSize;
  const tok = EdgeqTokenizer.load(o.modelDir, o.config.bosTokenId, o.config.eosTokenIds);
  const bos = tok.bosId ?? 0;
  const text = readEvalText(o.dataset ?? BUNDLED.datasets.wikitext2!);
  // enough text for the windows (≈ 4 characters per token, with margin)
  const slice = text.slice(0, Math.max(20000, windows * ctx * 8));
  const tokens = tok.encode(slice);
  const n = Math.min(windows, Math.floor(tokens.length / (ctx - 1)));
  const lc = await LlamaCppModel.load(o.file, V);
  let same: LlamaModel | null = null;
  let source: LlamaModel | null = null;
  try {
    const lcTokens = lc.tokenize(slice);
    const tokenizerMatch = lcTokens.length === tokens.length && lcTokens.every((t, i) => t === tokens[i]);
    same = await loadGgufAsModel(o.file, o.config, o.backend);
    source = await loadModel(o.modelDir, o.backend, { quantized: 'dequantized' });
    const sums = { lc: 0, same: 0, source: 0 };
    let maxLogitDiff = 0;
    for (let w = 0; w < n; w++) {
      const ids = [bos, ...tokens.slice(w * (ctx - 1), (w + 1) * (ctx - 1))];
      const a = await lc.logits(ids);
      const b = same.forward(ids, same.createCache(ids.length), 'all')!;
      const c = source.forward(ids, source.createCache(ids.length), 'all')!;
      sums.lc += windowNll(a, ids, V);
      sums.same += windowNll(b, ids, V);
      sums.source += windowNll(c, ids, V);
      for (let i = 0; i < a.length; i++) maxLogitDiff = Math.max(maxLogitDiff, Math.abs(a[i]! - b[i]!));
      o.onWindow?.(w + 1, n);
    }
    const ppl = { llamaCpp: Math.exp(sums.lc / n), edgeqSameWeights: Math.exp(sums.same / n), edgeqSource: Math.exp(sums.source / n) };
    return { available: true, ctx, windows: n, ppl, pplRelDiff: Math.abs(ppl.llamaCpp / ppl.edgeqSameWeights - 1), maxLogitDiff, tokenizerMatch };
  } finally {
    same?.dispose();
    source?.dispose();
    await lc.dispose();
  }
}
