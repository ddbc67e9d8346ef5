/**
 * The quant type registry: the ONLY place integer-grid ids, group sizes and byte sizes live.
 *
 * Integer grids: bits ∈ {2, 3, 4, 8} × group size ∈ {32, 64, 128, per-channel} × {sym, asym}.
 * Ids: `int<bits>_g<groupSize>_<sym|asym>` or `int<bits>_pc_<sym|asym>` (per-channel), e.g.
 * `int4_g128_asym`, `int3_g128_sym`, `int8_pc_sym`. Each has a stable numeric id (`numId`) that is never
 * reused: retire a type by leaving a tombstone row in TABLE, never by renumbering.
 *
 * Storage in edgeq's format, per tensor W (n, k) with G = k / groupSize groups per row:
 *   codes   n · ceil(k·bits/8) bytes   packed at `bits` bits per weight, LSB-first, each row padded to a
 *                                      whole byte (the layout of src/formats/bitpack.ts)
 *   scales  n · G · 2 bytes            fp16
 *   zeros   n · G · 1 byte             uint8, asym only (sym zero is the constant 2^(bits−1), not stored)
 * bytes() does not count an act-order g_idx (int32 [k]), which the checkpoint adds only when present.
 * bitsPerWeight(k) = 8 · bytes(1, k) / k, i.e. bits + (16 [+ 8 asym]) / groupSize plus row padding;
 * e.g. int4_g128_asym = 4 + 24/128 = 4.1875.
 * The grid math (rounding, fp16 scales, zero points) is in int-grid.ts.
 */
import { UnsupportedError } from '../core/errors.js';
import {
  allocQuantized,
  checkGroupable,
  dequantizeInt,
  groupSizeFor,
  maxQ,
  minMaxParams,
  quantCode,
  quantizeMinMaxInto,
  type GroupParams,
} from './int-grid.js';
import { packedRowBytes } from '../formats/bitpack.js';
import type { Bits, GridSpec, QuantizedWeight } from './types.js';

/** Test thresholds that travel with the type. */
export interface QTypeTolerance {
  /** Max |w − ŵ| in units of the group's scale after plain min/max quantization (quantizeRef), any data. */
  maxAbsErr: number;
  /** Bound on rms(w − ŵ) / rms(w) for quantizeRef on N(0, 1) weights with k = 1024 (regression threshold). */
  rmse: number;
}

export interface IntQType {
  readonly id: string;
  /** Stable numeric id (on-disk use); never reused. */
  readonly numId: number;
  readonly grid: Readonly<GridSpec>;
  /** Average stored bits per weight for rows of k weights (codes + scales + asym zeros + row padding). */
  bitsPerWeight(k: number): number;
  /** Exact stored bytes of an (n, k) tensor in edgeq's format (see the module comment). */
  bytes(n: number, k: number, name?: string): number;
  /** Plain min/max quantization of one group x (its whole length is one group): fills codes, returns params. */
  quantizeGroupRef(x: ArrayLike<number>, codes: Uint8Array): GroupParams;
  /** Plain min/max RTN of W (n, k). */
  quantizeRef(w: Float32Array, n: number, k: number, name?: string): QuantizedWeight;
  /** Ŵ (n, k). */
  dequantize(q: QuantizedWeight): Float32Array;
  readonly tolerance: Readonly<QTypeTolerance>;
}

type Row = readonly [numId: number, bits: Bits, groupSize: number, sym: boolean, rmse: number];

// rmse column: measured rms(w−ŵ)/rms(w) on N(0,1), k = 1024, rounded up by ~25%.
const TABLE: readonly Row[] = [
  [1, 4, 128, false, 0.13],
  [2, 4, 128, true, 0.14],
  [3, 4, 64, false, 0.12],
  [4, 4, 64, true, 0.135],
  [5, 4, 32, false, 0.105],
  [6, 4, 32, true, 0.125],
  [7, 4, -1, false, 0.155],
  [8, 4, -1, true, 0.165],
  [9, 3, 128, false, 0.29],
  [10, 3, 128, true, 0.31],
  [11, 3, 64, false, 0.25],
  [12, 3, 64, true, 0.29],
  [13, 3, 32, false, 0.22],
  [14, 3, 32, true, 0.26],
  [15, 3, -1, false, 0.35],
  [16, 3, -1, true, 0.37],
  [17, 2, 128, false, 0.62],
  [18, 2, 128, true, 0.67],
  [19, 2, 64, false, 0.57],
  [20, 2, 64, true, 0.63],
  [21, 2, 32, false, 0.51],
  [22, 2, 32, true, 0.58],
  [23, 2, -1, false, 0.74],
  [24, 2, -1, true, 0.79],
  [25, 8, 128, false, 0.0075],
  [26, 8, 128, true, 0.008],
  [27, 8, 64, false, 0.0068],
  [28, 8, 64, true, 0.0075],
  [29, 8, 32, false, 0.006],
  [30, 8, 32, true, 0.007],
  [31, 8, -1, false, 0.0088],
  [32, 8, -1, true, 0.0097],
];

/** Registry id of a grid, e.g. { bits: 4, groupSize: 128, sym: false } -> 'int4_g128_asym'. */
export function qtypeId(grid: GridSpec): string {
  return `int${grid.bits}_${grid.groupSize === -1 ? 'pc' : `g${grid.groupSize}`}_${grid.sym ? 'sym' : 'asym'}`;
}

function makeEntry([numId, bits, groupSize, sym, rmse]: Row): IntQType {
  const grid: GridSpec = Object.freeze({ bits, groupSize, sym });
  const id = qtypeId(grid);
  const bytes = (n: number, k: number, name?: string): number => {
    checkGroupable(grid, k, name);
    const G = k / groupSizeFor(grid, k);
    return n * packedRowBytes(k, bits) /* codes */ + n * G * 2 /* fp16 scales */ + (sym ? 0 : n * G) /* u8 zeros */;
  };
  return Object.freeze({
    id,
    numId,
    grid,
    bytes,
    bitsPerWeight: (k: number) => (8 * bytes(1, k)) / k,
    quantizeGroupRef(x: ArrayLike<number>, codes: Uint8Array): GroupParams {
      const p = minMaxParams(x, 0, x.length, grid);
      const mq = maxQ(bits);
      for (let j = 0; j < x.length; j++) codes[j] = quantCode(x[j]!, p.scale, p.zero, mq);
      return p;
    },
    quantizeRef(w: Float32Array, n: number, k: number, name?: string): QuantizedWeight {
      checkGroupable(grid, k, name);
      const q = allocQuantized(id, grid, n, k);
      quantizeMinMaxInto(w, q, name);
      return q;
    },
    dequantize(q: QuantizedWeight): Float32Array {
      if (q.grid.bits !== bits || q.grid.sym !== sym || q.groupSize !== groupSizeFor(grid, q.k)) {
        throw new UnsupportedError('E_QTYPE_MISMATCH', `cannot dequantize a ${q.qtype} weight as ${id}`);
      }
      return dequantizeInt(q);
    },
    tolerance: Object.freeze({ maxAbsErr: 0.5, rmse }),
  });
}

const BY_ID: ReadonlyMap<string, IntQType> = new Map(TABLE.map((row) => {
  const e = makeEntry(row);
  return [e.id, e] as const;
}));

/** Every registered integer quant type, in table order. */
export function listQTypes(): readonly IntQType[] {
  return [...BY_ID.values()];
}

/** The quant type with this id; typed UnsupportedError listing the valid ids otherwise. */
export function getQType(id: string): IntQType {
  const e = BY_ID.get(id);
  if (!e) {
    throw new UnsupportedError(
      'E_QTYPE',
      `unknown quant type '${id}'`,
      `use one of int{2,3,4,8}_{g32,g64,g128,pc}_{sym,asym}, e.g. int4_g128_asym`,
    );
  }
  return e;
}

/** The quant type of a grid (any GridSpec in the registry). */
export function qtypeFor(grid: GridSpec): IntQType {
  return getQType(qtypeId(grid));
}

/** Dequantizes any registered QuantizedWeight (looked up by its grid). */
export function dequantize(q: QuantizedWeight): Float32Array {
  return qtypeFor(q.grid).dequantize(q);
}

export { checkGroupable, fallbackGrid } from './int-grid.js';
