/**
 * Packs a QuantizedWeight into the byte layouts the WASM low-bit kernels read (once, at prepare time).
 * Columns are taken through the plan's act-order permutation and zero-padded to kPad; rows are padded
 * to whole tiles with code 0 and scale 0 (their outputs are dropped).
 *
 * LUT layout (assembly/lowbit-lut.ts), per tile of 32 rows, per block of L columns:
 *   bits planes × (L/4) 4-column groups × 16 bytes: byte i = idx(row i) | idx(row i+16) << 4, where idx is
 *     the 4-bit pattern of bit `plane` of the 4 codes (column 4j+q → bit q)
 *   32 × u16   fp16 bits of the weight scale per row
 *   32 × i16   zero term 2^bits − 1 − 2·zero per row, absent when plan.lutSym (every zero 2^(bits−1): −1)
 * int8 layout (assembly/lowbit-q8.ts), per tile of 4 rows, per block of L columns:
 *   4 rows × L bytes of codes (8-bit), or 4 rows × L/2 bytes of nibbles for ≤ 4 bits: per 32 columns,
 *     8 little-endian u16 with u16 l = Σ_j code[8j + l] << 4j (so one shift + mask per j gives 8 codes
 *     as int16 lanes, in column order 8j..8j+7)
 *   4 × u16 fp16 scale bits, 4 × u16 zero point
 */
import { f32ToF16Bits } from '../core/dtype.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import { blockLength, LUT_TILE_ROWS, Q8_TILE_ROWS, type LowbitPlan } from './lowbit-plan.js';

/** Rows [r0, r0 + rows) of q's codes, permuted and padded: (rows, kPad), missing rows all 0. */
function gatherCodes(q: QuantizedWeight, plan: LowbitPlan, r0: number, rows: number, buf: Uint8Array): void {
  const { n, k, kPad, perm } = plan;
  buf.fill(0);
  for (let i = 0; i < rows && r0 + i < n; i++) {
    const src = (r0 + i) * k;
    const d = i * kPad;
    if (perm) for (let p = 0; p < k; p++) buf[d + p] = q.codes[src + perm[p]!]!;
    else buf.set(q.codes.subarray(src, src + k), d);
  }
}

function writeU16(dst: Uint8Array, off: number, v: number): void {
  dst[off] = v & 0xff;
  dst[off + 1] = (v >>> 8) & 0xff;
}

/** Writes plan.packedBytes bytes of the packed weight into dst (which may be a view of wasm memory). */
export function packLowbit(q: QuantizedWeight, plan: LowbitPlan, dst: Uint8Array): void {
  if (plan.kernel === 'lut') packLut(q, plan, dst);
  else packQ8(q, plan, dst);
}

/** SPREAD[c] has bit p of code c at bit 4p: OR-ing SPREAD[c_q] << q over 4 codes gives all planes' nibbles. */
const SPREAD = Uint16Array.from({ length: 16 }, (_, c) => (c & 1) | ((c & 2) << 3) | ((c & 4) << 6) | ((c & 8) << 9));

function packLut(q: QuantizedWeight, plan: LowbitPlan, dst: Uint8Array): void {
  const { n, kPad, bits, numBlocks, blockLen, blockGroup, nPad } = plan;
  const T = LUT_TILE_ROWS;
  const H = T / 2;
  const G = q.numGroups;
  const codes = new Uint8Array(T * kPad);
  let o = 0;
  for (let r0 = 0; r0 < nPad; r0 += T) {
    gatherCodes(q, plan, r0, T, codes);
    for (let b = 0; b < numBlocks; b++) {
      const c0 = b * blockLen;
      const L = blockLength(plan, b);
      const planeBytes = L * 4; // (L/4) groups × 16 bytes
      for (let j = 0; j < L / 4; j++) {
        const c = c0 + 4 * j;
        for (let i = 0; i < H; i++) {
          const a = i * kPad + c;
          const bb = (i + H) * kPad + c;
          const wa = SPREAD[codes[a]!]! | (SPREAD[codes[a + 1]!]! << 1) | (SPREAD[codes[a + 2]!]! << 2) | (SPREAD[codes[a + 3]!]! << 3);
          const wb = SPREAD[codes[bb]!]! | (SPREAD[codes[bb + 1]!]! << 1) | (SPREAD[codes[bb + 2]!]! << 2) | (SPREAD[codes[bb + 3]!]! << 3);
          // plane pl of row i's 4 codes: nibble pl of wa; row i + 16 in the high nibble
          let d = o + j * 16 + i;
          for (let pl = 0; pl < bits; pl++, d += planeBytes) dst[d] = ((wa >>> (4 * pl)) & 15) | (((wb >>> (4 * pl)) & 15) << 4);
        }
      }
      o += bits * planeBytes;
      for (let i = 0; i < T; i++) {
        const r = r0 + i;
        const gi = r * G + blockGroup[b]!;
        writeU16(dst, o + 2 * i, r < n ? f32ToF16Bits(q.scales[gi]!) : 0);
        if (!plan.lutSym) writeU16(dst, o + 2 * T + 2 * i, r < n ? (2 ** bits - 1 - 2 * q.zeros[gi]!) & 0xffff : 0);
      }
      o += (plan.lutSym ? 2 : 4) * T;
    }
  }
}

function packQ8(q: QuantizedWeight, plan: LowbitPlan, dst: Uint8Array): void {
  const { n, kPad, bits, numBlocks, blockLen, blockGroup, nPad } = plan;
  const T = Q8_TILE_ROWS;
  const G = q.numGroups;
  const codes = new Uint8Array(T * kPad);
  let o = 0;
  for (let r0 = 0; r0 < nPad; r0 += T) {
    gatherCodes(q, plan, r0, T, codes);
    for (let b = 0; b < numBlocks; b++) {
      const c0 = b * blockLen;
      const L = blockLength(plan, b);
      for (let i = 0; i < T; i++) {
        const row = i * kPad + c0;
        if (bits === 8) {
          dst.set(codes.subarray(row, row + L), o);
          o += L;
        } else {
          for (let c = row; c < row + L; c += 32) {
            for (let l = 0; l < 8; l++) {
              dst[o++] = codes[c + l]! | (codes[c + 8 + l]! << 4);
              dst[o++] = codes[c + 16 + l]! | (codes[c + 24 + l]! << 4);
            }
          }
        }
      }
      for (let i = 0; i < T; i++) {
        const r = r0 + i;
        const gi = r * G + blockGroup[b]!;
        writeU16(dst, o + 2 * i, r < n ? f32ToF16Bits(q.scales[gi]!) : 0);
        writeU16(dst, o + 2 * T + 2 * i, r < n ? q.zeros[gi]! : 0);
      }
      o += 4 * T;
    }
  }
}
