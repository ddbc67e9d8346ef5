/** `edgeq eval`: perplexity under edgeq's protocol, prefill throughput, and greedy continuations. */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { readEvalText, resolveDatasetPath, tokenizeText } from '../../eval/dataset.js';
import { compareSummary, compareWithBaseline, type CompareResult } from '../../eval/compare.js';
import { evaluatePerplexity, type PerplexityResult } from '../../eval/perplexity.js';
import { generate } from '../../infer/generate.js';
import { maxSequence, measureThroughput, type ThroughputResult } from '../../eval/throughput.js';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { isEdgeqCheckpoint } from '../../formats/edgeq/index.js';
import { inspectModel } from '../../model/inspect-model.js';
import { loadModel } from '../../model/load-model.js';
import { readModelConfig } from '../../model/model-dir.js';
import { EdgeqTokenizer } from '../../tokenizer/tokenizer.js';
import { createProgress, yieldToEventLoop } from '../progress.js';
import { createBackend, fmt, printJson, resolveModelDir, table, withCommonOptions, withModelOption, type CommonArgs } from '../shared.js';

/** llama-bench's default tests: pp512 / tg128 (capped at the model's max_position_embeddings). */
const SPEED_PROMPT = 512;
const SPEED_GEN = 128;
/** The eval record inside an edgeq checkpoint folder (input of `edgeq report`). */
export const EVAL_RECORD = 'edgeq-eval.json';

type PplSummary = Pick<PerplexityResult, 'ppl' | 'scoredTokens' | 'windows' | 'windowsAvailable'> & Partial<PerplexityResult>;

interface EvalArgs extends CommonArgs {
  model: string;
  dataset?: string;
  ctx: number;
  'max-windows'?: number;
  prompt?: string;
  'max-new-tokens': number;
  baseline?: string;
  speed: boolean;
  temperature: number;
  'top-k': number;
  'top-p': number;
  seed: number;
  kernel?: 'lut' | 'int8';
  head: 'dense' | 'int8';
  dequantized: boolean;
  record: boolean;
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Measure a model: WikiText-2 (or your text) perplexity, KL/top-1 vs a baseline, throughput, size, peak memory',
  builder: (y: Argv) =>
    withCommonOptions(withModelOption(y))
      .option('dataset', { alias: 'd', type: 'string', describe: 'wikitext2 (bundled) or a path to a UTF-8 text file [default: wikitext2]' })
      .option('ctx', { alias: 'c', type: 'number', default: 256, describe: 'Context length of each perplexity window (BOS + ctx-1 scored tokens)' })
      .option('max-windows', { type: 'number', describe: 'Score only the first K windows (quick checks)' })
      .option('prompt', { alias: 'p', type: 'string', describe: 'Print a greedy continuation of this prompt (skips perplexity unless --dataset is given)' })
      .option('baseline', { alias: 'B', type: 'string', describe: 'Also score this model (e.g. the FP16 original) on the same windows: Δppl, mean KL divergence, top-1 agreement' })
      .option('max-new-tokens', { alias: 'n', type: 'number', default: 32, describe: 'Tokens to generate for --prompt' })
      .option('temperature', { type: 'number', default: 0, describe: 'Sampling temperature for --prompt (0 = greedy)' })
      .option('top-k', { type: 'number', default: 40, describe: 'Sample among the k most likely tokens (0 = all)' })
      .option('top-p', { type: 'number', default: 0.95, describe: 'Nucleus sampling: smallest set of tokens with this probability mass' })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of the sampler (same seed, same text)' })
      .option('speed', { type: 'boolean', default: true, describe: `Measure throughput: prefill of a ${SPEED_PROMPT}-token prompt and ${SPEED_GEN} decode steps (--no-speed skips)` })
      .option('head', { type: 'string', choices: ['dense', 'int8'] as const, default: 'dense' as const, describe: 'LM head (tied embedding) in fp32, or int8 per channel on the int8-dot kernel (4× fewer bytes per token)' })
      .option('kernel', { type: 'string', choices: ['lut', 'int8'] as const, describe: 'Low-bit GEMV kernel for quantized linears [default: lut for ≤ 4 bits, int8 for 8 bits]' })
      .option('record', { type: 'boolean', default: true, describe: `Save the result as ${EVAL_RECORD} inside an edgeq checkpoint folder (read by 'edgeq report'); --no-record skips` })
      .option('dequantized', { type: 'boolean', default: false, describe: 'Run quantized linears dequantized to fp32 (the reference path) instead of on the packed low-bit kernels' })
      .example('$0 eval', 'perplexity of the bundled brown-llama-7m on WikiText-2, ctx 256')
      .example('$0 eval --model ./my-model --ctx 512 --max-windows 32 --json', 'quick check of a local Hugging Face folder')
      .example('$0 eval --model out/brown-awq4 --baseline brown-llama-7m --max-windows 128', 'quantized vs FP16: Δppl, KL, top-1 agreement')
      .example('$0 eval --model stories260K --prompt "Once upon a time" -n 24', 'greedy continuation')
      .example('$0 eval --model stories260K --prompt "Once upon a time" --temperature 0.8 --seed 7', 'sampled continuation (top-k 40, top-p 0.95)') as Argv<EvalArgs>,
  handler: async (argv) => {
    const progress = createProgress({ quiet: argv.quiet || argv.json });
    if (argv['max-windows'] !== undefined && (!Number.isInteger(argv['max-windows']) || argv['max-windows'] < 1))
      throw new UsageError('E_MAX_WINDOWS', `--max-windows must be a positive integer (got ${argv['max-windows']})`);
    if (!Number.isInteger(argv.ctx) || argv.ctx < 2) throw new UsageError('E_CTX', `--ctx must be an integer ≥ 2 (got ${argv.ctx})`);
    if (!Number.isInteger(argv['max-new-tokens']) || argv['max-new-tokens'] < 0)
      throw new UsageError('E_MAX_NEW_TOKENS', `--max-new-tokens must be a non-negative integer (got ${argv['max-new-tokens']})`);
    try {
      const dir = await resolveModelDir(argv.model, progress);
      const { config } = readModelConfig(dir);
      const tokenizer = EdgeqTokenizer.load(dir, config.bosTokenId, config.eosTokenIds);
      const backend = await createBackend(argv.threads);
      progress.phase('Loading model');
      const model = await loadModel(dir, backend, {
        kernel: argv.kernel,
        head: argv.head,
        quantized: argv.dequantized ? 'dequantized' : 'packed',
        onProgress: (p) => progress.update(p.index, p.count, p.tensor),
      });
      const result: Record<string, unknown> = { model: path.resolve(dir), modelType: config.modelType, threads: backend.threads };
      try {
        const runPpl = argv.prompt === undefined || argv.dataset !== undefined;
        let ppl: PplSummary | undefined;
        let cmp: CompareResult | undefined;
        if (runPpl) {
          const bos = tokenizer.bosId ?? tokenizer.eosIds[0];
          if (bos === undefined) throw new UsageError('E_NO_BOS', 'the model has neither a BOS nor an EOS token id to start each window', 'set bos_token_id in config.json');
          const file = resolveDatasetPath(argv.dataset ?? 'wikitext2');
          progress.phase('Tokenizing');
          await yieldToEventLoop();
          const text = tokenizeText(tokenizer, readEvalText(file));
          const onWindow = async (done: number, total: number, nll?: number): Promise<void> => {
            progress.update(done, total, nll === undefined ? undefined : `ppl ${fmt(Math.exp(nll))}`);
            await yieldToEventLoop();
          };
          if (argv.baseline !== undefined) {
            // One pass scores both: the model's own perplexity comes from the same windows.
            const bdir = await resolveModelDir(argv.baseline, progress);
            const baseline = await loadModel(bdir, backend);
            try {
              progress.phase('Comparing with the baseline');
              cmp = await compareWithBaseline(model, baseline, text.ids, { ctx: argv.ctx, bosId: bos, maxWindows: argv['max-windows'], onWindow });
              result.baseline = { model: path.resolve(bdir), ...compareSummary(cmp) };
            } finally {
              baseline.dispose();
            }
            ppl = { ppl: cmp.ppl, scoredTokens: cmp.scoredTokens, windows: cmp.windows, windowsAvailable: cmp.windowsAvailable };
          } else {
            progress.phase('Perplexity');
            const r = await evaluatePerplexity(model, text.ids, { ctx: argv.ctx, bosId: bos, maxWindows: argv['max-windows'], onWindow });
            ppl = r;
          }
          result.dataset = { path: path.resolve(file), tokens: text.ids.length, sha256: text.sha256 };
          result.ctx = argv.ctx;
          result.eval = ppl;
        }
        let gen: { prompt: string; ids: number[]; text: string } | undefined;
        if (argv.prompt !== undefined) {
          progress.phase('Generating');
          await yieldToEventLoop();
          const promptIds = tokenizer.encodeWithBos(argv.prompt);
          const ids = generate(model, promptIds, {
            maxNewTokens: argv['max-new-tokens'],
            stopIds: tokenizer.eosIds,
            sampling: { temperature: argv.temperature, topK: argv['top-k'], topP: argv['top-p'] },
            seed: argv.seed,
          });
          gen = { prompt: argv.prompt, ids, text: tokenizer.decodeContinuation(promptIds, ids) };
          result.generation = gen;
        }
        let speed: ThroughputResult | undefined;
        if (argv.speed) {
          progress.phase('Throughput');
          const limit = maxSequence(model);
          speed = await measureThroughput(model, {
            promptTokens: Math.min(SPEED_PROMPT, limit),
            genTokens: Math.min(SPEED_GEN, limit),
            reps: 1,
            onRun: () => yieldToEventLoop(),
          });
          result.throughput = { promptTokens: speed.promptTokens, prefillTokPerSec: speed.prefill!.mean, genTokens: speed.genTokens, decodeTokPerSec: speed.decode!.mean };
        }
        const info = await inspectModel(dir);
        result.size = { bytes: info.bytes, params: info.params, bitsPerWeight: info.bitsPerWeight, weightBytesPerToken: model.weightBytesPerToken() };
        result.peakRssBytes = process.resourceUsage().maxRSS * 1024;
        if (argv.record && (await isEdgeqCheckpoint(dir))) {
          const file = path.join(dir, EVAL_RECORD);
          writeFileAtomic(file, `${JSON.stringify({ ...result, date: new Date().toISOString() }, null, 2)}\n`);
          result.record = path.resolve(file);
        }
        progress.stop();
        if (argv.json) printJson(result);
        else {
          if (ppl)
            process.stdout.write(
              `${table([
                ['model', 'ctx', 'windows', 'tokens scored', 'ppl'],
                [path.basename(dir), argv.ctx, `${ppl.windows}/${ppl.windowsAvailable}`, ppl.scoredTokens, fmt(ppl.ppl, 4)],
              ])}\n`,
            );
          if (cmp)
            process.stdout.write(
              `${table([
                ['vs baseline', 'ppl', 'baseline ppl', 'Δppl', 'mean KL', 'top-1 agreement'],
                [path.basename(argv.baseline!), fmt(cmp.ppl, 4), fmt(cmp.baselinePpl, 4), fmt(cmp.deltaPpl, 4), cmp.meanKl.toExponential(4), `${fmt(100 * cmp.top1Agreement, 2)} %`],
              ])}\n`,
            );
          if (gen) process.stdout.write(`${gen.prompt}${gen.text}\n`);
          const size = result.size as { bytes: number; params: number; bitsPerWeight: number };
          process.stdout.write(
            `${table([
              ['size', 'params', 'bits/weight', `prefill tok/s (pp${speed?.promptTokens ?? '-'})`, `decode tok/s (tg${speed?.genTokens ?? '-'})`, 'threads', 'peak RSS'],
              [
                `${fmt(size.bytes / 2 ** 20, 2)} MiB`,
                `${fmt(size.params / 1e6, 2)} M`,
                fmt(size.bitsPerWeight, 3),
                speed ? fmt(speed.prefill!.mean, 1) : '-',
                speed ? fmt(speed.decode!.mean, 1) : '-',
                backend.threads,
                `${fmt((result.peakRssBytes as number) / 2 ** 20, 0)} MiB`,
              ],
            ])}\n`,
          );
        }
      } finally {
        model.dispose();
        await backend.dispose();
      }
    } finally {
      progress.stop();
    }
  },
};
