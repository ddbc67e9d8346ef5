/** `edgeq eval`: perplexity under edgeq's protocol, prefill throughput, and greedy continuations. */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { readEvalText, resolveDatasetPath, tokenizeText } from '../../eval/dataset.js';
import { compareWithBaseline, type CompareResult } from '../../eval/compare.js';
import { evaluatePerplexity, type PerplexityResult } from '../../eval/perplexity.js';
import { generateGreedy } from '../../infer/generate.js';
import { loadModel } from '../../model/load-model.js';
import { readModelConfig } from '../../model/model-dir.js';
import { EdgeqTokenizer } from '../../tokenizer/tokenizer.js';
import { createProgress, yieldToEventLoop } from '../progress.js';
import { createBackend, fmt, printJson, resolveModelDir, table, withCommonOptions, withModelOption, type CommonArgs } from '../shared.js';

interface EvalArgs extends CommonArgs {
  model: string;
  dataset?: string;
  ctx: number;
  'max-windows'?: number;
  prompt?: string;
  'max-new-tokens': number;
  baseline?: string;
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Measure a model: WikiText-2 (or your text) perplexity, prefill tok/s, greedy continuation',
  builder: (y: Argv) =>
    withCommonOptions(withModelOption(y))
      .option('dataset', { alias: 'd', type: 'string', describe: 'wikitext2 (bundled) or a path to a UTF-8 text file [default: wikitext2]' })
      .option('ctx', { alias: 'c', type: 'number', default: 256, describe: 'Context length of each perplexity window (BOS + ctx-1 scored tokens)' })
      .option('max-windows', { type: 'number', describe: 'Score only the first K windows (quick checks)' })
      .option('prompt', { alias: 'p', type: 'string', describe: 'Print a greedy continuation of this prompt (skips perplexity unless --dataset is given)' })
      .option('baseline', { alias: 'B', type: 'string', describe: 'Also score this model (e.g. the FP16 original) on the same windows: Δppl, mean KL divergence, top-1 agreement' })
      .option('max-new-tokens', { alias: 'n', type: 'number', default: 32, describe: 'Tokens to generate for --prompt' })
      .example('$0 eval', 'perplexity of the bundled brown-llama-7m on WikiText-2, ctx 256')
      .example('$0 eval --model ./my-model --ctx 512 --max-windows 32 --json', 'quick check of a local Hugging Face folder')
      .example('$0 eval --model out/brown-awq4 --baseline brown-llama-7m --max-windows 128', 'quantized vs FP16: Δppl, KL, top-1 agreement')
      .example('$0 eval --model stories260K --prompt "Once upon a time" -n 24', 'greedy continuation') as Argv<EvalArgs>,
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
      const model = await loadModel(dir, backend, { onProgress: (p) => progress.update(p.index, p.count, p.tensor) });
      const result: Record<string, unknown> = { model: path.resolve(dir), modelType: config.modelType, threads: backend.threads };
      try {
        const runPpl = argv.prompt === undefined || argv.dataset !== undefined;
        let ppl: PerplexityResult | undefined;
        let cmp: CompareResult | undefined;
        if (runPpl) {
          const bos = tokenizer.bosId ?? tokenizer.eosIds[0];
          if (bos === undefined) throw new UsageError('E_NO_BOS', 'the model has neither a BOS nor an EOS token id to start each window', 'set bos_token_id in config.json');
          const file = resolveDatasetPath(argv.dataset ?? 'wikitext2');
          progress.phase('Tokenizing');
          await yieldToEventLoop();
          const text = tokenizeText(tokenizer, readEvalText(file));
          if (argv.baseline !== undefined) {
            const bdir = await resolveModelDir(argv.baseline, progress);
            const baseline = await loadModel(bdir, backend);
            try {
              progress.phase('Comparing with the baseline');
              cmp = await compareWithBaseline(model, baseline, text.ids, {
                ctx: argv.ctx,
                bosId: bos,
                maxWindows: argv['max-windows'],
                onWindow: async (done, total) => {
                  progress.update(done, total);
                  await yieldToEventLoop();
                },
              });
              result.baseline = { model: path.resolve(bdir), ...cmp };
            } finally {
              baseline.dispose();
            }
          }
          progress.phase('Perplexity');
          ppl = await evaluatePerplexity(model, text.ids, {
            ctx: argv.ctx,
            bosId: bos,
            maxWindows: argv['max-windows'],
            onWindow: async (done, total, nll) => {
              progress.update(done, total, `ppl ${fmt(Math.exp(nll))}`);
              await yieldToEventLoop();
            },
          });
          result.dataset = { path: path.resolve(file), tokens: text.ids.length, sha256: text.sha256 };
          result.ctx = argv.ctx;
          result.eval = ppl;
        }
        let gen: { prompt: string; ids: number[]; text: string } | undefined;
        if (argv.prompt !== undefined) {
          progress.phase('Generating');
          await yieldToEventLoop();
          const promptIds = tokenizer.encodeWithBos(argv.prompt);
          const ids = generateGreedy(model, promptIds, { maxNewTokens: argv['max-new-tokens'], stopIds: tokenizer.eosIds });
          gen = { prompt: argv.prompt, ids, text: tokenizer.decodeContinuation(promptIds, ids) };
          result.generation = gen;
        }
        progress.stop();
        if (argv.json) printJson(result);
        else {
          if (ppl)
            process.stdout.write(
              `${table([
                ['model', 'ctx', 'windows', 'tokens scored', 'ppl', 'prefill tok/s', 'threads'],
                [path.basename(dir), argv.ctx, `${ppl.windows}/${ppl.windowsAvailable}`, ppl.scoredTokens, fmt(ppl.ppl, 4), fmt(ppl.prefillTokPerSec, 1), backend.threads],
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
