/**
 * `edgeq demo`: the whole job on the bundled brown-llama-7m, offline, in one command:
 *   1. quantize with AWQ and with GPTQ at 4 bits on the Snapdragon grid (int4, group 32, symmetric =
 *      llama.cpp's Q4_0 grid, so the export repacks without loss), bundled Brown calibration;
 *   2. evaluate both against the FP16 model on edgeq's core (packed low-bit kernels): WikiText-2
 *      perplexity, Δppl, mean KL, top-1 agreement, prefill/decode tok/s — saved as each folder's
 *      edgeq-eval.json;
 *   3. export the better one (lower KL) as the Snapdragon bundle;
 *   4. write the HTML report of the folder, and print a summary table and the paths.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { loadCalibrationText } from '../../calib/calibration.js';
import { sampleCalibration } from '../../calib/sample.js';
import { BUNDLED } from '../../core/paths.js';
import { UsageError } from '../../core/errors.js';
import { compareManyWithBaseline, compareSummary, type CompareSummary } from '../../eval/compare.js';
import { readEvalText, resolveDatasetPath, tokenizeText } from '../../eval/dataset.js';
import { measureThroughput, type ThroughputResult } from '../../eval/throughput.js';
import { exportSnapdragonBundle } from '../../export/snapdragon-bundle.js';
import { edgeqPackageVersion } from '../../formats/edgeq/export-writer.js';
import type { LlamaModel } from '../../infer/llama-model.js';
import { inspectModel } from '../../model/inspect-model.js';
import { loadModel } from '../../model/load-model.js';
import { readModelConfig } from '../../model/model-dir.js';
import { quantizeModel } from '../../pipeline/quantize-model.js';
import { writeReport } from '../../report/index.js';
import { EVAL_RECORD_FILE } from '../../report/eval-record.js';
import { findExecutionTarget } from '../../targets/execution-targets.js';
import { EdgeqTokenizer } from '../../tokenizer/tokenizer.js';
import { createProgress, yieldToEventLoop } from '../progress.js';
import { createBackend, fmt, printJson, table, withCommonOptions, type CommonArgs } from '../shared.js';

interface DemoArgs extends CommonArgs {
  out: string;
  'max-windows': number;
  'calib-samples': number;
  'calib-seqlen': number;
}

const METHODS = ['awq', 'gptq'] as const;
const CTX = 256;
const SPEED = { promptTokens: 256, genTokens: 64 };

interface DemoRun {
  name: string;
  dir: string;
  bytes: number;
  bitsPerWeight: number;
  seconds: number;
  cmp?: CompareSummary;
  speed?: ThroughputResult;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'The whole pipeline offline on the bundled brown-llama-7m: AWQ + GPTQ 4-bit, eval vs FP16, Snapdragon export, HTML report',
  builder: (y: Argv) =>
    withCommonOptions(y)
      .option('out', { alias: 'o', type: 'string', default: 'edgeq-demo', describe: 'Folder for the checkpoints, the Snapdragon bundle and the report (its demo outputs are replaced)' })
      .option('max-windows', { type: 'number', default: 32, describe: 'WikiText-2 windows (ctx 256) scored against FP16' })
      .option('calib-samples', { type: 'number', default: 32, describe: 'Calibration sequences (bundled Brown sample)' })
      .option('calib-seqlen', { type: 'number', default: 256, describe: 'Tokens per calibration sequence' })
      .example('$0 demo', 'everything, into ./edgeq-demo')
      .example('$0 demo -o /tmp/demo --max-windows 128 --json', 'a longer evaluation, JSON summary') as Argv<DemoArgs>,
  handler: async (argv) => {
    for (const k of ['max-windows', 'calib-samples', 'calib-seqlen'] as const)
      if (!Number.isInteger(argv[k]) || argv[k] < 1) throw new UsageError('E_DEMO_ARGS', `--${k} must be a positive integer (got ${argv[k]})`);
    const t0 = performance.now();
    const progress = createProgress({ quiet: argv.quiet || argv.json });
    const src = BUNDLED.defaultModel;
    const out = path.resolve(argv.out);
    fs.mkdirSync(out, { recursive: true });
    const backend = await createBackend(argv.threads);
    try {
      const info = await inspectModel(src);
      const { config } = readModelConfig(src);
      const tok = EdgeqTokenizer.load(src, config.bosTokenId, config.eosTokenIds);
      const grid = findExecutionTarget('snapdragon').grid;
      progress.phase('Sampling calibration');
      await yieldToEventLoop();
      const seqLen = Math.min(argv['calib-seqlen'], config.maxPositionEmbeddings);
      const calibration = sampleCalibration(tok, loadCalibrationText('brown'), { samples: argv['calib-samples'], seqLen, seed: 0 });

      const runs: DemoRun[] = [];
      for (const method of METHODS) {
        const dir = path.join(out, `brown-${method}-w4g32`);
        progress.phase(`Quantizing with ${method.toUpperCase()} (4-bit, group 32, sym)`);
        const r = await quantizeModel({
          method,
          grid,
          fallback: false,
          denseDtype: 'F16',
          calib: { samples: argv['calib-samples'], seqLen },
          modelDir: src,
          config,
          outDir: dir,
          overwrite: true,
          calibration,
          backend,
          edgeqVersion: edgeqPackageVersion(),
          onProgress: async (e) => {
            progress.update(e.block, e.blocks, `block ${e.block}: ${e.step}`);
            await yieldToEventLoop();
          },
        });
        runs.push({ name: `${method.toUpperCase()} w4 g32`, dir, bytes: r.plan.bytes, bitsPerWeight: r.plan.bitsPerWeight, seconds: r.seconds });
      }

      progress.phase('Tokenizing WikiText-2');
      await yieldToEventLoop();
      const text = tokenizeText(tok, readEvalText(resolveDatasetPath('wikitext2')));
      const baseline = await loadModel(src, backend);
      const models: LlamaModel[] = [];
      try {
        for (const r of runs) models.push(await loadModel(r.dir, backend));
        progress.phase('Evaluating against FP16 on the core');
        const cmps = await compareManyWithBaseline(models, baseline, text.ids, {
          ctx: CTX,
          bosId: tok.bosId ?? 1,
          maxWindows: argv['max-windows'],
          onWindow: async (d, t) => {
            progress.update(d, t);
            await yieldToEventLoop();
          },
        });
        progress.phase('Throughput');
        for (let i = 0; i < runs.length; i++) {
          runs[i].cmp = compareSummary(cmps[i]);
          runs[i].speed = await measureThroughput(models[i], { ...SPEED, reps: 1 });
          await yieldToEventLoop();
        }
        const fpSpeed = await measureThroughput(baseline, { ...SPEED, reps: 1 });
        for (let i = 0; i < runs.length; i++) {
          const r = runs[i];
          const record = {
            model: r.dir,
            modelType: config.modelType,
            threads: backend.threads,
            dataset: { path: resolveDatasetPath('wikitext2'), tokens: text.ids.length, sha256: text.sha256 },
            ctx: CTX,
            eval: { ppl: r.cmp!.ppl, scoredTokens: r.cmp!.scoredTokens, windows: r.cmp!.windows, windowsAvailable: r.cmp!.windowsAvailable },
            baseline: { model: src, ...r.cmp! },
            throughput: { promptTokens: SPEED.promptTokens, prefillTokPerSec: r.speed!.prefill!.mean, genTokens: SPEED.genTokens, decodeTokPerSec: r.speed!.decode!.mean },
            size: { bytes: r.bytes, params: info.params, bitsPerWeight: r.bitsPerWeight, weightBytesPerToken: models[i].weightBytesPerToken() },
            peakRssBytes: process.resourceUsage().maxRSS * 1024,
            date: new Date().toISOString(),
          };
          fs.writeFileSync(path.join(r.dir, EVAL_RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`);
        }

        const best = runs.reduce((a, b) => (b.cmp!.meanKl < a.cmp!.meanKl ? b : a));
        progress.phase(`Exporting ${best.name} for Snapdragon`);
        await yieldToEventLoop();
        const bundleDir = path.join(out, 'snapdragon');
        const bundle = await exportSnapdragonBundle({ modelDir: best.dir, outDir: bundleDir, backend, overwrite: true });
        progress.phase('Writing the report');
        const report = await writeReport(out);
        progress.stop();
        const seconds = (performance.now() - t0) / 1000;
        const summary = {
          model: src,
          out,
          fp16: { bytes: info.bytes, bitsPerWeight: info.bitsPerWeight, ppl: cmps[0].baselinePpl, prefillTokPerSec: fpSpeed.prefill!.mean, decodeTokPerSec: fpSpeed.decode!.mean },
          runs: runs.map((r) => ({ name: r.name, dir: r.dir, bytes: r.bytes, bitsPerWeight: r.bitsPerWeight, quantizeSeconds: r.seconds, ...r.cmp, prefillTokPerSec: r.speed!.prefill!.mean, decodeTokPerSec: r.speed!.decode!.mean })),
          exported: { from: best.dir, dir: bundleDir, ggufLossless: bundle.manifest.gguf.lossless, estimates: bundle.manifest.estimates },
          report: report.file,
          windows: cmps[0].windows,
          threads: backend.threads,
          seconds,
        };
        if (argv.json) return printJson(summary);
        const mb = (b: number): string => fmt(b / 1e6, 2);
        process.stdout.write(
          `${table([
            ['brown-llama-7m', 'size MB', 'bits/w', `ppl (${cmps[0].windows} win)`, 'Δppl', 'mean KL', 'top-1 %', `pp${SPEED.promptTokens} tok/s`, `tg${SPEED.genTokens} tok/s`],
            ['FP16', mb(info.bytes), fmt(info.bitsPerWeight, 2), fmt(cmps[0].baselinePpl, 2), '-', '-', '-', fmt(fpSpeed.prefill!.mean, 0), fmt(fpSpeed.decode!.mean, 0)],
            ...runs.map((r) => [r.name, mb(r.bytes), fmt(r.bitsPerWeight, 2), fmt(r.cmp!.ppl, 2), fmt(r.cmp!.deltaPpl, 2), r.cmp!.meanKl.toExponential(2), fmt(100 * r.cmp!.top1Agreement, 1), fmt(r.speed!.prefill!.mean, 0), fmt(r.speed!.decode!.mean, 0)]),
          ])}\n\n` +
            `snapdragon bundle (${best.name}, ${bundle.manifest.gguf.lossless ? 'lossless Q4_0' : 'requantized'}): ${bundleDir}\n` +
            bundle.manifest.estimates.map((e) => `  ${e.name}: ≤ ${fmt(e.decodeTokPerSec, 0)} tok/s decode (bandwidth roofline, ctx ${bundle.manifest.ctx})\n`).join('') +
            `report: ${report.file}\n` +
            `done in ${fmt(seconds, 0)} s on ${backend.threads} threads (edgeq ${edgeqPackageVersion()})\n`,
        );
      } finally {
        for (const m of models) m.dispose();
        baseline.dispose();
      }
    } finally {
      progress.stop();
      await backend.dispose();
    }
  },
};
