/**
 * Quantized low-rank factors: U (n, r) and V (r, k) each through a registry grid (e.g. int8 per channel,
 * int4 g128), quantized along their own input dimension (r for U, k for V) by plain min/max RTN. When a
 * group size does not divide that dimension (r is rarely a multiple of 128), `fallback` quantizes that
 * factor per channel instead (the grid actually used is in the QuantizedWeight); otherwise the registry's
 * typed E_GROUP_SIZE error is thrown. Use split 'sqrt' factors (whitened-svd.ts) for balanced ranges.
 */
import { dequantize, fallbackGrid, qtypeFor } from '../qtypes/registry.js';
import type { GridSpec, QuantizedWeight } from '../qtypes/types.js';
import type { LowRankFactors } from './whitened-svd.js';

export interface QuantizedFactors {
  n: number;
  k: number;
  r: number;
  /** (n, r) */
  u: QuantizedWeight;
  /** (r, k) */
  v: QuantizedWeight;
}

export interface FactorGrids {
  u: GridSpec;
  v: GridSpec;
}

export function quantizeFactors(
  f: Pick<LowRankFactors, 'n' | 'k' | 'r' | 'u' | 'v'>,
  grids: GridSpec | FactorGrids,
  opts: { fallback?: boolean; name?: string } = {},
): QuantizedFactors {
  const g: FactorGrids = 'bits' in grids ? { u: grids, v: grids } : grids;
  const pick = (grid: GridSpec, width: number): GridSpec => (opts.fallback ? fallbackGrid(grid, width) : grid);
  const base = opts.name ? `${opts.name}.` : '';
  const u = qtypeFor(pick(g.u, f.r)).quantizeRef(f.u, f.n, f.r, `${base}lowrank_u`);
  const v = qtypeFor(pick(g.v, f.k)).quantizeRef(f.v, f.r, f.k, `${base}lowrank_v`);
  return { n: f.n, k: f.k, r: f.r, u, v };
}

/** The dense fp32 factors of quantized ones (Û, V̂). */
export function dequantizeFactors(q: QuantizedFactors): Pick<LowRankFactors, 'n' | 'k' | 'r' | 'u' | 'v'> {
  return { n: q.n, k: q.k, r: q.r, u: dequantize(q.u), v: dequantize(q.v) };
}
