// Prefill (many-token) GEMM on the packed low-bit layouts (WebAssembly SIMD128 baseline): int8
// activations per block (q8Acts of lowbit-q8.ts), weights of one 32-row tile unpacked block by block
// into an int16 panel in a per-thread scratch slot (lowbit-unpack.ts), then a register-blocked
// micro-kernel of 8 rows × 4 tokens on i32x4.dot_i16x8_s. The arithmetic is the int8-dot kernel's and
// is mirrored by the scalar oracle src/kernels/lowbit-oracle.ts (prefillMatmulRef):
//
//   per row and block: y += s · xScale · (Σ xq·code − z·Σ xq), the integer part exact in int32
//
//   Xq      (nb, m, L) i16      q8Acts output (block-major)
//   XMeta   (nb, m, 2)          f32 activation scale, i32 Σ xq
//   Y       (m, tiles · 32) f32 (tiles = ceil(nPad / 32); the caller drops the padding rows)
//   scratch                     i32 slot counter (zeroed by the caller), then 64-byte aligned slots of
//                               SLOT_BYTES: panel (32 × MAX_BLOCK i16), 32 f32 scales, 32 i32 zeros
//
// Every thread is handed the same arguments; it claims a scratch slot with the slot counter and 32-row
// tiles `chunk` at a time with the tile counter. For each tile, pass of mt tokens and block, the
// panel is unpacked once and reused by those tokens; 4 tokens' activations of the block (4 × L i16) stay
// in L1 across the tile's 4 row pairs.

import { PANEL_ROWS, unpackLut, unpackQ8Group, zeroGroup } from './lowbit-unpack';

const MAX_BLOCK: i32 = 128;
const PANEL_BYTES: usize = <usize>PANEL_ROWS * <usize>MAX_BLOCK * 2;
const SLOT_BYTES: usize = PANEL_BYTES + 256; // = PREFILL_SLOT_BYTES of lowbit-plan.ts
const Q8_ROWS: i32 = 4;
const Q8_META: usize = 16;
const LUT_META: usize = 128;
const LUT_META_SYM: usize = 64; // no zero terms (fmt bit 4, see LowbitPlan.lutSym)
const XQ_CHUNK_BYTES: i32 = 1 << 20;

// y[4 rows] += s · xScale · (acc − z·Σxq)
@inline function epi(yp: usize, acc: v128, s: v128, z: v128, mp: usize): void {
  const d = i32x4.sub(acc, i32x4.mul(z, v128.load32_splat(mp + 4)));
  const t = f32x4.mul(f32x4.convert_i32x4_s(d), v128.load32_splat(mp));
  v128.store(yp, f32x4.add(v128.load(yp), f32x4.mul(s, t)));
}

// Row groups at pa and pa + gs (8 rows) × tokens at xp + i·xs (i < 4) over one block of L columns.
// sz: the groups' scales (zeros at + 128); mp: XMeta of token 0; yp: Y of token 0, group 0; ys: Y row bytes.
function mk8x4(pa: usize, gs: usize, xp: usize, xs: usize, L: i32, sz: usize, mp: usize, yp: usize, ys: usize): void {
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
  let pb = pa + gs;
  let x0 = xp;
  let x1 = xp + xs;
  let x2 = x1 + xs;
  let x3 = x2 + xs;
  const end = pa + <usize>L * 8;
  // one column pair per iteration: 8 accumulators + 2 weight vectors + 1 broadcast stay in registers
  // (unrolling lets the compilers hoist more loads than the 15 usable xmm registers hold: spills)
  while (pa < end) {
    const w0 = v128.load(pa);
    const w1 = v128.load(pb);
    let x = v128.load32_splat(x0);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(w0, x));
    b0 = i32x4.add(b0, i32x4.dot_i16x8_s(w1, x));
    x = v128.load32_splat(x1);
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(w0, x));
    b1 = i32x4.add(b1, i32x4.dot_i16x8_s(w1, x));
    x = v128.load32_splat(x2);
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(w0, x));
    b2 = i32x4.add(b2, i32x4.dot_i16x8_s(w1, x));
    x = v128.load32_splat(x3);
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(w0, x));
    b3 = i32x4.add(b3, i32x4.dot_i16x8_s(w1, x));
    pa += 16;
    pb += 16;
    x0 += 4;
    x1 += 4;
    x2 += 4;
    x3 += 4;
  }
  const sa = v128.load(sz), za = v128.load(sz, 128);
  const sb = v128.load(sz, 16), zb = v128.load(sz, 144);
  epi(yp, a0, sa, za, mp);
  epi(yp + 16, b0, sb, zb, mp);
  yp += ys;
  epi(yp, a1, sa, za, mp + 8);
  epi(yp + 16, b1, sb, zb, mp + 8);
  yp += ys;
  epi(yp, a2, sa, za, mp + 16);
  epi(yp + 16, b2, sb, zb, mp + 16);
  yp += ys;
  epi(yp, a3, sa, za, mp + 24);
  epi(yp + 16, b3, sb, zb, mp + 24);
}


// mk8x4 for one token.
function mk8x1(pa: usize, gs: usize, xp: usize, L: i32, sz: usize, mp: usize, yp: usize): void {
  let a0 = i32x4.splat(0), b0 = i32x4.splat(0), a1 = i32x4.splat(0), b1 = i32x4.splat(0);
  let pb = pa + gs;
  const end = pa + <usize>L * 8;
  while (pa < end) {
    let x = v128.load32_splat(xp);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(pa), x));
    b0 = i32x4.add(b0, i32x4.dot_i16x8_s(v128.load(pb), x));
    x = v128.load32_splat(xp, 4);
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(pa, 16), x));
    b1 = i32x4.add(b1, i32x4.dot_i16x8_s(v128.load(pb, 16), x));
    pa += 32;
    pb += 32;
    xp += 8;
  }
  epi(yp, i32x4.add(a0, a1), v128.load(sz), v128.load(sz, 128), mp);
  epi(yp + 16, i32x4.add(b0, b1), v128.load(sz, 16), v128.load(sz, 144), mp);
}

/**
 * Y (m, tiles · 32) = Xs · Ŵᵀ from packed weights w and q8Acts output (xq, xmeta). fmt: 0 = int8 layout
 * with u8 codes, 1 = int8 layout with nibbles, 2/3/4 = LUT layout with that many bits (+ 16: without zero
 * terms, every zero point 2^(bits−1)). nPad: the
 * layout's padded rows (multiple of its tile height); tiles = ceil(nPad / 32).
 */
export function prefillTiles(
  w: usize, xq: usize, xmeta: usize, y: usize, m: i32, nPad: i32, kPad: i32, blockLen: i32, fmt: i32,
  counter: usize, chunk: i32, scratch: usize,
): void {
  const slot = atomic.add<i32>(scratch, 1);
  const panel = scratch + 64 + <usize>slot * SLOT_BYTES;
  const sz = panel + PANEL_BYTES; // 32 f32 scales, then 32 i32 zeros
  const nb = (kPad + blockLen - 1) / blockLen;
  const tiles = (nPad + PANEL_ROWS - 1) / PANEL_ROWS;
  const claims = (tiles + chunk - 1) / chunk;
  const bits = fmt & 15;
  const lut = bits >= 2;
  const lutSym = (fmt & 16) != 0;
  const lutMeta = lutSym ? LUT_META_SYM : LUT_META;
  const nibble = fmt == 1;
  const q8Tiles = nPad / Q8_ROWS;
  const tileBytes: usize = lut
    ? <usize>bits * <usize>kPad * 4 + <usize>nb * lutMeta
    : (nibble ? <usize>kPad * 2 : <usize>kPad * 4) + <usize>nb * Q8_META;
  const ys = <usize>tiles * <usize>PANEL_ROWS * 4; // bytes per token of Y
  // tokens per pass over K: their activations (≤ 1 MiB of i16 over all of K) stay in L2/L3 while the
  // tile's panels are unpacked again for each pass (≥ 64 tokens per unpacking keeps that cheap); passes of
  // 128 KiB measured no faster than one pass at m = 256, k = 4096 (the hardware prefetchers keep up)
  const mtMax = max(64, XQ_CHUNK_BYTES / (kPad * 2));
  const passes = (m + mtMax - 1) / mtMax;
  const mt = (((m + passes - 1) / passes + 3) >> 2) << 2; // equal passes of whole 4-token groups
  for (;;) {
    const c = atomic.add<i32>(counter, 1);
    if (c >= claims) break;
    const tEnd = min(c * chunk + chunk, tiles);
    for (let tile = c * chunk; tile < tEnd; tile++) {
      const y0 = y + <usize>tile * <usize>PANEL_ROWS * 4;
      for (let i = 0; i < m; i++) {
        const yr = y0 + <usize>i * ys;
        for (let r: usize = 0; r < <usize>PANEL_ROWS * 4; r += 16) v128.store(yr + r, i32x4.splat(0));
      }
      for (let i0 = 0; i0 < m; i0 += mt) {
        const i1 = min(i0 + mt, m);
        for (let b = 0; b < nb; b++) {
          const c0 = b * blockLen;
          const L = min(blockLen, kPad - c0);
          if (lut) {
            unpackLut(w + <usize>tile * tileBytes + <usize>bits * <usize>c0 * 4 + <usize>b * lutMeta, L, bits, lutSym, panel, sz, sz + 128);
          } else {
            const blkOff = (nibble ? <usize>c0 * 2 : <usize>c0 * 4) + <usize>b * Q8_META;
            for (let g = 0; g < PANEL_ROWS / Q8_ROWS; g++) {
              const qt = tile * (PANEL_ROWS / Q8_ROWS) + g;
              if (qt < q8Tiles) unpackQ8Group(w + <usize>qt * tileBytes + blkOff, L, fmt, g, panel, sz, sz + 128);
              else zeroGroup(L, g, panel, sz, sz + 128);
            }
          }
          const gs = <usize>L * 8; // bytes per row group of the panel
          const xs = <usize>L * 2; // bytes per token of the block's activations
          const xb = xq + <usize>m * <usize>c0 * 2;
          const mb = xmeta + <usize>b * <usize>m * 8;
          let i = i0;
          for (; i + 4 <= i1; i += 4) {
            const xp = xb + <usize>i * xs;
            const mp = mb + <usize>i * 8;
            const yp = y0 + <usize>i * ys;
            for (let g = 0; g < PANEL_ROWS / 4; g += 2) {
              mk8x4(panel + <usize>g * gs, gs, xp, xs, L, sz + <usize>g * 16, mp, yp + <usize>g * 16, ys);
            }
          }
          for (; i < i1; i++) {
            const xp = xb + <usize>i * xs;
            const mp = mb + <usize>i * 8;
            const yp = y0 + <usize>i * ys;
            for (let g = 0; g < PANEL_ROWS / 4; g += 2) {
              mk8x1(panel + <usize>g * gs, gs, xp, L, sz + <usize>g * 16, mp, yp + <usize>g * 16);
            }
          }
        }
      }
    }
  }
}
