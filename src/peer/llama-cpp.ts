/**
 * llama.cpp as the peer, through node-llama-cpp's prebuilt CPU binary (an optional dependency: edgeq
 * works without it; only the peer comparison and GGUF verification need it). Throughput is measured the
 * way llama-bench does: pp<N> = one batch of N random tokens into an empty context, tg<N> = N single-token
 * decode steps from an empty context, each after one untimed warm-up, repeated.
 */
import { randomIds, summarizeRates, type Rate } from '../eval/throughput.js';
import { getLlamaCpu } from '../export/llamacpp-runner.js';

export interface PeerThroughput {
  name: string;
  version: string;
  threads: number;
  prefill: Rate | null;
  decode: Rate | null;
  promptTokens: number;
  genTokens: number;
}

export interface PeerBenchOptions {
  threads: number;
  promptTokens: number;
  genTokens: number;
  reps: number;
  seed?: number;
  /** One untimed run of each test first (default true). */
  warmup?: boolean;
}

// node-llama-cpp's surface as used here (kept structural so that it stays an optional import).
interface NlcSequence {
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  evaluate(tokens: number[], opts?: object): AsyncGenerator<number, void, unknown>;
  clearHistory(): Promise<void>;
}
interface NlcContext {
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(opts: object): Promise<NlcContext>;
  dispose(): Promise<void>;
  readonly trainContextSize: number;
  readonly tokens: { bos: number | null };
}
interface NlcLlama {
  loadModel(opts: object): Promise<NlcModel>;
  readonly buildType: string;
  readonly llamaCppRelease: { release: string };
  dispose(): Promise<void>;
}

/** The shared llama.cpp instance (CPU only, prebuilt binary): the one GGUF verification uses. */
async function getLlamaCpp(): Promise<NlcLlama> {
  return (await getLlamaCpu()) as unknown as NlcLlama;
}

export interface LlamaCppModel {
  readonly version: string;
  /** Runs pp/tg like llama-bench. `onRun` is awaited after each timed run. */
  bench(opts: PeerBenchOptions, onRun?: (test: 'pp' | 'tg') => void | Promise<void>): Promise<PeerThroughput>;
  dispose(): Promise<void>;
}

export async function openLlamaCpp(ggufPath: string, vocabSize: number): Promise<LlamaCppModel> {
  const llama = await getLlamaCpp();
  const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0, useMmap: true });
  const version = llama.llamaCppRelease?.release ?? 'unknown';
  return {
    version,
    async bench(opts, onRun) {
      const ctxSize = Math.max(opts.promptTokens, opts.genTokens, 8);
      const context = await model.createContext({ contextSize: ctxSize, batchSize: Math.max(opts.promptTokens, 1), threads: { ideal: opts.threads, min: opts.threads }, sequences: 1 });
      try {
        const seq = context.getSequence();
        const res: PeerThroughput = { name: 'llama.cpp', version, threads: opts.threads, prefill: null, decode: null, promptTokens: opts.promptTokens, genTokens: opts.genTokens };
        const seed = opts.seed ?? 0;
        if (opts.promptTokens > 0) {
          const ids = randomIds(opts.promptTokens, vocabSize, seed);
          const samples: number[] = [];
          for (let r = opts.warmup === false ? 0 : -1; r < opts.reps; r++) {
            await seq.clearHistory();
            const t0 = process.hrtime.bigint();
            await seq.evaluateWithoutGeneratingNewTokens(ids);
            const s = Number(process.hrtime.bigint() - t0) / 1e9;
            if (r >= 0) {
              samples.push(opts.promptTokens / s);
              await onRun?.('pp');
            }
          }
          res.prefill = summarizeRates(samples);
        }
        if (opts.genTokens > 0) {
          const ids = randomIds(opts.genTokens, vocabSize, seed + 1);
          const samples: number[] = [];
          for (let r = opts.warmup === false ? 0 : -1; r < opts.reps; r++) {
            await seq.clearHistory();
            const t0 = process.hrtime.bigint();
            // one token per step with logits (as llama-bench's tg): greedy decoding feeds each generated
            // token back; the first step evaluates a random start token
            let n = 0;
            for await (const _tok of seq.evaluate([ids[0]], { temperature: 0 })) if (++n >= opts.genTokens) break;
            const s = Number(process.hrtime.bigint() - t0) / 1e9;
            if (r >= 0) {
              samples.push(opts.genTokens / s);
              await onRun?.('tg');
            }
          }
          res.decode = summarizeRates(samples);
        }
        return res;
      } finally {
        await context.dispose();
      }
    },
    async dispose() {
      await model.dispose();
    },
  };
}
