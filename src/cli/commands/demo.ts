/**
 * `edgeq demo`: the whole job on the bundled default model, offline. Today (foundation) it inspects the
 * model, measures its FP16 perplexity on WikiText-2 and prints a greedy continuation; quantize, compare and
 * export steps join as they land.
 */
import type { Argv, CommandModule } from 'yargs';
import { readEvalText, resolveDatasetPath, tokenizeText } from '../../eval/dataset.js';
import { evaluatePerplexity } from '../../eval/perplexity.js';
import { generateGreedy } from '../../infer/generate.js';
import { loadModel } from '../../model/load-model.js';
import { inspectModel } from '../../model/inspect-model.js';
import { BUNDLED } from '../../core/paths.js';
import { EdgeqTokenizer } from '../../tokenizer/tokenizer.js';
import { createProgress, yieldToEventLoop } from '../progress.js';
import { createBackend, fmt, printJson, table, withCommonOptions, type CommonArgs } from '../shared.js';

interface DemoArgs extends CommonArgs {
  'max-windows': number;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Run the pipeline offline on the bundled brown-llama-7m and print a summary',
  builder: (y: Argv) =>
    withCommonOptions(y)
      .option('max-windows', { type: 'number', default: 64, describe: 'WikiText-2 windows (ctx 256) to score' })
      .example('$0 demo', 'inspect + evaluate the bundled model') as Argv<DemoArgs>,
  handler: async (argv) => {
    const progress = createProgress({ quiet: argv.quiet || argv.json });
    const dir = BUNDLED.defaultModel;
    const backend = await createBackend(argv.threads);
    try {
      const info = await inspectModel(dir);
      const tokenizer = EdgeqTokenizer.load(dir, info.config.bosTokenId, info.config.eosTokenIds);
      progress.phase('Loading brown-llama-7m');
      const model = await loadModel(dir, backend);
      try {
        progress.phase('Tokenizing WikiText-2');
        await yieldToEventLoop();
        const text = tokenizeText(tokenizer, readEvalText(resolveDatasetPath('wikitext2')));
        progress.phase('Perplexity (fp16 weights, fp32 compute)');
        const ppl = await evaluatePerplexity(model, text.ids, {
          ctx: 256,
          bosId: tokenizer.bosId ?? 1,
          maxWindows: argv['max-windows'],
          onWindow: async (d, t) => {
            progress.update(d, t);
            await yieldToEventLoop();
          },
        });
        const prompt = 'The jury said that';
        const promptIds = tokenizer.encodeWithBos(prompt);
        const ids = generateGreedy(model, promptIds, { maxNewTokens: 24, stopIds: tokenizer.eosIds });
        progress.stop();
        const summary = {
          model: info.dir,
          params: info.params,
          bytes: info.bytes,
          bitsPerWeight: info.bitsPerWeight,
          wikitext2: { ctx: 256, windows: ppl.windows, ppl: ppl.ppl, prefillTokPerSec: ppl.prefillTokPerSec },
          generation: { prompt, text: tokenizer.decodeContinuation(promptIds, ids) },
          threads: backend.threads,
        };
        if (argv.json) return printJson(summary);
        process.stdout.write(
          `${table([
            ['model', 'params', 'size MB', 'bits/weight', `ppl (WikiText-2, ${ppl.windows} windows)`, 'prefill tok/s'],
            ['brown-llama-7m fp16', info.params.toLocaleString('en-US'), fmt(info.bytes / 1e6), fmt(info.bitsPerWeight), fmt(ppl.ppl, 3), fmt(ppl.prefillTokPerSec, 1)],
          ])}\n\n${prompt}${summary.generation.text}\n`,
        );
      } finally {
        model.dispose();
      }
    } finally {
      progress.stop();
      await backend.dispose();
    }
  },
};
