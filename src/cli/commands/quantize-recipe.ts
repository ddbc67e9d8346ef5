/**
 * `edgeq quantize --method svd|ladder`: the recipes that give linears their own treatment before the
 * streaming pipeline runs. `svd` factors every block linear at `--ratio` of its parameters (pure, from the
 * shapes); `ladder` loads the FP model, prices every rung of every linear on a calibration subset and
 * allocates rungs under `--target-bpw` / `--max-size` (src/ladder/). Both hand the pipeline a map of
 * per-tensor treatments and a provenance record; the quantized tensors of a ladder plan are solved by
 * `--quantizer` (GPTQ by default).
 */
import type { LlamaConfig } from '../../arch/llama-config.js';
import { LLAMA_LINEARS, linearWeightName } from '../../arch/llama-tensors.js';
import type { CalibrationSample } from '../../calib/sample.js';
import { UsageError } from '../../core/errors.js';
import { SafetensorsCheckpoint } from '../../formats/safetensors/checkpoint.js';
import type { MatmulBackend } from '../../kernels/backend.js';
import { planLadder, type LadderBudget, type LadderPlan } from '../../ladder/ladder-plan.js';
import { logicalRungs, resolveTreatment, rungsForTarget, treatmentBytes, type LadderRung, type ResolvedTreatment } from '../../ladder/rungs.js';
import { findExecutionTarget } from '../../targets/execution-targets.js';
import type { GridSpec } from '../../qtypes/types.js';
import type { WhiteningKind } from '../../lowrank/whitening.js';
import { loadModel } from '../../model/load-model.js';
import type { QuantMethod } from '../../pipeline/plan.js';
import type { Bits } from '../../qtypes/types.js';
import type { ExecutionTarget } from '../../targets/execution-targets.js';
import { fmt, table } from '../shared.js';

export const RECIPES = ['svd', 'ladder'] as const;
export type Recipe = (typeof RECIPES)[number];
export type CliMethod = QuantMethod | Recipe;

export interface RecipeArgs {
  method: CliMethod;
  ratio?: number;
  whitening: WhiteningKind;
  'factor-bits'?: number;
  'target-bpw'?: number;
  'max-size'?: number;
  quantizer: 'gptq' | 'rtn' | 'awq';
  'rank-by'?: 'uniform' | 'sensitivity';
  'sensitivity-samples': number;
  'sensitivity-seqlen': number;
  /** ladder: the logical rungs to search (ids of logicalRungs), default all. */
  rungs?: string;
}

export const isRecipe = (m: CliMethod): m is Recipe => (RECIPES as readonly string[]).includes(m);

export function checkRecipeArgs(a: RecipeArgs): void {
  const only = (flag: string, present: boolean, method: Recipe): void => {
    if (present && a.method !== method) throw new UsageError('E_RECIPE_FLAG', `${flag} applies to --method ${method} only`);
  };
  only('--ratio', a.ratio !== undefined, 'svd');
  only('--factor-bits', a['factor-bits'] !== undefined, 'svd');
  only('--rank-by', a['rank-by'] !== undefined && a['rank-by'] !== 'uniform', 'svd');
  only('--target-bpw', a['target-bpw'] !== undefined, 'ladder');
  only('--max-size', a['max-size'] !== undefined, 'ladder');
  only('--rungs', a.rungs !== undefined, 'ladder');
  if (a.method === 'svd') {
    if (a.ratio === undefined) throw new UsageError('E_SVD_RATIO', '--method svd needs --ratio (fraction of each linear\'s parameters kept)', 'e.g. --ratio 0.8 for a 20 % reduction');
    if (!(a.ratio > 0 && a.ratio <= 1)) throw new UsageError('E_SVD_RATIO', `--ratio must be in (0, 1], got ${a.ratio}`, 'e.g. --ratio 0.8 keeps 80 % of the parameters');
    if (a['factor-bits'] !== undefined && ![4, 8].includes(a['factor-bits'])) throw new UsageError('E_FACTOR_BITS', `--factor-bits must be 4 or 8 (got ${a['factor-bits']})`, 'omit it to keep the factors in fp16');
  }
  if (a.method === 'ladder' || (a.method === 'svd' && a['rank-by'] === 'sensitivity')) {
    for (const k of ['sensitivity-samples', 'sensitivity-seqlen'] as const)
      if (!Number.isInteger(a[k]) || a[k] < 1) throw new UsageError('E_CALIB', `--${k} must be a positive integer (got ${a[k]})`);
  }
  if (a.method === 'ladder') {
    const n = Number(a['target-bpw'] !== undefined) + Number(a['max-size'] !== undefined);
    if (n !== 1) throw new UsageError('E_LADDER_BUDGET', '--method ladder needs exactly one budget: --target-bpw B (bits per weight over the linears) or --max-size MB (the whole checkpoint)', 'e.g. --target-bpw 3');
    for (const k of ['sensitivity-samples', 'sensitivity-seqlen'] as const)
      if (!Number.isInteger(a[k]) || a[k] < 1) throw new UsageError('E_CALIB', `--${k} must be a positive integer (got ${a[k]})`);
  }
}

const factorGridOf = (a: RecipeArgs): GridSpec | null => (a['factor-bits'] ? { bits: a['factor-bits'] as Bits, groupSize: -1, sym: true } : null);

/** `--method svd`: every block linear low-rank at --ratio, factors fp16 or int4/int8 per channel. */
export function svdTreatments(c: LlamaConfig, a: RecipeArgs): Map<string, ResolvedTreatment> {
  const factorGrid = factorGridOf(a);
  const out = new Map<string, ResolvedTreatment>();
  for (let l = 0; l < c.numLayers; l++)
    for (const spec of LLAMA_LINEARS) {
      const [n, k] = spec.shape(c);
      out.set(linearWeightName(l, spec), resolveTreatment({ kind: 'lowrank', keep: a.ratio!, whitening: a.whitening, factorGrid }, n, k));
    }
  return out;
}

/** Keep ratios `--method svd --rank-by sensitivity` chooses from per linear (plus the dense fp16 weight). */
export const SVD_KEEP_RUNGS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] as const;

/**
 * `--method svd --rank-by sensitivity`: the same bytes as the uniform `--ratio` plan, spread over the linears
 * by the ladder's machinery — rungs = low rank at each keep ratio of SVD_KEEP_RUNGS (and the dense weight),
 * priced by the whitened truncation error × an end-to-end KL probe per linear, allocated exactly.
 */
export async function svdSensitivityTreatments(o: Omit<Parameters<typeof ladderTreatments>[0], 'target' | 'sym' | 'otherBytes'>): Promise<{ treatments: Map<string, ResolvedTreatment>; plan: LadderPlan }> {
  const factorGrid = factorGridOf(o.args);
  const whitening = o.args.whitening;
  const rungs: LadderRung[] = [
    { id: 'fp16', treatment: { kind: 'dense' }, from: [], lowered: false },
    ...[...SVD_KEEP_RUNGS].reverse().map((keep) => ({ id: `lr${Math.round(keep * 100)}`, treatment: { kind: 'lowrank' as const, keep, whitening, factorGrid }, from: [], lowered: false })),
  ];
  let uniformBytes = 0;
  for (let l = 0; l < o.config.numLayers; l++)
    for (const spec of LLAMA_LINEARS) {
      const [n, k] = spec.shape(o.config);
      uniformBytes += treatmentBytes(resolveTreatment({ kind: 'lowrank', keep: o.args.ratio!, whitening, factorGrid }, n, k), n, k, linearWeightName(l, spec));
    }
  return ladderTreatments({ ...o, target: findExecutionTarget('wasm'), sym: true, otherBytes: 0, rungs, budget: { maxBytes: uniformBytes, otherBytes: 0 } });
}

/** The first n sequences, first T tokens each, of a calibration sample. */
export function calibrationSubset(cal: CalibrationSample, n: number, T: number): { ids: Int32Array; n: number; T: number } {
  const m = Math.min(n, cal.n);
  const t = Math.min(T, cal.seqLen);
  const ids = new Int32Array(m * t);
  for (let i = 0; i < m; i++) ids.set(cal.ids.subarray(i * cal.seqLen, i * cal.seqLen + t), i * t);
  return { ids, n: m, T: t };
}

/**
 * `--rungs a,b,…`: the logical rungs to search, lowered to the target; null when the flag is absent (the
 * whole ladder). Unknown ids, or a list of which the target runs none, are refused.
 */
export function selectedRungs(list: string | undefined, target: ExecutionTarget, sym: boolean): LadderRung[] | null {
  if (list === undefined) return null;
  const all = logicalRungs(sym);
  const ids = list.split(',').map((x) => x.trim()).filter(Boolean);
  const unknown = ids.filter((id) => !all.some((r) => r.id === id));
  if (ids.length === 0 || unknown.length) throw new UsageError('E_LADDER_RUNGS', ids.length ? `unknown rung${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}` : '--rungs is empty', `rungs: ${all.map((r) => r.id).join(', ')}`);
  const rungs = rungsForTarget(target, sym, all.filter((r) => ids.includes(r.id)));
  if (rungs.length === 0) throw new UsageError('E_LADDER_RUNGS', `target ${target.id} runs none of the rungs ${ids.join(', ')}`, 'add a rung it runs (fp16 always works)');
  return rungs;
}

export async function ladderTreatments(o: {
  dir: string;
  config: LlamaConfig;
  args: RecipeArgs;
  target: ExecutionTarget;
  sym: boolean;
  otherBytes: number;
  calibration: CalibrationSample;
  backend: MatmulBackend;
  onProgress?: (done: number, total: number, name: string) => void;
  rungs?: LadderRung[];
  budget?: LadderBudget;
}): Promise<{ treatments: Map<string, ResolvedTreatment>; plan: LadderPlan }> {
  const budget: LadderBudget = o.budget ?? (o.args['target-bpw'] !== undefined ? { bitsPerWeight: o.args['target-bpw'] } : { maxBytes: o.args['max-size']! * 1e6, otherBytes: o.otherBytes });
  const sub = calibrationSubset(o.calibration, o.args['sensitivity-samples'], o.args['sensitivity-seqlen']);
  const model = await loadModel(o.dir, o.backend);
  const reader = await SafetensorsCheckpoint.open(o.dir);
  try {
    const rungs = o.rungs ?? selectedRungs(o.args.rungs, o.target, o.sym) ?? undefined;
    const r = await planLadder({ config: o.config, model, reader, backend: o.backend, target: o.target, sym: o.sym, budget, ...sub, rungs, onProgress: o.onProgress });
    return { treatments: r.treatments, plan: r.plan };
  } finally {
    model.dispose();
    await reader.close();
  }
}

/** The ladder plan as the terminal shows it (`--dry-run` and before quantizing). */
export function formatLadderPlan(p: LadderPlan): string {
  const rows = p.choices.map((c) => [c.name.replace('model.layers.', 'L').replace('.weight', ''), c.rung, c.type, c.bytes, c.loss.toExponential(2)]);
  const rungs = p.rungs.map((r) => `${r.id}${r.lowered ? ' (lowered)' : ''} = ${r.type}${r.from.length ? ` [also ${r.from.join(', ')}]` : ''}`).join('; ');
  return (
    `ladder plan for target ${p.target} (sensitivity: ${p.sensitivity.samples} × ${p.sensitivity.tokens / Math.max(1, p.sensitivity.samples)} tokens, probe ${p.probe})\n` +
    `  rungs: ${rungs}\n` +
    `${table([['linear', 'rung', 'stored as', 'bytes', 'est. ΔKL'], ...rows])}\n` +
    `  linears: ${p.bytes} B of a ${p.budgetBytes} B budget, ${fmt(p.bitsPerWeight, 3)} bits/weight; ` +
    `${Object.entries(p.histogram).map(([k, v]) => `${v}× ${k}`).join(', ')}; estimated ΔKL ${p.estimatedLoss.toExponential(3)}\n`
  );
}
