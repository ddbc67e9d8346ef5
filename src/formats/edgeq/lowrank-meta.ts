/**
 * `edgeq.lowrank`: which linears of an edgeq checkpoint are stored as low-rank factors W ≈ U·V
 * (U (n, r), V (r, k)), and how each factor is stored. JSON object, one entry per replaced weight:
 *
 *   {"<module>.weight": {"n": 64, "k": 256, "rank": 16, "u": "int8_pc_sym", "v": "F16"}}
 *
 * u / v are "F16" (a dense F16 tensor '<module>.lowrank_u.weight' of shape [n, r] / '<module>.lowrank_v.weight'
 * [r, k]) or a registry quant type id (the factor stored like any quantized weight under the prefix
 * '<module>.lowrank_u': qweight / scales / qzeros, never g_idx; its row width is r for U and k for V, and the
 * type's group size must divide it). '<module>.weight' itself is not stored. The reader refuses anything
 * else with a FormatError (rank outside [1, min(n, k)], unknown types, groups that do not divide, names that
 * are not linear weights).
 */
import { EdgeqError, FormatError } from '../../core/errors.js';
import { checkGroupable, getQType, qtypeId } from '../../qtypes/registry.js';
import type { GridSpec } from '../../qtypes/types.js';
import { LOWRANK_DENSE_TAG, META_LOWRANK, type EdgeqTensorQType } from './metadata.js';
import type { LowRankPlanEntry } from './plan.js';

export interface EdgeqLowRankType {
  n: number;
  k: number;
  rank: number;
  /** 'F16' or the registry quant type id of U (n, r). */
  u: string;
  /** 'F16' or the registry quant type id of V (r, k). */
  v: string;
}

/** Stored prefix of a factor: '<module>.lowrank_u' (the dense factor is '<prefix>.weight'). */
export function lowRankFactorPrefix(weightName: string, which: 'u' | 'v'): string {
  return `${weightName.slice(0, -'.weight'.length)}.lowrank_${which}`;
}

/** The metadata entry of a plan entry. */
export function lowRankTypeOf(e: LowRankPlanEntry): EdgeqLowRankType {
  const tag = (g: GridSpec | null): string => (g === null ? LOWRANK_DENSE_TAG : qtypeId(g));
  return { n: e.shape[0], k: e.shape[1], rank: e.rank, u: tag(e.uGrid), v: tag(e.vGrid) };
}

/** Shape [rows, cols] of factor `which`. */
export function factorShape(t: EdgeqLowRankType, which: 'u' | 'v'): [number, number] {
  return which === 'u' ? [t.n, t.rank] : [t.rank, t.k];
}

/** The quant type of a quantized factor (as a stored quantized weight), or null for a dense F16 factor. */
export function factorQType(t: EdgeqLowRankType, which: 'u' | 'v'): EdgeqTensorQType | null {
  const tag = which === 'u' ? t.u : t.v;
  if (tag === LOWRANK_DENSE_TAG) return null;
  const g = getQType(tag).grid;
  const [n, k] = factorShape(t, which);
  return { qtype: tag, bits: g.bits, groupSize: g.groupSize, sym: g.sym, n, k, actOrder: false };
}

/** The factor grid of a metadata entry (null = dense F16). */
export function factorGrid(t: EdgeqLowRankType, which: 'u' | 'v'): GridSpec | null {
  const q = factorQType(t, which);
  return q ? { bits: q.bits, groupSize: q.groupSize, sym: q.sym } : null;
}

/** Parse and validate `edgeq.lowrank` (absent: no low-rank linears). */
export function parseLowRank(text: string | undefined, file: string): Map<string, EdgeqLowRankType> {
  const out = new Map<string, EdgeqLowRankType>();
  if (text === undefined) return out;
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    throw new FormatError('E_EDGEQ_META', `${META_LOWRANK} is not valid JSON`, file);
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new FormatError('E_EDGEQ_META', `${META_LOWRANK} is not a JSON object`, file);
  for (const [name, v] of Object.entries(root as Record<string, unknown>)) {
    const bad = (why: string): never => {
      throw new FormatError('E_EDGEQ_LOWRANK', `${META_LOWRANK}['${name}']: ${why}`, file);
    };
    if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('not an object');
    const { n, k, rank, u, v: vt } = v as Record<string, unknown>;
    if (!name.endsWith('.weight') || name.length <= '.weight'.length) bad("low-rank tensor names are linear weights ending in '.weight'");
    if (!isPosInt(n) || !isPosInt(k)) bad(`n and k must be positive integers, got ${String(n)} and ${String(k)}`);
    if (!isPosInt(rank) || (rank as number) > Math.min(n as number, k as number)) {
      bad(`rank ${String(rank)} must be an integer in [1, min(n, k) = ${Math.min(n as number, k as number)}]`);
    }
    const t = { n, k, rank, u, v: vt } as EdgeqLowRankType;
    for (const which of ['u', 'v'] as const) {
      const tag = t[which];
      if (typeof tag !== 'string') bad(`${which} must be "F16" or a quant type id`);
      if (tag === LOWRANK_DENSE_TAG) continue;
      try {
        const q = factorQType(t, which)!;
        checkGroupable({ bits: q.bits, groupSize: q.groupSize, sym: q.sym }, q.k, `${lowRankFactorPrefix(name, which)}.weight`);
      } catch (err) {
        if (err instanceof EdgeqError) bad(`factor ${which} '${tag}': ${err.message}`);
        throw err;
      }
    }
    out.set(name, t);
  }
  return out;
}

function isPosInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}
