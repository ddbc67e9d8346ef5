/**
 * `edgeq quantize`: RTN / GPTQ / AWQ on the streaming block pipeline, written as an edgeq, AutoGPTQ or AutoAWQ
 * checkpoint. Every finished block is journaled in `OUT.partial/` (pipeline/resume/): `--resume` continues an
 * interrupted run; Ctrl-C stops once the current block is journaled (twice: at once), exit code 130.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { loadCalibrationText, sampleCalibration } from '../../calib/calibration.js';
import { UsageError } from '../../core/errors.js';
import { EXECUTION_TARGETS, findExecutionTarget } from '../../targets/execution-targets.js';
import { nothingToResume, partialDirFor, partialExists } from '../../formats/edgeq/atomic-dir.js';
import { edgeqPackageVersion } from '../../formats/edgeq/export-writer.js';
import { readModelConfig } from '../../model/model-dir.js';
import { SafetensorsCheckpoint } from '../../formats/safetensors/checkpoint.js';
import { CHECKPOINT_FORMATS, forcedDenseDtype, type CheckpointFormat } from '../../pipeline/checkpoint-sink.js';
import { buildQuantPlan, type PlanRequest, type QuantMethod } from '../../pipeline/plan.js';
import { quantizeModel } from '../../pipeline/quantize-model.js';
import { QuantizeInterrupted } from '../../pipeline/resume/interrupted.js';
import type { Bits } from '../../qtypes/types.js';
import { EdgeqTokenizer } from '../../tokenizer/tokenizer.js';
import type { CalibrationSample } from '../../calib/sample.js';
import { createProgress, yieldToEventLoop } from '../progress.js';
import { checkRecipeArgs, formatLadderPlan, isRecipe, ladderTreatments, svdSensitivityTreatments, svdTreatments, type CliMethod, type RecipeArgs } from './quantize-recipe.js';
import type { LadderPlan } from '../../ladder/ladder-plan.js';
import type { ResolvedTreatment } from '../../ladder/rungs.js';
import { createBackend, fmt, printJson, resolveModelDir, table, withCommonOptions, withModelOption, type CommonArgs } from '../shared.js';

interface QuantizeArgs extends CommonArgs, RecipeArgs {
  model: string;
  out?: string;
  format: CheckpointFormat;
  method: CliMethod;
  bits: number;
  'group-size': number;
  target?: string;
  type?: string;
  sym: boolean;
  asym?: boolean;
  imatrix: boolean;
  damp: number;
  'act-order': boolean;
  calib: string;
  'calib-samples': number;
  'calib-seqlen': number;
  seed: number;
  fallback: boolean;
  'dry-run': boolean;
  overwrite: boolean;
  resume: boolean;
}

/** Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it. */
const EXIT_INTERRUPTED = 130;

/** The command line to resume this run: the user's own arguments plus --resume. */
function resumeCommandLine(argv: QuantizeArgs): string {
  const raw = process.argv.slice(2);
  const args = raw[0] === 'quantize' ? raw : ['quantize', '-m', argv.model, '--method', argv.method, '-o', argv.out!, '…'];
  const quote = (a: string) => (/^[\w@%+=:,./…-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return `edgeq ${args.filter((a) => a !== '--resume').map(quote).join(' ')} --resume`;
}

function interruptedMessage(done: number, blocks: number, argv: QuantizeArgs): string {
  return done > 0
    ? `edgeq: interrupted after block ${done} of ${blocks}; resume with: ${resumeCommandLine(argv)}\n`
    : `edgeq: interrupted before the first block was finished; nothing is journaled yet (rerun with --resume or --overwrite)\n`;
}

const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;

function checkArgs(a: QuantizeArgs): void {
  checkRecipeArgs(a);
  if (![2, 3, 4, 8].includes(a.bits)) throw new UsageError('E_BITS', `--bits must be 2, 3, 4 or 8 (got ${a.bits})`);
  if (![32, 64, 128, -1].includes(a['group-size'])) throw new UsageError('E_GROUP_SIZE', `--group-size must be 32, 64, 128 or -1 for per-channel (got ${a['group-size']})`);
  for (const k of ['calib-samples', 'calib-seqlen'] as const)
    if (!Number.isInteger(a[k]) || a[k] < 1) throw new UsageError('E_CALIB', `--${k} must be a positive integer (got ${a[k]})`);
  if (!(a.damp > 0 && a.damp < 1)) throw new UsageError('E_DAMP', `--damp must be in (0, 1) (got ${a.damp})`);
  if (a['act-order'] && a.method !== 'gptq') throw new UsageError('E_ACT_ORDER', '--act-order applies to --method gptq only');
  if (a.imatrix && a.method !== 'rtn') throw new UsageError('E_IMATRIX', '--imatrix applies to --method rtn only (GPTQ and AWQ use calibration statistics already)');
  if (!a['dry-run'] && !a.out) throw new UsageError('E_NO_OUTPUT', 'name the output folder with -o/--out', 'e.g. edgeq quantize --method awq --bits 4 -o out/brown-awq4');
}

/** --sym / --asym (asymmetric by default); both at once is a usage error. */
function symmetric(argv: { sym: boolean; asym?: boolean }): boolean {
  if (argv.sym && argv.asym) throw new UsageError('E_SYM_ASYM', '--sym and --asym contradict each other', 'pass one of them (asymmetric is the default)');
  return argv.sym;
}

/** The execution-target id `--target` (with `--type` for gguf) names; `fallback` when --target is absent. */
function targetId(a: QuantizeArgs, fallback: string): string {
  return a.target === undefined ? fallback : a.target === 'gguf' ? `gguf-${(a.type ?? 'q4_0').toLowerCase()}` : a.target;
}

/** Fills --bits/--group-size/--sym from --target (refusing flags that contradict it), else the defaults. */
export function resolveTargetGrid(a: QuantizeArgs): void {
  if (a.type !== undefined && a.target !== 'gguf') throw new UsageError('E_TARGET_TYPE', '--type goes with --target gguf', 'e.g. --target gguf --type q4_0');
  if (a.method === 'ladder' || a.method === 'svd') {
    // the recipe picks its own types: --target only says what they are lowered to (ladder) or must run on
    if (a.bits !== undefined || a['group-size'] !== undefined) throw new UsageError('E_RECIPE_GRID', `--method ${a.method} chooses its own types: drop --bits/--group-size`, a.method === 'svd' ? 'quantize the factors with --factor-bits 4|8' : 'set the budget with --target-bpw or --max-size');
    const t = findExecutionTarget(targetId(a, 'wasm'));
    if (a.method === 'svd' && !t.lowRank) throw new UsageError('E_TARGET_LOWRANK', `--target ${t.id} cannot run low-rank factors (its export, ${t.export}, has no place for them)`, 'use --method ladder, or --target wasm');
    if (a.method === 'ladder' && !a.asym && !a.sym) a.sym = t.grid.sym;
    a.bits = 4;
    a['group-size'] = 128;
    return;
  }
  if (a.target === undefined) {
    a.bits ??= 4;
    a['group-size'] ??= 128;
    return;
  }
  const t = findExecutionTarget(targetId(a, a.target));
  const clash = (flag: string, given: unknown, want: unknown): void => {
    if (given !== undefined && given !== want)
      throw new UsageError('E_TARGET_GRID', `${flag} ${String(given)} contradicts --target ${a.target} (its grid is int${t.grid.bits} g${t.grid.groupSize} ${t.grid.sym ? 'sym' : 'asym'})`, `drop ${flag}, or quantize without --target`);
  };
  clash('--bits', a.bits, t.grid.bits);
  clash('--group-size', a['group-size'], t.grid.groupSize);
  if (a.asym && t.grid.sym) clash('--asym', true, false);
  if (a.sym && !t.grid.sym) clash('--sym', true, false);
  a.bits = t.grid.bits;
  a['group-size'] = t.grid.groupSize;
  a.sym = t.grid.sym;
  a.asym = !t.grid.sym ? true : undefined;
}

export const quantizeCommand: CommandModule<object, QuantizeArgs> = {
  command: 'quantize',
  describe: 'Quantize a model (RTN, GPTQ, AWQ) into an edgeq, AutoGPTQ or AutoAWQ checkpoint, one decoder block at a time',
  builder: (y: Argv) =>
    withCommonOptions(withModelOption(y))
      .option('out', { alias: 'o', type: 'string', describe: 'Output folder (written atomically; refused if it exists unless --overwrite)' })
      .option('format', {
        alias: 'f',
        choices: CHECKPOINT_FORMATS,
        default: 'edgeq' as CheckpointFormat,
        describe: 'Output layout: edgeq (any grid, mixed types), autogptq (GPTQ v1: one grid, 2/3/4/8-bit), autoawq (GEMM: 4-bit, one group size, no act-order)',
      })
      .option('method', { choices: ['rtn', 'gptq', 'awq', 'svd', 'ladder'] as const, default: 'awq' as CliMethod, describe: 'Quantization method; svd: low-rank factors (--ratio); ladder: a type per linear under a budget (--target-bpw / --max-size)' })
      .option('ratio', { type: 'number', describe: 'svd: fraction of each linear\'s parameters kept (0.8 = 20 % reduction)' })
      .option('whitening', { choices: ['svdllm', 'asvd', 'plain'] as const, default: 'svdllm' as const, describe: 'svd: scaling by calibration statistics (SVD-LLM Cholesky of XᵀX, ASVD mean |x|, or none)' })
      .option('rank-by', { choices: ['uniform', 'sensitivity'] as const, describe: 'svd: the same rank ratio for every linear (uniform, default), or ranks per linear under the same total size by measured sensitivity' })
      .option('factor-bits', { type: 'number', describe: 'svd: quantize U and V to 4 or 8 bits per channel (default: fp16 factors)' })
      .option('target-bpw', { type: 'number', describe: 'ladder: budget in bits per weight over the block linears' })
      .option('max-size', { type: 'number', describe: 'ladder: budget for the whole checkpoint, MB (10⁶ bytes)' })
      .option('quantizer', { choices: ['gptq', 'rtn', 'awq'] as const, default: 'gptq' as const, describe: 'ladder: the method that solves the quantized tensors of the plan (awq: each block AWQ-scaled on the plan\'s grids first; fp16 and low-rank linears take the scales exactly)' })
      .option('sensitivity-samples', { type: 'number', default: 16, describe: 'ladder, svd --rank-by sensitivity: calibration sequences the sensitivity pass runs (half fit the low-rank rungs, half price every rung)' })
      .option('rungs', { type: 'string', describe: 'ladder: the rungs to search, comma-separated (default all: fp16,int8,int4-g32,int4-g128,int3-g128,int2-g64,lr50-int8,lr25-int8)' })
      .option('sensitivity-seqlen', { type: 'number', default: 128, describe: 'ladder: tokens per sequence in the sensitivity pass' })
      .option('bits', { alias: 'b', type: 'number', describe: 'Bits per weight: 2, 3, 4 or 8 [default: 4, or the --target grid]' })
      .option('group-size', { alias: 'g', type: 'number', describe: 'Weights per scale along the input dim: 32, 64, 128, or -1 (per channel) [default: 128, or the --target grid]' })
      .option('target', { type: 'string', describe: `Quantize on the grid a target runs natively, so that its export loses nothing: ${EXECUTION_TARGETS.map((t) => `${t.id} (int${t.grid.bits} g${t.grid.groupSize} ${t.grid.sym ? 'sym' : 'asym'})`).join(', ')}; gguf with --type q4_0|q8_0` })
      .option('type', { type: 'string', describe: 'With --target gguf: the GGUF type to quantize for (q4_0, q8_0)' })
      .option('sym', { type: 'boolean', default: false, describe: 'Symmetric grid (no zero points)' })
      .option('asym', { type: 'boolean', describe: 'Asymmetric grid with per-group zero points (the default)' })
      .option('imatrix', { type: 'boolean', default: false, describe: 'RTN weighted by per-channel mean x² from calibration (llama.cpp imatrix style)' })
      .option('damp', { type: 'number', default: 0.01, describe: 'GPTQ damping, fraction of mean diag(H) (raised automatically if Cholesky fails)' })
      .option('act-order', { type: 'boolean', default: false, describe: 'GPTQ: quantize columns in decreasing activation order (g_idx recorded)' })
      .option('calib', { type: 'string', default: 'brown', describe: 'Calibration text: bundled name (brown) or a .txt / .jsonl ({"text": …}) file' })
      .option('calib-samples', { type: 'number', default: 128, describe: 'Calibration sequences' })
      .option('calib-seqlen', { type: 'number', default: 512, describe: 'Tokens per calibration sequence (capped at the model context)' })
      .option('seed', { type: 'number', default: 0, describe: 'Calibration sampling seed' })
      .option('fallback', { type: 'boolean', default: false, describe: 'Quantize tensors whose width the group size does not divide per channel instead of refusing' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Print the plan (types, bytes, peak memory) and stop' })
      .option('overwrite', { type: 'boolean', default: false, describe: 'Replace an existing output folder (only once the new one is complete); discards a partial output unless --resume' })
      .option('resume', { type: 'boolean', default: false, describe: 'Continue an interrupted run from its partial output OUT.partial (same options; output identical to an uninterrupted run)' })
      .example('$0 quantize --method awq --bits 4 -o out/brown-awq4', 'AWQ w4 g128 of the bundled model')
      .example('$0 quantize --method gptq --target snapdragon -o out/brown-sd', 'GPTQ on Q4_0\'s grid (int4 g32 sym): `edgeq export --target snapdragon` then repacks it losslessly')
      .example('$0 quantize -m ./my-model --method gptq --bits 3 --group-size 128 --act-order -o out/gptq3', 'GPTQ with act-order')
      .example('$0 quantize --method awq --bits 4 --format autoawq -o out/brown-awq4-hf', 'an AutoAWQ GEMM folder for transformers/vLLM')
      .example('$0 quantize -m stories260K --method rtn --bits 4 -g 32 --fallback --dry-run', 'show the plan only')
      .example('$0 quantize --method ladder --target-bpw 3 -o out/brown-ladder3', 'a type per linear (fp16 … int2, low rank) at 3 bits per weight, chosen by measured sensitivity')
      .example('$0 quantize --method ladder --target-bpw 2.5 --rungs fp16,int8,int4-g128,int3-g128,int2-g64 --dry-run', 'the ladder over quantized rungs only (no low rank), plan printed')
      .example('$0 quantize --method ladder --max-size 5 --target snapdragon-cpu --dry-run', 'the ladder over Q4_0/Q8_0/F16 only, under 5 MB; print the plan')
      .example('$0 quantize --method svd --ratio 0.8 --factor-bits 8 -o out/brown-svd80', 'SVD-LLM low rank keeping 80 % of the parameters, int8 factors')
      .example('$0 quantize --method gptq --bits 4 -o out/gptq4 --resume', 'continue an interrupted run (kill -9, Ctrl-C) from its last finished block') as Argv<QuantizeArgs>,
  handler: async (argv) => {
    resolveTargetGrid(argv);
    checkArgs(argv);
    const progress = createProgress({ quiet: argv.quiet || argv.json });
    try {
      const dir = await resolveModelDir(argv.model, progress);
      const { config } = readModelConfig(dir);
      const ckpt = await SafetensorsCheckpoint.open(dir);
      const embedInfo = ckpt.tensors.get('model.embed_tokens.weight');
      await ckpt.close();
      const seqLen = Math.min(argv['calib-seqlen'], config.maxPositionEmbeddings);
      const recipe = isRecipe(argv.method) ? argv.method : null;
      const method: QuantMethod = argv.method === 'ladder' ? argv.quantizer : argv.method === 'svd' ? 'rtn' : argv.method;
      const planReq: PlanRequest = {
        method,
        grid: { bits: argv.bits as Bits, groupSize: argv['group-size'], sym: symmetric(argv) },
        fallback: argv.fallback,
        denseDtype: forcedDenseDtype(argv.format) ?? (embedInfo?.dtype === 'F16' ? 'F16' : 'F32'),
        format: argv.format,
        actOrder: argv['act-order'],
        calib: { samples: argv['calib-samples'], seqLen },
      };
      if (!argv['dry-run']) {
        if (fs.existsSync(argv.out!) && !argv.overwrite)
          throw new UsageError('E_OUTPUT_EXISTS', `output folder ${argv.out} already exists`, 'choose another -o, or pass --overwrite to replace it once the new one is complete');
        const hasPartial = fs.existsSync(partialDirFor(argv.out!));
        if (argv.resume && !hasPartial) throw nothingToResume(argv.out!);
        if (!argv.resume && hasPartial && !argv.overwrite) throw partialExists(argv.out!);
      }
      const needsCalibration = method !== 'rtn' || argv.imatrix || recipe === 'ladder' || (recipe === 'svd' && (argv.whitening !== 'plain' || argv['rank-by'] === 'sensitivity'));
      let sampled: CalibrationSample | null = null;
      const sampleOnce = async (): Promise<CalibrationSample | null> => {
        if (sampled || !needsCalibration) return sampled;
        const tokenizer = EdgeqTokenizer.load(dir, config.bosTokenId, config.eosTokenIds);
        progress.phase('Sampling calibration');
        await yieldToEventLoop();
        sampled = sampleCalibration(tokenizer, loadCalibrationText(argv.calib), { samples: argv['calib-samples'], seqLen, seed: argv.seed });
        return sampled;
      };
      let ladder: LadderPlan | null = null;
      let treatments: Map<string, ResolvedTreatment> | undefined;
      if (recipe === 'svd' && argv['rank-by'] !== 'sensitivity') treatments = svdTreatments(config, argv);
      if (recipe === 'ladder' || (recipe === 'svd' && argv['rank-by'] === 'sensitivity')) {
        const cal = (await sampleOnce())!;
        const backend = await createBackend(argv.threads);
        try {
          progress.phase('Measuring sensitivity');
          const otherBytes = buildQuantPlan(config, { ...planReq, fallback: true }).entries.filter((e) => !e.name.startsWith('model.layers.') || !e.name.endsWith('_proj.weight')).reduce((a, e) => a + (e.kind === 'dense' ? e.shape.reduce((x, y) => x * y, 1) * (e.dtype === 'F32' ? 4 : 2) : 0), 0);
          const onProgress = (d: number, t: number, name: string) => progress.update(d, t, name.replace('model.layers.', 'L'));
          const r =
            recipe === 'svd'
              ? await svdSensitivityTreatments({ dir, config, args: argv, calibration: cal, backend, onProgress })
              : await ladderTreatments({ dir, config, args: argv, target: findExecutionTarget(targetId(argv, 'wasm')), sym: symmetric(argv), otherBytes, calibration: cal, backend, onProgress });
          treatments = r.treatments;
          ladder = r.plan;
        } finally {
          await backend.dispose();
        }
      }
      if (treatments) planReq.treatments = treatments;
      const plan = buildQuantPlan(config, planReq);
      if (argv['dry-run']) {
        progress.stop();
        if (argv.json) return printJson({ model: path.resolve(dir), plan, ...(ladder ? { ladder } : {}) });
        const types = new Map<string, number>();
        for (const e of plan.entries) {
          if (!e.name.endsWith('_proj.weight')) continue;
          const t = e.kind === 'quantized' ? e.qtype : e.kind === 'lowrank' ? `low-rank r${e.rank}` : 'F16';
          types.set(t, (types.get(t) ?? 0) + 1);
        }
        process.stdout.write(
          (ladder ? formatLadderPlan(ladder) + '\n' : '') +
          `plan for ${path.basename(dir)} (${argv.method}, ${config.numLayers} blocks, ${argv.format} format)\n` +
            `  linears: ${[...types].map(([t, n]) => `${n}× ${t}`).join(', ')}\n` +
            (plan.fallbacks.length ? `  fallbacks: ${plan.fallbacks.map((f) => `${f.name} ${f.from}→${f.to}`).join('; ')}\n` : '') +
            `  output: ${mb(plan.bytes)} for ${plan.params.toLocaleString('en-US')} params (${fmt(plan.bitsPerWeight, 3)} bits/weight)\n` +
            `  peak memory estimate: ${mb(plan.peakMemory.total)} (block weights ${mb(plan.peakMemory.blockWeights)}, activations ${mb(plan.peakMemory.activations)}, statistics ${mb(plan.peakMemory.statistics)})\n`,
        );
        return;
      }
      if (ladder && !argv.json && !argv.quiet) process.stderr.write(formatLadderPlan(ladder));
      const calibration = await sampleOnce();
      const backend = await createBackend(argv.threads);
      // Ctrl-C: the first stops after the current block is journaled, a second one at once (the journal is
      // always consistent: see pipeline/resume/journal.ts)
      let stopRequested = false;
      let journaled = 0;
      const onSigint = () => {
        progress.stop();
        if (stopRequested) {
          process.stderr.write(interruptedMessage(journaled, config.numLayers, argv));
          process.exit(EXIT_INTERRUPTED);
        }
        stopRequested = true;
        process.stderr.write('edgeq: stopping once the current block is journaled (Ctrl-C again to stop now)\n');
      };
      process.on('SIGINT', onSigint);
      let announced = false;
      try {
        progress.phase(recipe ? `Quantizing (${argv.method})` : `Quantizing (${argv.method}, ${argv.bits}-bit)`);
        const report = await quantizeModel({
          ...planReq,
          ...(recipe === 'svd' ? { recipe: { method: 'svd' as const, details: { ratio: argv.ratio!, whitening: argv.whitening, factorBits: argv['factor-bits'] ?? 16, rankBy: argv['rank-by'] ?? 'uniform', ...(ladder ? { plan: ladder } : {}) } } } : {}),
          ...(recipe === 'ladder' && ladder ? { recipe: { method: 'ladder' as const, details: { ...ladder } as Record<string, unknown> } } : {}),
          modelDir: dir,
          config,
          outDir: argv.out!,
          overwrite: argv.overwrite,
          imatrix: argv.imatrix,
          damp: argv.damp,
          calibration,
          backend,
          edgeqVersion: edgeqPackageVersion(),
          resume: argv.resume,
          shouldStop: () => stopRequested,
          onJournaled: (done) => {
            journaled = done;
          },
          onProgress: async (e) => {
            if (!announced && e.block > 0 && !argv.quiet) process.stderr.write(`edgeq: resuming ${partialDirFor(argv.out!)}: blocks 1–${e.block} of ${e.blocks} are journaled, skipped\n`);
            announced = true;
            progress.update(e.block, e.blocks, `block ${e.block}: ${e.step}`);
            await yieldToEventLoop();
          },
        }).catch((err: unknown) => {
          if (!(err instanceof QuantizeInterrupted)) throw err;
          process.stderr.write(interruptedMessage(err.blocksDone, err.blocks, argv));
          process.exitCode = EXIT_INTERRUPTED;
          return null;
        });
        if (!report) return;
        progress.stop();
        const regridded = report.layers.reduce((a, l) => a + (l.regriddedGroups ?? 0), 0);
        for (const w of calibration?.warnings ?? []) process.stderr.write(`edgeq: warning: ${w}\n`);
        if (argv.json) return printJson({ model: path.resolve(dir), out: path.resolve(argv.out!), method: argv.method, grid: planReq.grid, ...(ladder ? { ladder } : {}), calibration: calibration && { name: calibration.source.name, sha256: calibration.source.sha256, samples: calibration.n, seqLen, seed: calibration.seed }, ...report });
        process.stdout.write(
          `${table([['tensor', 'type', 'rel. weight error', ...(argv.method === 'gptq' ? ['GPTQ loss'] : []), 's'], ...report.layers.map((r) => [r.name.replace('model.layers.', 'L'), r.qtype, r.relWeightError.toExponential(3), ...(argv.method === 'gptq' ? [fmt(r.gptqLoss ?? NaN, 4)] : []), fmt(r.seconds, 2)])])}\n\n` +
            `wrote ${argv.out} (${argv.format}): ${mb(report.plan.bytes)}, ${fmt(report.plan.bitsPerWeight, 3)} bits/weight, in ${fmt(report.seconds, 1)} s; ` +
            `peak RSS ${mb(report.peakRssBytes)} (estimate ${mb(report.peakMemory.total)})\n` +
            (report.resume.skippedBlocks > 0 ? `resumed: ${report.resume.skippedBlocks} of ${report.resume.blocks} blocks were journaled by the interrupted run and skipped\n` : '') +
            (regridded > 0 ? `note: ${regridded} groups had zero point 0, which GPTQ v1 cannot store; they were re-quantized on a zero-1 grid\n` : ''),
        );
      } finally {
        process.off('SIGINT', onSigint);
        await backend.dispose();
      }
    } finally {
      progress.stop();
    }
  },
};
