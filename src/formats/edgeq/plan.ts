/**
 * The tensor plan shared by the edgeq, GPTQ and AWQ checkpoint writers. A safetensors header lists every
 * tensor's shape before any data, so a streaming writer needs all names and shapes up front: the plan
 * says, in write order, which tensors are quantized linears (HF weight name `<module>.weight`, [n, k],
 * quant grid) and which are stored dense. Helpers here check a QuantizedWeight against its plan entry.
 */
import { f16BitsToF32, f32ToF16Bits } from '../../core/dtype.js';
import { EdgeqError, NonFiniteWeightError, UnsupportedError } from '../../core/errors.js';
import type { Bits, GridSpec, QuantizedWeight } from '../../qtypes/types.js';
import { isPackableBits } from '../bitpack.js';
import { checkGroupable, qtypeFor, qtypeId } from '../../qtypes/registry.js';

export interface QuantizedPlanEntry {
  kind: 'quantized';
  /** HF weight name, e.g. 'model.layers.0.self_attn.q_proj.weight' (must end in '.weight'). */
  name: string;
  /** [n, k] = [out features, in features]. */
  shape: readonly [number, number];
  /** Registry id of the quant type, e.g. 'int4_g128_asym'. */
  qtype: string;
  grid: GridSpec;
  /** The weight carries an act-order g_idx. */
  actOrder?: boolean;
}

export interface DensePlanEntry {
  kind: 'dense';
  /** HF tensor name, stored under this name. */
  name: string;
  shape: readonly number[];
  /** Storage dtype (edgeq format; GPTQ/AWQ always store dense tensors as F16). Default F16. */
  dtype?: 'F16' | 'F32';
}

export interface LowRankPlanEntry {
  kind: 'lowrank';
  /** HF weight name of the linear it replaces, '<module>.weight'. */
  name: string;
  /** [n, k] of the original weight. */
  shape: readonly [number, number];
  rank: number;
  /**
   * Storage of U (n, r) and V (r, k): null = dense F16, else the registry grid (already resolved: a group
   * size that does not divide r or k must have been replaced by per-channel by the caller).
   */
  uGrid: GridSpec | null;
  vGrid: GridSpec | null;
}

export type TensorPlanEntry = QuantizedPlanEntry | DensePlanEntry | LowRankPlanEntry;

/** Stored tensor name of a low-rank factor weight: '<module>.lowrank_u.weight' / '<module>.lowrank_v.weight'. */
export function lowRankFactorName(weightName: string, which: 'u' | 'v'): string {
  return `${modulePrefix(weightName)}.lowrank_${which}.weight`;
}

/** Shapes of the two factors: U (n, r), V (r, k). */
export function lowRankFactorShapes(e: Pick<LowRankPlanEntry, 'shape' | 'rank'>): { u: [number, number]; v: [number, number] } {
  const [n, k] = e.shape;
  return { u: [n, e.rank], v: [e.rank, k] };
}

/**
 * The factor `which` of a low-rank entry as a plan entry of its own (how it is stored: a quantized
 * '<module>.lowrank_u.weight' with the usual qweight/scales/qzeros, or a dense F16 tensor of that name).
 */
export function lowRankFactorEntry(e: LowRankPlanEntry, which: 'u' | 'v'): QuantizedPlanEntry | DensePlanEntry {
  const name = lowRankFactorName(e.name, which);
  const shape = lowRankFactorShapes(e)[which];
  const grid = which === 'u' ? e.uGrid : e.vGrid;
  if (grid === null) return { kind: 'dense', name, shape, dtype: 'F16' };
  return { kind: 'quantized', name, shape, qtype: qtypeId(grid), grid };
}

/** Exact stored bytes of a low-rank entry (both factors, scales/zeros included), the same number the written file holds. */
export function lowRankEntryBytes(e: LowRankPlanEntry): number {
  let bytes = 0;
  for (const which of ['u', 'v'] as const) {
    const f = lowRankFactorEntry(e, which);
    const [rows, cols] = f.shape as readonly [number, number];
    bytes += f.kind === 'dense' ? rows * cols * 2 : qtypeFor(f.grid).bytes(rows, cols, f.name);
  }
  return bytes;
}

/** Module prefix of a quantized weight: 'a.b.q_proj.weight' -> 'a.b.q_proj'. */
export function modulePrefix(weightName: string): string {
  if (!weightName.endsWith('.weight') || weightName.length <= '.weight'.length) {
    throw new EdgeqError(
      'E_PLAN',
      `quantized tensor '${weightName}' must be a linear weight named '<module>.weight'`,
      'only nn.Linear weights (HF names ending in .weight) can be stored quantized',
    );
  }
  return weightName.slice(0, -'.weight'.length);
}

/** Group size along k actually used: k for per-channel (-1). */
export function effectiveGroupSize(grid: GridSpec, k: number): number {
  return grid.groupSize === -1 ? k : grid.groupSize;
}

export function numGroupsOf(grid: GridSpec, k: number): number {
  return Math.ceil(k / effectiveGroupSize(grid, k));
}

/** Validate the plan: unique names, sane shapes and grids. Returns a name -> entry map. */
export function checkPlan(plan: readonly TensorPlanEntry[]): Map<string, TensorPlanEntry> {
  if (!Array.isArray(plan) || plan.length === 0) throw new EdgeqError('E_PLAN', 'the tensor plan is empty');
  const byName = new Map<string, TensorPlanEntry>();
  for (const e of plan) {
    if (byName.has(e.name)) throw new EdgeqError('E_PLAN', `tensor '${e.name}' appears twice in the plan`);
    byName.set(e.name, e);
    if (e.kind === 'quantized') {
      modulePrefix(e.name);
      const [n, k] = e.shape;
      if (e.shape.length !== 2 || !isPosInt(n) || !isPosInt(k)) {
        throw new EdgeqError('E_PLAN', `quantized tensor '${e.name}' needs a 2-D shape [n, k], got [${e.shape.join(', ')}]`);
      }
      checkGrid(e.name, e.grid);
    } else if (e.kind === 'dense') {
      if (e.dtype !== undefined && e.dtype !== 'F16' && e.dtype !== 'F32') {
        throw new EdgeqError('E_PLAN', `dense tensor '${e.name}': dtype must be F16 or F32, got ${String(e.dtype)}`);
      }
    } else if (e.kind === 'lowrank') {
      checkLowRankEntry(e);
    } else {
      throw new EdgeqError('E_PLAN', `tensor '${(e as { name?: string }).name}': kind must be 'quantized', 'dense' or 'lowrank'`);
    }
  }
  // the stored factor tensors must not collide with other entries
  for (const e of plan) {
    if (e.kind !== 'lowrank') continue;
    for (const which of ['u', 'v'] as const) {
      const f = lowRankFactorName(e.name, which);
      if (byName.has(f)) throw new EdgeqError('E_PLAN', `low-rank tensor '${e.name}' stores its factor as '${f}', which the plan also lists`);
    }
  }
  return byName;
}

/** Shape, rank and factor grids of a low-rank entry (each grid must split its factor's rows into whole groups). */
export function checkLowRankEntry(e: LowRankPlanEntry): void {
  modulePrefix(e.name);
  const [n, k] = e.shape;
  if (e.shape.length !== 2 || !isPosInt(n) || !isPosInt(k)) {
    throw new EdgeqError('E_PLAN', `low-rank tensor '${e.name}' needs a 2-D shape [n, k], got [${e.shape.join(', ')}]`);
  }
  if (!isPosInt(e.rank) || e.rank > Math.min(n, k)) {
    throw new EdgeqError('E_PLAN', `low-rank tensor '${e.name}': rank ${String(e.rank)} must be an integer in [1, min(n, k) = ${Math.min(n, k)}]`);
  }
  for (const [which, grid, width] of [['u', e.uGrid, e.rank], ['v', e.vGrid, k]] as const) {
    if (grid === null) continue;
    const fname = lowRankFactorName(e.name, which);
    checkGrid(fname, grid);
    checkGroupable(grid, width, fname);
    qtypeFor(grid);
  }
}

export function checkGrid(name: string, grid: GridSpec): void {
  if (!isPackableBits(grid.bits)) {
    throw new UnsupportedError('E_BITS', `tensor '${name}': ${String(grid.bits)}-bit grids are not supported (2, 3, 4, 8)`);
  }
  if (grid.groupSize !== -1 && !isPosInt(grid.groupSize)) {
    throw new EdgeqError('E_PLAN', `tensor '${name}': group size must be a positive integer or -1, got ${grid.groupSize}`);
  }
}

/**
 * Check a QuantizedWeight against its plan entry and its own invariants (array sizes, code and zero
 * ranges, g_idx range, sym zeros, fp16-representable finite scales). Throws EdgeqError naming the tensor.
 */
export function checkQuantizedWeight(entry: QuantizedPlanEntry, q: QuantizedWeight): void {
  const name = entry.name;
  const fail = (msg: string): never => {
    throw new EdgeqError('E_QWEIGHT', `quantized tensor '${name}': ${msg}`, 'the quantized weight does not match the tensor plan');
  };
  const [n, k] = entry.shape;
  if (q.n !== n || q.k !== k) fail(`shape [${q.n}, ${q.k}] differs from the plan's [${n}, ${k}]`);
  const g = entry.grid;
  if (q.grid.bits !== g.bits || q.grid.groupSize !== g.groupSize || q.grid.sym !== g.sym) {
    fail(`grid ${describeGrid(q.grid)} differs from the plan's ${describeGrid(g)}`);
  }
  const eff = effectiveGroupSize(g, k);
  const numGroups = Math.ceil(k / eff);
  if (q.numGroups !== numGroups) fail(`numGroups is ${q.numGroups}, expected ceil(${k} / ${eff}) = ${numGroups}`);
  if (q.groupSize !== eff && !(q.groupSize >= k && eff >= k)) fail(`groupSize is ${q.groupSize}, expected ${eff}`);
  if (q.codes.length !== n * k) fail(`codes has ${q.codes.length} elements, expected ${n * k}`);
  if (q.scales.length !== n * numGroups) fail(`scales has ${q.scales.length} elements, expected ${n * numGroups}`);
  if (q.zeros.length !== n * numGroups) fail(`zeros has ${q.zeros.length} elements, expected ${n * numGroups}`);
  const actOrder = entry.actOrder === true;
  if ((q.gIdx !== null) !== actOrder) fail(actOrder ? 'the plan says act-order but gIdx is null' : 'has a gIdx but the plan does not say actOrder');
  const limit = 1 << g.bits;
  for (let i = 0; i < q.codes.length; i++) if (q.codes[i]! >= limit) fail(`code ${q.codes[i]} at flat index ${i} does not fit in ${g.bits} bits`);
  const symZero = 1 << (g.bits - 1);
  for (let i = 0; i < q.zeros.length; i++) {
    const z = q.zeros[i]!;
    if (z >= limit) fail(`zero point ${z} at flat index ${i} does not fit in ${g.bits} bits`);
    if (g.sym && z !== symZero) fail(`symmetric grid needs every zero point = ${symZero}, found ${z} at flat index ${i}`);
  }
  if (q.gIdx) {
    if (q.gIdx.length !== k) fail(`gIdx has ${q.gIdx.length} entries, expected k = ${k}`);
    for (let c = 0; c < k; c++) {
      const v = q.gIdx[c]!;
      if (v < 0 || v >= numGroups) fail(`gIdx[${c}] = ${v} is outside [0, ${numGroups})`);
    }
  }
  checkF16Values(name, q.scales, 'scale');
}

/** Throw unless every value is finite and exactly representable in fp16 (so storage is lossless). */
export function checkF16Values(name: string, values: Float32Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) throw new NonFiniteWeightError(`${name} (${what})`, i, v);
    if (f16Round(v) !== v) {
      throw new EdgeqError(
        'E_SCALE_NOT_F16',
        `quantized tensor '${name}': ${what} ${v} at flat index ${i} is not representable in fp16`,
        'quantizers must round scales to fp16 before computing codes (the formats store fp16 scales)',
      );
    }
  }
}

/**
 * Dense values headed for F16 storage: finite and within fp16 range (|x| < 65520 rounds to ≤ 65504).
 * Values beyond it would silently become ±Inf.
 */
export function checkDenseForF16(name: string, values: Float32Array, offset: number): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) throw new NonFiniteWeightError(name, offset + i, v);
    if (v >= 65520 || v <= -65520) {
      throw new UnsupportedError(
        'E_F16_OVERFLOW',
        `tensor '${name}': value ${v} at flat index ${offset + i} overflows fp16`,
        'store this tensor as F32 (edgeq format), or rescale the model; GPTQ/AWQ checkpoints keep dense tensors in fp16',
      );
    }
  }
}

/** Round a float32 to the nearest fp16 value (RNE), as a number. */
export function f16Round(v: number): number {
  return f16BitsToF32(f32ToF16Bits(v));
}

export function describeGrid(g: GridSpec): string {
  return `{bits: ${g.bits}, groupSize: ${g.groupSize}, sym: ${g.sym}}`;
}

export function isBits(b: number): b is Bits {
  return isPackableBits(b);
}

function isPosInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}
