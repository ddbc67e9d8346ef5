/**
 * How a QuantizedWeight is laid out for the low-bit kernels (shared by the WASM kernels, their packers
 * and the scalar oracle, so all three cut K the same way).
 *
 *   - Act-order (gIdx ≠ null): the input columns are permuted (stable sort by group) so every group is a
 *     contiguous run; at run time x is gathered through the same permutation. y does not change: a dot
 *     product is invariant under permuting both operands.
 *   - K is padded to kPad = ceil(k / 32)·32 with zero activations (padded codes are 0, so they add 0).
 *   - K is cut into blocks of `blockLen` columns (the last one may be shorter, still a multiple of 32):
 *     the weight group size when it is ≤ 128, else 128 (per-channel and groups of 256+ columns). Each
 *     block has one weight group and one activation scale (LUT table scale / int8 activation scale);
 *     integer accumulation never crosses a block.
 */
import { EdgeqError, UnsupportedError } from '../core/errors.js';
import type { QuantizedWeight } from '../qtypes/types.js';

export type LowbitKernel = 'lut' | 'int8';

/** Max columns per block: keeps the LUT's int16 per-plane sums (≤ 32 lookups × 127) from overflowing. */
export const MAX_BLOCK = 128;
/** K granularity of the packed layouts. */
export const K_ALIGN = 32;
/** Output rows per LUT tile (one v128 of nibble indices = 16 rows × 2 nibbles). */
export const LUT_TILE_ROWS = 32;
/** Output rows per int8-dot tile. */
export const Q8_TILE_ROWS = 4;
/**
 * Bytes of per-(tile, block) metadata: LUT = 32 × (u16 fp16 scale + i16 zero term), or 32 × u16 scale alone
 * when every zero point is the symmetric 2^(bits−1) (zero term −1 for every row, see LowbitPlan.lutSym);
 * int8 = 4 × (u16 + u16).
 */
export const LUT_META_BYTES = LUT_TILE_ROWS * 4;
export const LUT_SYM_META_BYTES = LUT_TILE_ROWS * 2;
export const Q8_META_BYTES = Q8_TILE_ROWS * 4;
/**
 * Prefill GEMM (assembly/lowbit-prefill.ts, either layout): output rows per tile, and bytes of one
 * thread's scratch slot (int16 panel of 32 rows × MAX_BLOCK columns, 32 f32 scales, 32 i32 zeros).
 */
export const PREFILL_TILE_ROWS = 32;
export const PREFILL_SLOT_BYTES = PREFILL_TILE_ROWS * MAX_BLOCK * 2 + 256;

/**
 * Version of the packed layouts (lowbit-pack.ts) the kernels read; the same constant is exported by the wasm
 * build (src/kernels/assembly/layout.ts). Bump both together whenever a layout changes.
 */
export const PACKED_LAYOUT = 1;

export interface LowbitPlan {
  readonly kernel: LowbitKernel;
  readonly bits: number;
  readonly n: number;
  readonly k: number;
  readonly kPad: number;
  readonly blockLen: number;
  readonly numBlocks: number;
  /** Weight group of each block. */
  readonly blockGroup: Int32Array;
  /** Packed column p holds original column perm[p] (p < k); null = identity. */
  readonly perm: Int32Array | null;
  /** Output rows padded to the tile height. */
  readonly nPad: number;
  /**
   * LUT layout without zero terms: every zero point is 2^(bits−1) (a symmetric grid), so the zero term
   * 2^bits − 1 − 2z is −1 for every row and the kernels take it as a constant (the Q4_0 grid then reads
   * 4.5 bits per weight, not 5). Always false for the int8 layout.
   */
  readonly lutSym: boolean;
  /**
   * The format argument of the GEMV kernels (lutGemmTiles / q8GemmTiles). LUT layout: the bits, + 16 without
   * zero terms (lutSym). int8 layout: 1 = ≤ 4-bit codes as nibbles, 0 = 8-bit codes, 2 = 8-bit codes with one
   * group per row (per channel: the one-token path applies scale and zero once per tile).
   */
  readonly fmt: number;
  /** Bytes of one row tile of the packed weight. */
  readonly tileBytes: number;
  /** Bytes of the packed weight as the kernel reads it (all tiles). */
  readonly packedBytes: number;
}

/** The default kernel: the LUT for 2/3/4-bit weights, int8-dot for 8-bit. */
export function defaultKernel(bits: number): LowbitKernel {
  return bits <= 4 ? 'lut' : 'int8';
}

function checkWeight(q: QuantizedWeight): void {
  const { n, k, numGroups: G } = q;
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(k) || k < 1) {
    throw new EdgeqError('E_MATMUL_SHAPE', `quantized weight must have positive integer n, k; got ${n}×${k}`);
  }
  if (![2, 3, 4, 8].includes(q.grid.bits)) {
    throw new UnsupportedError('E_LOWBIT_BITS', `no low-bit kernel for ${q.grid.bits}-bit weights`, 'use 2, 3, 4 or 8 bits');
  }
  if (q.codes.length < n * k || q.scales.length < n * G || q.zeros.length < n * G) {
    throw new EdgeqError('E_MATMUL_SHAPE', `quantized weight ${q.qtype} (${n}×${k}, ${G} groups) has short codes/scales/zeros arrays`);
  }
  if (q.gIdx && q.gIdx.length < k) {
    throw new EdgeqError('E_MATMUL_SHAPE', `act-order gIdx has ${q.gIdx.length} entries, expected k = ${k}`);
  }
}

/** Stable permutation that makes every group's columns contiguous; checks each group has groupSize columns. */
function actOrderPerm(q: QuantizedWeight): Int32Array {
  const { k, groupSize, numGroups: G } = q;
  const gIdx = q.gIdx!;
  const count = new Int32Array(G + 1);
  for (let c = 0; c < k; c++) {
    const g = gIdx[c]!;
    if (!(g >= 0 && g < G)) throw new EdgeqError('E_MATMUL_SHAPE', `gIdx[${c}] = ${g} is outside 0..${G - 1}`);
    count[g + 1]!++;
  }
  for (let g = 0; g < G; g++) {
    const want = Math.min(groupSize, k - g * groupSize);
    if (count[g + 1] !== want) {
      throw new UnsupportedError(
        'E_LOWBIT_ACT_ORDER',
        `act-order group ${g} has ${count[g + 1]} columns, the kernels need exactly ${want}`,
        're-quantize with GPTQ act-order (each group keeps groupSize columns)',
      );
    }
    count[g + 1]! += count[g]!;
  }
  const perm = new Int32Array(k);
  for (let c = 0; c < k; c++) perm[count[gIdx[c]!]!++] = c;
  return perm;
}

export function makePlan(q: QuantizedWeight, kernel: LowbitKernel = defaultKernel(q.grid.bits)): LowbitPlan {
  checkWeight(q);
  const { n, k, groupSize: gs, numGroups: G } = q;
  const bits = q.grid.bits;
  if (kernel === 'lut' && bits > 4) {
    throw new UnsupportedError('E_LOWBIT_KERNEL', `the LUT kernel runs 2/3/4-bit weights, not ${bits}-bit`, "use kernel 'int8'");
  }
  if (kernel !== 'lut' && kernel !== 'int8') throw new EdgeqError('E_USAGE', `unknown low-bit kernel '${String(kernel)}'`, "use 'lut' or 'int8'");
  const kPad = Math.ceil(k / K_ALIGN) * K_ALIGN;
  let blockLen: number;
  if (G === 1) blockLen = MAX_BLOCK;
  else if (gs % K_ALIGN === 0 && gs <= MAX_BLOCK) blockLen = gs;
  else if (gs % MAX_BLOCK === 0) blockLen = MAX_BLOCK;
  else {
    throw new UnsupportedError(
      'E_LOWBIT_GROUP',
      `group size ${gs} is not supported by the low-bit kernels`,
      'use group size 32, 64, 128 (or a multiple of 128) or per-channel',
    );
  }
  if (G > 1 && G * gs !== k) throw new EdgeqError('E_MATMUL_SHAPE', `${G} groups of ${gs} columns do not cover k = ${k}`);
  const numBlocks = Math.ceil(kPad / blockLen);
  const blockGroup = new Int32Array(numBlocks);
  for (let b = 0; b < numBlocks; b++) blockGroup[b] = G === 1 ? 0 : Math.floor((b * blockLen) / gs);
  const perm = q.gIdx && G > 1 ? actOrderPerm(q) : null;
  let tileRows: number;
  let tileBytes: number;
  const lutSym = kernel === 'lut' && q.zeros.every((z) => z === 2 ** (bits - 1));
  if (kernel === 'lut') {
    tileRows = LUT_TILE_ROWS;
    // per block: bits planes × (L/4) × 16 bytes, then the metadata
    tileBytes = bits * kPad * 4 + numBlocks * (lutSym ? LUT_SYM_META_BYTES : LUT_META_BYTES);
  } else {
    tileRows = Q8_TILE_ROWS;
    tileBytes = (bits === 8 ? Q8_TILE_ROWS * kPad : (Q8_TILE_ROWS * kPad) / 2) + numBlocks * Q8_META_BYTES;
  }
  const nPad = Math.ceil(n / tileRows) * tileRows;
  const fmt = kernel === 'lut' ? bits + (lutSym ? 16 : 0) : bits !== 8 ? 1 : G === 1 ? 2 : 0;
  return { kernel, bits, n, k, kPad, blockLen, numBlocks, blockGroup, perm, nPad, lutSym, fmt, tileBytes, packedBytes: (nPad / tileRows) * tileBytes };
}

/** Length of block b. */
export function blockLength(plan: LowbitPlan, b: number): number {
  return Math.min(plan.blockLen, plan.kPad - b * plan.blockLen);
}

/**
 * X (m, k) → Xs (m, kPad): gathered through the act-order permutation and zero-padded. `dst` may be a
 * view into wasm memory.
 */
export function gatherActivations(plan: LowbitPlan, x: Float32Array, m: number, dst: Float32Array, dstOffset = 0): void {
  const { k, kPad, perm } = plan;
  for (let i = 0; i < m; i++) {
    const s = i * k;
    const d = dstOffset + i * kPad;
    if (perm) for (let p = 0; p < k; p++) dst[d + p] = x[s + perm[p]!]!;
    else dst.set(x.subarray(s, s + k), d);
    if (kPad > k) dst.fill(0, d + k, d + kPad);
  }
}
