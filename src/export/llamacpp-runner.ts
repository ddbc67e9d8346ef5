/**
 * llama.cpp as the runtime that checks a GGUF export, through node-llama-cpp (an optional dependency:
 * `llamaCppAvailable()` says whether it can be loaded; nothing is built or downloaded at run time).
 * Gives raw next-token logits per position and perplexity with edgeq's protocol (windows of ctx−1 tokens,
 * BOS prepended, every window token scored). Runs on 1 thread unless told otherwise.
 */
import { MissingFileError } from '../core/errors.js';
import { windowNll } from '../eval/perplexity.js';

type NlcModule = typeof import('node-llama-cpp');
type Llama = Awaited<ReturnType<NlcModule['getLlama']>>;
type LlamaModelT = Awaited<ReturnType<Llama['loadModel']>>;

let llamaPromise: Promise<Llama> | null = null;

async function loadModule(): Promise<NlcModule | null> {
  try {
    return await import('node-llama-cpp');
  } catch {
    return null;
  }
}

export async function llamaCppAvailable(): Promise<boolean> {
  if (!(await loadModule())) return false;
  try {
    await getLlamaCpu();
    return true;
  } catch {
    return false;
  }
}

/** The CPU build shipped with node-llama-cpp (never builds, never downloads). */
export async function getLlamaCpu(): Promise<Llama> {
  const m = await loadModule();
  if (!m) throw new MissingFileError('E_NO_LLAMA_CPP', 'node-llama-cpp is not installed', 'npm install node-llama-cpp (it ships prebuilt llama.cpp binaries)');
  llamaPromise ??= m.getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: m.LlamaLogLevel.error, progressLogs: false });
  return llamaPromise;
}

export class LlamaCppModel {
  private constructor(
    private readonly model: LlamaModelT,
    readonly vocabSize: number,
  ) {}

  /** Loads a GGUF on the CPU; vocabSize = the model's vocab_size (rows of the logits). */
  static async load(file: string, vocabSize: number): Promise<LlamaCppModel> {
    const llama = await getLlamaCpu();
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: false });
    return new LlamaCppModel(model, vocabSize);
  }

  /** Token ids of text with llama.cpp's tokenizer, without BOS or other special tokens. */
  tokenize(text: string): number[] {
    return this.model.tokenize(text, false).map(Number);
  }

  private context: Awaited<ReturnType<LlamaModelT['createContext']>> | null = null;
  private sequence: ReturnType<NonNullable<LlamaCppModel['context']>['getSequence']> | null = null;
  private contextSize = 0;

  /** One context, reused (history cleared) while windows fit; KV cache F32 (see logits()). */
  private async sequenceFor(length: number, threads?: number) {
    // one spare slot: a sequence that fills the context exactly is shifted (its start erased) before the
    // last token's next-token logits are produced
    if (!this.context || this.contextSize < length + 1) {
      await this.context?.dispose();
      this.contextSize = Math.max(length + 1, 32);
      this.context = await this.model.createContext({
        contextSize: this.contextSize,
        batchSize: this.contextSize,
        sequences: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: 'F32',
        experimentalKvCacheValueType: 'F32',
        threads: threads ?? 1,
      });
      this.sequence = this.context.getSequence();
    }
    const seq = this.sequence!;
    await seq.clearHistory();
    return seq;
  }

  /**
   * Next-token logits (T, vocab) of `ids` evaluated from an empty context. Row i holds the logits after
   * ids[0..i]. The KV cache is F32 (llama.cpp's default F16 cache rounds K and V, which edgeq's fp32 core
   * does not), so differences measure the weights and kernels only.
   */
  async logits(ids: readonly number[], opts: { threads?: number } = {}): Promise<Float32Array> {
    const seq = await this.sequenceFor(ids.length, opts.threads);
    {
      const input = ids.map((t) => [t, { generateNext: { logits: true } }]);
      const res = await seq.controlledEvaluate(input as never);
      const V = this.vocabSize;
      const out = new Float32Array(ids.length * V);
      for (let i = 0; i < ids.length; i++) {
        const lg = res[i]?.next.logits;
        if (!lg) throw new Error(`llama.cpp returned no logits for position ${i}`);
        for (const [tok, v] of lg) out[i * V + Number(tok)] = v;
      }
      return out;
    }
  }

  /** Mean NLL of ids[1..] given the prefix, from llama.cpp's full logits (edgeq's windowNll). */
  async windowNll(ids: readonly number[], opts: { threads?: number } = {}): Promise<number> {
    return windowNll(await this.logits(ids, opts), ids, this.vocabSize);
  }

  async dispose(): Promise<void> {
    await this.context?.dispose();
    await this.model.dispose();
  }
}
