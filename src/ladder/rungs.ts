/**
 * The ladder's rungs — one table of logical types a linear may take, and their lowering to a target.
 *
 *   fp16        the weight kept dense (F16)
 *   int8        8-bit per channel, symmetric
 *   int4-g32    4-bit, groups of 32          int4-g128   4-bit, groups of 128
 *   int3-g128   3-bit, groups of 128         int2-g64    2-bit, groups of 64
 *   lr50-int8   low rank keeping 50 % of the parameters (SVD-LLM whitening), int8 per-channel factors
 *   lr25-int8   low rank keeping 25 %, int8 factors
 *
 * The 2/3/4-bit rungs take the request's symmetry (asymmetric by default). A rung becomes a concrete
 * LinearTreatment for a target (execution-targets.ts): a grid the target executes natively stays, one it
 * lacks is stored on the nearest native grid (lowerToTarget: int3 as 4-bit codes, g128 scales expanded to
 * the target's blocks), and a rung nothing native can hold is dropped; low-rank rungs only on targets
 * whose export holds factors. Rungs that lower to the same treatment collapse into one (the first keeps
 * its id, the others are listed in `from`), so the ladder searches exactly what the target can run.
 */
import { lowRankEntryBytes } from '../formats/edgeq/plan.js';
import { rankForRatio } from '../lowrank/whitened-svd.js';
import type { WhiteningKind } from '../lowrank/whitening.js';
import { fallbackGrid, qtypeFor } from '../qtypes/registry.js';
import type { Bits, GridSpec } from '../qtypes/types.js';
import { isNative, lowerToTarget, type ExecutionTarget } from '../targets/execution-targets.js';

/** What happens to one linear weight. */
export type LinearTreatment =
  | { kind: 'dense' }
  | { kind: 'quantized'; grid: GridSpec }
  | { kind: 'lowrank'; keep: number; whitening: WhiteningKind; factorGrid: GridSpec | null };

export interface LadderRung {
  id: string;
  treatment: LinearTreatment;
  /** Other logical rungs that lowered onto this one. */
  from: string[];
  /** This rung's own logical type is not native: it is stored as `treatment` (lowerToTarget). */
  lowered: boolean;
}

const q = (bits: Bits, groupSize: number, sym: boolean): LinearTreatment => ({ kind: 'quantized', grid: { bits, groupSize, sym } });

/** The logical ladder, most precise first. */
export function logicalRungs(sym: boolean): LadderRung[] {
  const rungs: [string, LinearTreatment][] = [
    ['fp16', { kind: 'dense' }],
    ['int8', q(8, -1, true)],
    ['int4-g32', q(4, 32, sym)],
    ['int4-g128', q(4, 128, sym)],
    ['int3-g128', q(3, 128, sym)],
    ['int2-g64', q(2, 64, sym)],
    ['lr50-int8', { kind: 'lowrank', keep: 0.5, whitening: 'svdllm', factorGrid: { bits: 8, groupSize: -1, sym: true } }],
    ['lr25-int8', { kind: 'lowrank', keep: 0.25, whitening: 'svdllm', factorGrid: { bits: 8, groupSize: -1, sym: true } }],
  ];
  return rungs.map(([id, treatment]) => ({ id, treatment, from: [], lowered: false }));
}

export function treatmentKey(t: LinearTreatment): string {
  if (t.kind === 'dense') return 'dense';
  if (t.kind === 'quantized') return `q:${qtypeFor(t.grid).id}`;
  return `lr:${t.keep}:${t.whitening}:${t.factorGrid ? qtypeFor(t.factorGrid).id : 'f16'}`;
}

/** The rungs a target can run: lowered, deduplicated, in ladder order. */
export function rungsForTarget(target: ExecutionTarget, sym: boolean, rungs: readonly LadderRung[] = logicalRungs(sym)): LadderRung[] {
  const out: LadderRung[] = [];
  const byKey = new Map<string, LadderRung>();
  for (const r of rungs) {
    let t: LinearTreatment | null = r.treatment;
    if (t.kind === 'quantized') {
      const g = lowerToTarget(target, t.grid);
      t = !g ? null : g === t.grid ? t : { kind: 'quantized', grid: g };
    } else if (t.kind === 'lowrank' && !target.lowRank) t = null;
    if (!t) continue;
    const key = treatmentKey(t);
    const seen = byKey.get(key);
    if (seen) {
      seen.from.push(r.id);
      continue;
    }
    const rung: LadderRung = { id: r.id, treatment: t, from: [], lowered: t !== r.treatment };
    byKey.set(key, rung);
    out.push(rung);
  }
  return out;
}

/** A treatment resolved for one weight's shape: low-rank gets its rank and the factor grids actually stored. */
export type ResolvedTreatment =
  | { kind: 'dense' }
  | { kind: 'quantized'; grid: GridSpec }
  | { kind: 'lowrank'; rank: number; whitening: WhiteningKind; uGrid: GridSpec | null; vGrid: GridSpec | null };

/**
 * Resolves `t` for a weight (n, k): a group size that does not divide k (or, for factors, r) falls back to
 * per channel, as `--fallback` does. Returns null for a quantized grid that cannot take k and `fallback` is off.
 */
export function resolveTreatment(t: LinearTreatment, n: number, k: number): ResolvedTreatment {
  if (t.kind === 'dense') return t;
  if (t.kind === 'quantized') return { kind: 'quantized', grid: fallbackGrid(t.grid, k) };
  const rank = rankForRatio(n, k, t.keep);
  return {
    kind: 'lowrank',
    rank,
    whitening: t.whitening,
    uGrid: t.factorGrid ? fallbackGrid(t.factorGrid, rank) : null,
    vGrid: t.factorGrid ? fallbackGrid(t.factorGrid, k) : null,
  };
}

export function describeTreatment(t: ResolvedTreatment): string {
  if (t.kind === 'dense') return 'F16';
  if (t.kind === 'quantized') return qtypeFor(t.grid).id;
  return `lowrank r${t.rank} ${t.whitening} U:${t.uGrid ? qtypeFor(t.uGrid).id : 'F16'} V:${t.vGrid ? qtypeFor(t.vGrid).id : 'F16'}`;
}

/** Exact stored bytes of weight `name` (n, k) under a treatment, as the edgeq checkpoint writes it. */
export function treatmentBytes(t: ResolvedTreatment, n: number, k: number, name = 'w.weight'): number {
  if (t.kind === 'dense') return n * k * 2;
  if (t.kind === 'quantized') return qtypeFor(t.grid).bytes(n, k, name);
  return lowRankEntryBytes({ kind: 'lowrank', name, shape: [n, k], rank: t.rank, uGrid: t.uGrid, vGrid: t.vGrid });
}

/** The target runs this treatment as resolved for a shape (a per-channel fallback may not be native). */
export function targetAccepts(target: ExecutionTarget, t: ResolvedTreatment): boolean {
  if (t.kind === 'dense') return true;
  if (t.kind === 'quantized') return isNative(target, t.grid);
  return target.lowRank;
}
