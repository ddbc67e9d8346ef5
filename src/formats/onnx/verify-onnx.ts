/**
 * `--verify` for ONNX exports: run the exported graph in onnxruntime-node (when it is installed — it is a
 * development dependency, loaded lazily) on perplexity windows and compare it with edgeq's own forward on
 * the same windows: perplexity of both, relative L2 distance and max |Δ| of the logits, top-1 agreement.
 * Windows follow edgeq's perplexity protocol (BOS + ctx−1 tokens, consecutive, every token scored).
 */
import type * as OrtModule from 'onnxruntime-node';
import type { LlamaModel } from '../../infer/llama-model.js';
import { argmax } from '../../infer/ops.js';
import { windowNll } from '../../eval/perplexity.js';
import { UsageError } from '../../core/errors.js';
import { BUNDLED } from '../../core/paths.js';
import { readEvalText } from '../../eval/dataset.js';
import type { MatmulBackend } from '../../kernels/backend.js';
import { loadModel } from '../../model/load-model.js';
import { readModelConfig } from '../../model/model-dir.js';
import { EdgeqTokenizer } from '../../tokenizer/tokenizer.js';
import { ATTENTION_MASK, INPUT_IDS, LOGITS, POSITION_IDS, pastKeyName, pastValueName } from './llama-graph.js';

type Ort = typeof OrtModule;

/** onnxruntime-node, or null (with the reason) when it cannot be loaded. */
export async function loadOnnxRuntime(): Promise<{ ort: Ort } | { ort: null; reason: string }> {
  try {
    const mod = (await import('onnxruntime-node')) as Ort & { default?: Ort };
    return { ort: mod.InferenceSession ? mod : mod.default! };
  } catch (err) {
    return { ort: null, reason: `onnxruntime-node is not installed (${(err as Error).message.split('\n')[0]}); npm install onnxruntime-node to verify ONNX exports` };
  }
}

export interface OnnxVerifyOptions {
  /** The exported model.onnx. */
  onnxFile: string;
  /** edgeq's core on the same weights (dequantized reference or packed kernels). */
  model: LlamaModel;
  /** Tokenized evaluation text (no BOS). */
  tokens: ArrayLike<number>;
  ctx: number;
  bosId: number;
  maxWindows: number;
  threads?: number;
}

export type OnnxVerifyResult =
  | {
      available: true;
      windows: number;
      ctx: number;
      onnxPpl: number;
      edgeqPpl: number;
      /** |ppl_onnx − ppl_edgeq| / ppl_edgeq */
      pplRelDiff: number;
      /** ‖logits_onnx − logits_edgeq‖₂ / ‖logits_edgeq‖₂ over every scored position. */
      logitsRelL2: number;
      maxAbsDiff: number;
      /** Fraction of positions whose argmax agrees. */
      top1Agreement: number;
      ortVersion: string;
    }
  | { available: false; reason: string };

export async function verifyOnnx(opts: OnnxVerifyOptions): Promise<OnnxVerifyResult> {
  const loaded = await loadOnnxRuntime();
  if (!loaded.ort) return { available: false, reason: loaded.reason };
  const ort = loaded.ort;
  const c = opts.model.config;
  const { ctx, bosId } = opts;
  const windows = Math.min(opts.maxWindows, Math.floor(opts.tokens.length / (ctx - 1)));
  if (windows < 1) throw new UsageError('E_TEXT_TOO_SHORT', `the text has ${opts.tokens.length} tokens, fewer than one window of ${ctx - 1}`);
  const sess = await ort.InferenceSession.create(opts.onnxFile, { intraOpNumThreads: opts.threads ?? 1, graphOptimizationLevel: 'all' });
  const V = c.vocabSize;
  let nllOnnx = 0;
  let nllEdgeq = 0;
  let num = 0;
  let den = 0;
  let maxAbsDiff = 0;
  let agree = 0;
  try {
    const ids = new Array<number>(ctx);
    const emptyPast = new ort.Tensor('float32', new Float32Array(0), [1, c.numKvHeads, 0, c.headDim]);
    for (let w = 0; w < windows; w++) {
      ids[0] = bosId;
      for (let i = 1; i < ctx; i++) ids[i] = opts.tokens[w * (ctx - 1) + i - 1];
      const feeds: Record<string, OrtModule.Tensor> = {
        [INPUT_IDS]: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ctx]),
        [ATTENTION_MASK]: new ort.Tensor('int64', new BigInt64Array(ctx).fill(1n), [1, ctx]),
        [POSITION_IDS]: new ort.Tensor('int64', BigInt64Array.from({ length: ctx }, (_, i) => BigInt(i)), [1, ctx]),
      };
      for (let l = 0; l < c.numLayers; l++) {
        feeds[pastKeyName(l)] = emptyPast;
        feeds[pastValueName(l)] = emptyPast;
      }
      const out = await sess.run(feeds, [LOGITS]);
      const lo = out[LOGITS].data as Float32Array;
      const le = opts.model.forward(ids, opts.model.createCache(ctx), 'all')!;
      nllOnnx += windowNll(lo, ids, V);
      nllEdgeq += windowNll(le, ids, V);
      for (let i = 0; i < lo.length; i++) {
        const d = lo[i] - le[i];
        num += d * d;
        den += le[i] * le[i];
        if (Math.abs(d) > maxAbsDiff) maxAbsDiff = Math.abs(d);
      }
      for (let t = 0; t < ctx; t++) if (argmax(lo, t * V, V) === argmax(le, t * V, V)) agree++;
    }
  } finally {
    await sess.release();
  }
  const onnxPpl = Math.exp(nllOnnx / windows);
  const edgeqPpl = Math.exp(nllEdgeq / windows);
  return {
    available: true,
    windows,
    ctx,
    onnxPpl,
    edgeqPpl,
    pplRelDiff: Math.abs(onnxPpl - edgeqPpl) / edgeqPpl,
    logitsRelL2: Math.sqrt(num / den),
    maxAbsDiff,
    top1Agreement: agree / (windows * ctx),
    ortVersion: ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown',
  };
}

export interface OnnxExportVerifyOptions {
  /** The exported model.onnx. */
  onnxFile: string;
  /** The checkpoint it was exported from (edgeq's core runs it with the dequantized fp32 weights). */
  modelDir: string;
  backend: MatmulBackend;
  ctx?: number;
  windows?: number;
  /** Evaluation text (default: the bundled WikiText-2 test split). */
  dataset?: string;
}

/** `edgeq export --target onnx --verify`: verifyOnnx on the first WikiText-2 windows of the bundled text. */
export async function verifyOnnxExport(o: OnnxExportVerifyOptions): Promise<OnnxVerifyResult> {
  const loaded = await loadOnnxRuntime();
  if (!loaded.ort) return { available: false, reason: loaded.reason };
  const ctx = o.ctx ?? 256;
  const windows = o.windows ?? 8;
  const { config } = readModelConfig(o.modelDir);
  const tok = EdgeqTokenizer.load(o.modelDir, config.bosTokenId, config.eosTokenIds);
  const text = readEvalText(o.dataset ?? BUNDLED.datasets.wikitext2!);
  const tokens = tok.encode(text.slice(0, Math.max(20000, windows * ctx * 8)));
  const model = await loadModel(o.modelDir, o.backend, { quantized: 'dequantized' });
  try {
    return await verifyOnnx({ onnxFile: o.onnxFile, model, tokens, ctx, bosId: tok.bosId ?? config.bosTokenId ?? 0, maxWindows: windows, threads: o.backend.threads });
  } finally {
    model.dispose();
  }
}
