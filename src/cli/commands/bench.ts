/** `edgeq bench`: throughput alone, in the style of llama-bench (pp512 / tg128, repetitions, mean ± sd). */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { measureThroughput, type Rate, type ThroughputResult } from '../../eval/throughput.js';
import { loadModel } from '../../model/load-model.js';
import { inspectModel } from '../../model/inspect-model.js';
import { createProgress, yieldToEventLoop } from '../progress.js';
import { createBackend, fmt, printJson, resolveModelDir, table, withCommonOptions, withModelOption, type CommonArgs } from '../shared.js';

interface BenchArgs extends CommonArgs {
  model: string;
  'n-prompt': number;
  'n-gen': number;
  repetitions: number;
  kernel?: 'lut' | 'int8';
  head: 'dense' | 'int8';
}

export function rateCell(r: Rate | null): string {
  return r ? `${fmt(r.mean, 2)} ± ${fmt(r.sd, 2)}` : '-';
}

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench',
  describe: 'Throughput on edgeq\'s core, like llama-bench: prefill (pp) and decode (tg) tokens/s, mean ± sd',
  builder: (y: Argv) =>
    withCommonOptions(withModelOption(y))
      .option('n-prompt', { alias: 'p', type: 'number', default: 512, describe: 'Prompt tokens of the prefill test (0 = skip)' })
      .option('n-gen', { alias: 'n', type: 'number', default: 128, describe: 'Generated tokens of the decode test (0 = skip)' })
      .option('repetitions', { alias: 'r', type: 'number', default: 3, describe: 'Timed repetitions of each test (after one warm-up)' })
      .option('head', { type: 'string', choices: ['dense', 'int8'] as const, default: 'dense' as const, describe: 'LM head (tied embedding) in fp32, or int8 per channel on the int8-dot kernel (4× fewer bytes per token)' })
      .option('kernel', { type: 'string', choices: ['lut', 'int8'] as const, describe: 'Low-bit GEMV kernel for quantized linears [default: lut for ≤ 4 bits, int8 for 8 bits]' })
      .example('$0 bench', 'pp512 / tg128 of the bundled brown-llama-7m on all cores')
      .example('$0 bench --model out/brown-gptq4 -t 2 -r 5 --json', 'a quantized model, 2 threads, 5 repetitions, JSON')
      .example('$0 bench -p 128 -n 32', 'shorter tests') as Argv<BenchArgs>,
  handler: async (argv) => {
    const progress = createProgress({ quiet: argv.quiet || argv.json });
    try {
      const dir = await resolveModelDir(argv.model, progress);
      const info = await inspectModel(dir);
      const backend = await createBackend(argv.threads);
      progress.phase('Loading model');
      const model = await loadModel(dir, backend, { kernel: argv.kernel,
        head: argv.head, onProgress: (p) => progress.update(p.index, p.count, p.tensor) });
      let res: ThroughputResult;
      try {
        progress.phase('Benchmarking');
        const runs = argv.repetitions * ((argv['n-prompt'] > 0 ? 1 : 0) + (argv['n-gen'] > 0 ? 1 : 0));
        let done = 0;
        res = await measureThroughput(model, {
          promptTokens: argv['n-prompt'],
          genTokens: argv['n-gen'],
          reps: argv.repetitions,
          onRun: async (test) => {
            progress.update(++done, runs, test);
            await yieldToEventLoop();
          },
        });
        progress.stop();
        const summary = {
          model: path.resolve(dir),
          params: info.params,
          bytes: info.bytes,
          bitsPerWeight: info.bitsPerWeight,
          weightBytesPerToken: model.weightBytesPerToken(),
          backend: backend.name,
          ...res,
          peakRssBytes: process.resourceUsage().maxRSS * 1024,
        };
        if (argv.json) printJson(summary);
        else {
          const rows: (string | number)[][] = [['model', 'size', 'params', 'bpw', 'backend', 'threads', 'test', 't/s']];
          const base = [path.basename(dir), `${fmt(info.bytes / 2 ** 20, 2)} MiB`, `${fmt(info.params / 1e6, 2)} M`, fmt(info.bitsPerWeight, 2), backend.name, backend.threads];
          if (res.prefill) rows.push([...base, `pp${res.promptTokens}`, rateCell(res.prefill)]);
          if (res.decode) rows.push([...base, `tg${res.genTokens}`, rateCell(res.decode)]);
          process.stdout.write(`${table(rows)}\n`);
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
