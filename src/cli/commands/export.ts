/** `edgeq export --target gguf`: write a model for a real runtime, optionally verified in that runtime. */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { EXPORT_TARGETS, findTarget, type ExportTarget } from '../../export/targets.js';
import { readModelConfig } from '../../model/model-dir.js';
import { createProgress } from '../progress.js';
import { createBackend, fmt, printJson, resolveModelDir, withCommonOptions, withModelOption, type CommonArgs } from '../shared.js';

interface ExportArgs extends CommonArgs {
  model: string;
  target: string;
  type?: string;
  out?: string;
  'allow-requantize': boolean;
  original?: string;
  verify: boolean;
  'verify-windows': number;
  ctx: number;
  overwrite: boolean;
}

function defaultOutput(model: string, target: ExportTarget): string {
  if (!fs.existsSync(model)) throw new UsageError('E_NO_OUTPUT', `name the output with -o/--out (the model '${model}' is not a local folder to write next to)`, `e.g. edgeq export --target ${target.id} -o out/model${target.output === 'file' ? '.gguf' : ''}`);
  const base = path.resolve(model).replace(/[\\/]+$/, '');
  return target.output === 'file' ? `${base}.gguf` : `${base}-${target.id}`;
}

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export',
  describe: 'Export a model (HF or edgeq checkpoint) for a runtime: GGUF, ONNX, QNN or a Snapdragon bundle, verified in the runtime with --verify',
  builder: (y: Argv) =>
    withCommonOptions(withModelOption(y))
      .option('target', {
        choices: EXPORT_TARGETS.map((t) => t.id),
        demandOption: true,
        describe: `Runtime format: ${EXPORT_TARGETS.map((t) => `${t.id} (${t.description}; types ${t.types.join(', ')}; lossless: ${t.lossless})`).join('; ')}`,
      })
      .option('type', { type: 'string', describe: 'Weight type of the target (GGUF: f32 f16 q8_0 q4_0 q4_k q6_k q3_k q2_k; default: the edgeq grid\'s own type, f16 for float models)' })
      .option('out', { alias: 'o', type: 'string', describe: 'Output file or folder (written atomically) [default: <model>.gguf, or <model>-<target>/ for folder targets]' })
      .option('allow-requantize', { type: 'boolean', default: false, describe: 'Accept requantizing edgeq linears whose grid is not the target type, and expanding low-rank linears to U·V then quantizing them (lossy; the error growth is reported)' })
      .option('original', { type: 'string', describe: 'Original float model, to report requantization error against the original weights (before/after)' })
      .option('verify', { type: 'boolean', default: false, describe: 'Load the result in the runtime (llama.cpp via node-llama-cpp) and compare its WikiText perplexity/logits with edgeq\'s core' })
      .option('verify-windows', { type: 'number', default: 8, describe: 'WikiText windows for --verify' })
      .option('ctx', { type: 'number', default: 256, describe: 'Window length for --verify' })
      .option('overwrite', { type: 'boolean', default: false, describe: 'Replace an existing output file' })
      .example('$0 export --target gguf --type f16 -o out/brown-f16.gguf', 'the bundled brown-llama-7m as an F16 GGUF')
      .example('$0 export -m out/gptq4-g32-sym --target gguf -o out/q4_0.gguf --verify', 'lossless Q4_0 from a sym g32 4-bit checkpoint, checked in llama.cpp')
      .example('$0 export -m out/awq4 --target gguf --type q4_k --allow-requantize --original brown-llama-7m -o out/q4k.gguf', 'requantize another grid, with the error growth stated')
      .example('$0 export -m stories260K --target gguf --type q8_0 -o s.gguf --json', 'machine-readable report')
      .example('$0 export -m out/brown-sd --target snapdragon -o out/brown-snapdragon --verify', 'the Snapdragon folder (GGUF Q4_0 + QNN ONNX/encodings + manifest), its GGUF checked in llama.cpp') as unknown as Argv<ExportArgs>,
  handler: async (argv) => {
    const progress = createProgress({ quiet: argv.quiet || argv.json });
    try {
      // default output next to the model: <model>.gguf for one-file targets, <model>-<target>/ for folders
      argv.out ??= defaultOutput(argv.model, findTarget(argv.target));
      if (fs.existsSync(argv.out) && !argv.overwrite) throw new UsageError('E_OUTPUT_EXISTS', `${argv.out} exists`, 'pass --overwrite to replace it');
      if (!fs.existsSync(path.dirname(path.resolve(argv.out)))) throw new UsageError('E_NO_OUTPUT_DIR', `folder ${path.dirname(argv.out)} does not exist`);
      if (!Number.isInteger(argv['verify-windows']) || argv['verify-windows'] < 1) throw new UsageError('E_VERIFY_WINDOWS', '--verify-windows must be a positive integer');
      if (!Number.isInteger(argv.ctx) || argv.ctx < 2) throw new UsageError('E_CTX', '--ctx must be an integer ≥ 2');
      const target = findTarget(argv.target);
      const dir = await resolveModelDir(argv.model, progress);
      const original = argv.original ? await resolveModelDir(argv.original, progress) : undefined;
      progress.phase(`Exporting ${target.id}`);
      const r = await target.run({
        modelDir: dir,
        out: argv.out,
        type: argv.type,
        allowRequantize: argv['allow-requantize'],
        originalDir: original,
        onProgress: (d, t, name) => progress.update(d, t, name),
      });
      let verify: Record<string, unknown> | null = null;
      if (argv.verify && target.id === 'onnx') {
        progress.phase('Verifying in onnxruntime');
        const { verifyOnnxExport } = await import('../../formats/onnx/verify-onnx.js');
        const backend = await createBackend(argv.threads);
        try {
          verify = (await verifyOnnxExport({ onnxFile: path.join(r.path, 'model.onnx'), modelDir: dir, backend, ctx: argv.ctx, windows: argv['verify-windows'] })) as unknown as Record<string, unknown>;
        } finally {
          await backend.dispose();
        }
      } else if (argv.verify) {
        if (target.id !== 'gguf' && target.id !== 'snapdragon') throw new UsageError('E_VERIFY', `--verify is not available for target ${target.id} yet`);
        progress.phase('Verifying in llama.cpp');
        const { verifyGguf } = await import('../../export/gguf-verify.js');
        const backend = await createBackend(argv.threads);
        try {
          verify = (await verifyGguf({
            file: target.id === 'snapdragon' ? path.join(r.path, 'gguf', 'model-q4_0.gguf') : r.path,
            modelDir: dir,
            config: readModelConfig(dir).config,
            backend,
            ctx: argv.ctx,
            windows: argv['verify-windows'],
            onWindow: (d, t) => progress.update(d, t, 'windows'),
          })) as unknown as Record<string, unknown>;
        } finally {
          await backend.dispose();
        }
      }
      progress.stop();
      if (argv.json) return printJson({ ...r, verify });
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      const lines = [...r.lines];
      if (verify && target.id === 'onnx') {
        const v = verify as { available: boolean; reason?: string; windows: number; ctx: number; onnxPpl: number; edgeqPpl: number; pplRelDiff: number; logitsRelL2: number; maxAbsDiff: number; top1Agreement: number };
        if (!v.available) lines.push(`verify     skipped: ${v.reason}`);
        else
          lines.push(
            `verify     WikiText-2, ${v.windows} windows × ctx ${v.ctx}: perplexity onnxruntime ${fmt(v.onnxPpl, 4)} · edgeq (dequantized weights) ${fmt(v.edgeqPpl, 4)} (Δ ${fmt(100 * v.pplRelDiff, 3)} %)`,
            `           logits rel. L2 ${v.logitsRelL2.toExponential(2)} · max |Δlogit| ${v.maxAbsDiff.toExponential(2)} · top-1 agreement ${fmt(100 * v.top1Agreement, 2)} %`,
          );
      } else if (verify) {
        const v = verify as { available: boolean; reason?: string; ctx: number; windows: number; ppl?: Record<string, number>; pplRelDiff?: number; maxLogitDiff?: number; tokenizerMatch?: boolean };
        if (!v.available) lines.push(`verify     skipped: ${v.reason}`);
        else
          lines.push(
            `verify     WikiText-2, ${v.windows} windows × ctx ${v.ctx}: perplexity llama.cpp ${fmt(v.ppl!.llamaCpp, 4)} · edgeq on the same weights ${fmt(v.ppl!.edgeqSameWeights, 4)} (Δ ${fmt(100 * v.pplRelDiff!, 3)} %) · edgeq on the source ${fmt(v.ppl!.edgeqSource, 4)}`,
            `           max |Δlogit| llama.cpp vs edgeq (same weights) ${v.maxLogitDiff!.toExponential(2)} · tokenizers ${v.tokenizerMatch ? 'agree' : 'DIFFER'}`,
          );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    } finally {
      progress.stop();
    }
  },
};
