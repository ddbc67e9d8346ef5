// T-MAC-style lookup-table GEMV/GEMM for 2/3/4-bit group-quantized weights (WebAssembly SIMD128,
// baseline only). Layouts: see src/kernels/lowbit-pack.ts (weights) and below (activations); the
// arithmetic is mirrored by the scalar oracle src/kernels/lowbit-oracle.ts.
//
//   Xs    (m, kPad) f32        activations, gathered through the act-order permutation, zero-padded
//   Tab   (nb, m, L/4, 16) u8  per 4 activations the 16 signed sums ±x0±x1±x2±x3, quantized to Q in ±63,
//                              stored as Q + 64; block-major so one block's tables of all m tokens are
//                              contiguous (a token-major layout puts them 4·kPad bytes apart: L1 set conflicts)
//   TMeta (nb, m, 2) f32       per block and token: ½·table scale, ½·Σx
//   Y     (nPad/32, m, 32) f32 tile-major (the caller reorders to (m, n))
//
// Per output row r and block: Σ_c x_c·(code_c − z) = ½·scale·A + ½·(2^b − 1 − 2z)·Σx with
// A = Σ_planes 2^p Σ_j Q_j[idx] (exact int32). Lookups: one v128 of packed nibbles = 32 rows' indices
// into the same 16-entry table; i8x16.swizzle looks up 16 rows at a time; sums are kept in int16 per
// plane (≤ 32 lookups × 127 per block, no overflow), then widened to int32 shifted by the plane weight.

const TILE: i32 = 32;
// Table entries are quantized to ±TAB_MAX and stored biased by TAB_BIAS (u8 values 1..127), so that the lookups of
// two 4-column groups add in one i8x16.add without carry (≤ 254) before they are widened (lutBlock's comment).
// Mirrored by LUT_TABLE_MAX in src/kernels/lowbit-oracle.ts.
const TAB_MAX: f32 = 63;
const TAB_BIAS: i32 = 64;
const META: i32 = 128; // 32 × u16 scale + 32 × i16 zero term
const META_SYM: i32 = 64; // 32 × u16 scale (every zero term −1: fmt bit 4, see LowbitPlan.lutSym)

/** fp16 bits (4 × u16 at p, positive) -> f32x4, exact for every finite fp16 (incl. subnormals). */
@inline function f16x4(p: usize): v128 {
  return f32x4.mul(i32x4.shl(v128.load16x4_u(p), 13), f32x4.splat(5.192296858534828e33)); // 2^112
}

// The 16-entry int8 table of x0..x3 at p (entries 8..15 are the negated mirror of 0..7).
@inline function table(p: usize, inv: v128): v128 {
  const x0 = f32x4.splat(load<f32>(p));
  const x1 = f32x4.splat(load<f32>(p, 4));
  const x2 = f32x4.splat(load<f32>(p, 8));
  const x3 = f32x4.splat(load<f32>(p, 12));
  // idx lanes 0..3 / 4..7: bit0 -> x0 sign, bit1 -> x1, bit2 -> x2, bit3 = 0 -> −x3
  const v01 = f32x4.add(f32x4.mul(x0, f32x4(-1, 1, -1, 1)), f32x4.mul(x1, f32x4(-1, -1, 1, 1)));
  const s0 = f32x4.sub(f32x4.sub(v01, x2), x3);
  const s1 = f32x4.sub(f32x4.add(v01, x2), x3);
  const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(s0, inv)));
  const q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(s1, inv)));
  const h = i16x8.narrow_i32x4_s(q0, q1);
  const lo = i8x16.narrow_i16x8_s(h, h);
  const neg = i8x16.neg(lo);
  // stored biased by +TAB_BIAS (u8 view), see lutBlock
  return i8x16.add(i8x16.shuffle(lo, neg, 0, 1, 2, 3, 4, 5, 6, 7, 23, 22, 21, 20, 19, 18, 17, 16), i8x16.splat(<i8>TAB_BIAS));
}

/**
 * Tables for tokens [t0, t1): Xs rows (kPad f32 each) -> Tab, TMeta. blockLen: columns per block
 * (the last block may be shorter; all multiples of 4).
 */
export function lutTables(xs: usize, m: i32, kPad: i32, blockLen: i32, tab: usize, tmeta: usize, t0: i32, t1: i32): void {
  const nb = (kPad + blockLen - 1) / blockLen;
  for (let t = t0; t < t1; t++) {
    const xr = xs + <usize>t * <usize>kPad * 4;
    for (let b = 0; b < nb; b++) {
      const c0 = b * blockLen;
      const c1 = min(c0 + blockLen, kPad);
      const L = c1 - c0;
      const tr = tab + <usize>m * <usize>c0 * 4 + <usize>t * <usize>L * 4 - <usize>c0 * 4; // + c·4 below
      const mp = tmeta + (<usize>b * <usize>m + <usize>t) * 8;
      let maxAbs: f32 = 0;
      let sum: f32 = 0;
      for (let c = c0; c < c1; c += 4) {
        const p = xr + <usize>c * 4;
        const a0 = load<f32>(p), a1 = load<f32>(p, 4), a2 = load<f32>(p, 8), a3 = load<f32>(p, 12);
        const a = abs<f32>(a0) + abs<f32>(a1) + abs<f32>(a2) + abs<f32>(a3);
        if (a > maxAbs) maxAbs = a;
        sum += a0 + a1 + a2 + a3;
      }
      const inv = f32x4.splat(maxAbs > 0 ? TAB_MAX / maxAbs : <f32>0);
      store<f32>(mp, (maxAbs / TAB_MAX) * <f32>0.5);
      store<f32>(mp, sum * <f32>0.5, 4);
      for (let c = c0; c < c1; c += 4) v128.store(tr + <usize>c * 4, table(xr + <usize>c * 4, inv));
    }
  }
}

// One (tile, block, token): 32 rows × L columns. w: the block's plane data, tp: the block's tables,
// meta: the block's scales/zero terms, yp: 32 output floats (accumulated into).
//
// Tables are stored biased (Q + 64 with |Q| ≤ 63, as u8 1..127) so that two 4-column groups' lookups for the
// same rows add in one i8x16.add without carry (≤ 254), and the widening costs one shift per such pair: the
// u8 pair sums l are added as i16 lanes (lo byte = even row, hi byte = odd row: r = lo + 256·hi, wrapping)
// and their high bytes l >> 8 separately; at the end Σhi is exact (≤ 32 × 127) and so is
// Σlo = Σr − 256·Σhi (mod 2^16, also ≤ 4064). Then ΣQ = Σ(Q + 64) − 64·nj.
//
// Short blocks, where (2^bits − 1) · nj · 255 < 2^16 (4-bit with groups of ≤ 64 columns, ≤ 3-bit with ≤ 128):
// the planes' per-row sums Σ(Q + 128), weighted by 2^p, fit u16 lanes, so they are accumulated there
// (wrapping adds, exact since the total is below 2^16) and widened to int32 once per block instead of once per
// plane. Same result either way, bit for bit.
function lutBlock(w: usize, tp: usize, nj: i32, bits: i32, sym: bool, meta: usize, hL: f32, hX: f32, yp: usize): void {
  // (the u16 sums would stay exact up to (2^bits − 1)·nj·127, i.e. 4-bit 128-column blocks too, but those measured
  // slower on the short path: DRAM-resident Llama-1B layer A/B, int4 g128, 2 threads, 1.07× in tiles, 1.66× per call)
  if (((1 << bits) - 1) * nj * 255 < 65536) {
    lutBlockShort(w, tp, nj, bits, sym, meta, hL, hX, yp);
    return;
  }
  const m4 = i8x16.splat(0x0f);
  let A0 = i32x4.splat(0), A1 = i32x4.splat(0), A2 = i32x4.splat(0), A3 = i32x4.splat(0);
  let A4 = i32x4.splat(0), A5 = i32x4.splat(0), A6 = i32x4.splat(0), A7 = i32x4.splat(0);
  const planeBytes = <usize>nj * 16;
  const bias = i32x4.splat(TAB_BIAS * nj);
  for (let p = 0; p < bits; p++) {
    let r0 = i16x8.splat(0), h0 = i16x8.splat(0), r1 = i16x8.splat(0), h1 = i16x8.splat(0);
    let t = tp;
    let wp = w + <usize>p * planeBytes;
    const end = wp + planeBytes;
    // nj is a multiple of 8 (blocks are multiples of 32 columns): two 4-column groups per iteration
    while (wp < end) {
      const T = v128.load(t);
      const v = v128.load(wp);
      const U = v128.load(t, 16);
      const u = v128.load(wp, 16);
      const s0 = i8x16.add(i8x16.swizzle(T, v128.and(v, m4)), i8x16.swizzle(U, v128.and(u, m4))); // rows 0..15
      const s1 = i8x16.add(i8x16.swizzle(T, v128.and(i16x8.shr_u(v, 4), m4)), i8x16.swizzle(U, v128.and(i16x8.shr_u(u, 4), m4))); // rows 16..31
      r0 = i16x8.add(r0, s0);
      h0 = i16x8.add(h0, i16x8.shr_u(s0, 8));
      r1 = i16x8.add(r1, s1);
      h1 = i16x8.add(h1, i16x8.shr_u(s1, 8));
      t += 32;
      wp += 32;
    }
    // even rows: Σlo = r − 256·h; odd rows: h. Interleave back to row order 0..15 / 16..31.
    const s0 = lo16(r0, h0); // rows 0..7
    const s1 = hi16(r0, h0); // rows 8..15
    const s2 = lo16(r1, h1);
    const s3 = hi16(r1, h1);
    A0 = updLow(A0, s0, bias, p);
    A1 = updHigh(A1, s0, bias, p);
    A2 = updLow(A2, s1, bias, p);
    A3 = updHigh(A3, s1, bias, p);
    A4 = updLow(A4, s2, bias, p);
    A5 = updHigh(A5, s2, bias, p);
    A6 = updLow(A6, s3, bias, p);
    A7 = updHigh(A7, s3, bias, p);
  }
  epi8(yp, meta, sym, hL, hX, A0, A1, A2, A3, A4, A5, A6, A7);
}

// lutBlock for short blocks, where (2^bits − 1)·nj·255 < 2^16 (4-bit with groups of ≤ 64 columns, ≤ 3-bit with
// ≤ 128; lutBlock says why not up to ·127): the plane-weighted sums Σ_p 2^p Σ(Q + 64) fit u16 lanes, so the
// planes are combined by Horner's rule in the i16 accumulators themselves (highest plane first, accumulators doubled before each
// plane; wrapping adds, exact modulo 2^16 and the totals are below it), and de-interleaved and widened to
// int32 once per block. Same integers as lutBlock's per-plane widening, bit for bit.
// Its inner loop is lutBlock's, written out a second time on purpose: AssemblyScript has no multi-value return, and
// an @inline helper taking the per-plane reset/doubling as a shift left Binaryen emitting shifts by a constant 0 in
// both hot loops (session 7). Keep the two loops in step.
@inline function lutBlockShort(w: usize, tp: usize, nj: i32, bits: i32, sym: bool, meta: usize, hL: f32, hX: f32, yp: usize): void {
  const m4 = i8x16.splat(0x0f);
  const planeBytes = <usize>nj * 16;
  let r0 = i16x8.splat(0), h0 = i16x8.splat(0), r1 = i16x8.splat(0), h1 = i16x8.splat(0);
  for (let p = bits - 1; p >= 0; p--) {
    r0 = i16x8.shl(r0, 1);
    h0 = i16x8.shl(h0, 1);
    r1 = i16x8.shl(r1, 1);
    h1 = i16x8.shl(h1, 1);
    let t = tp;
    let wp = w + <usize>p * planeBytes;
    const end = wp + planeBytes;
    while (wp < end) {
      const T = v128.load(t);
      const v = v128.load(wp);
      const U = v128.load(t, 16);
      const u = v128.load(wp, 16);
      const s0 = i8x16.add(i8x16.swizzle(T, v128.and(v, m4)), i8x16.swizzle(U, v128.and(u, m4))); // rows 0..15
      const s1 = i8x16.add(i8x16.swizzle(T, v128.and(i16x8.shr_u(v, 4), m4)), i8x16.swizzle(U, v128.and(i16x8.shr_u(u, 4), m4))); // rows 16..31
      r0 = i16x8.add(r0, s0);
      h0 = i16x8.add(h0, i16x8.shr_u(s0, 8));
      r1 = i16x8.add(r1, s1);
      h1 = i16x8.add(h1, i16x8.shr_u(s1, 8));
      t += 32;
      wp += 32;
    }
  }
  const S0 = lo16(r0, h0); // rows 0..7: Σ_p 2^p Σ(Q + 64)
  const S1 = hi16(r0, h0);
  const S2 = lo16(r1, h1);
  const S3 = hi16(r1, h1);
  const total = i32x4.splat(TAB_BIAS * nj * ((1 << bits) - 1)); // Σ_p 2^p · TAB_BIAS·nj
  epi8(
    yp, meta, sym, hL, hX,
    i32x4.sub(i32x4.extend_low_i16x8_u(S0), total), i32x4.sub(i32x4.extend_high_i16x8_u(S0), total),
    i32x4.sub(i32x4.extend_low_i16x8_u(S1), total), i32x4.sub(i32x4.extend_high_i16x8_u(S1), total),
    i32x4.sub(i32x4.extend_low_i16x8_u(S2), total), i32x4.sub(i32x4.extend_high_i16x8_u(S2), total),
    i32x4.sub(i32x4.extend_low_i16x8_u(S3), total), i32x4.sub(i32x4.extend_high_i16x8_u(S3), total),
  );
}

// One token (decode) over a whole 32-row tile whose blocks are all short: the blocks' lutBlockShort bodies
// inlined in one loop (no call per block). wp: the tile's first block; y0: its 32 outputs (zeroed); limit: the
// end of the packed weight.
// Touch-ahead (3- and 4-bit): before each block, one byte of every 64-byte line AHEAD bytes further is loaded
// (baseline wasm has no prefetch instruction), so the misses on the weight stream start early instead of when
// the compute-heavy block loop reaches them. Measured on a Llama-3.2-1B layer's seven GEMVs streamed from DRAM
// (A/B in one process): int4 g32 0.82× time at 2 threads, 0.75× at 1; int3 g64 0.92×; int2 g64 1.02× (no
// gain: its lighter loop already keeps up), so 2-bit does not touch.
function lutTileShort1(
  wp: usize, tab: usize, tmeta: usize, nb: i32, blockLen: i32, kPad: i32, bits: i32, sym: bool, metaBytes: usize,
  y0: usize, limit: usize,
): void {
  let touched: u32 = 0;
  for (let b = 0; b < nb; b++) {
    const c0 = b * blockLen;
    const L = min(blockLen, kPad - c0);
    const meta = wp + <usize>bits * <usize>L * 4;
    const next = meta + metaBytes;
    if (bits >= 3) {
      const tEnd = min(next + AHEAD, limit);
      for (let a = wp + AHEAD; a < tEnd; a += 64) touched += load<u8>(a);
    }
    const mp = tmeta + <usize>b * 8;
    lutBlockShort(wp, tab + <usize>c0 * 4, L >> 2, bits, sym, meta, load<f32>(mp), load<f32>(mp, 4), y0);
    wp = next;
  }
  if (touched == 0xffffffff) store<u32>(y0, touched); // (keeps the touches; never true: ≤ 255 per line)
}
const AHEAD: usize = 2048;

@inline function epi8(
  yp: usize, meta: usize, sym: bool, hL: f32, hX: f32,
  A0: v128, A1: v128, A2: v128, A3: v128, A4: v128, A5: v128, A6: v128, A7: v128,
): void {
  const vL = f32x4.splat(hL);
  const vX = f32x4.splat(hX);
  epi(yp, A0, meta, sym, vL, vX);
  epi(yp + 16, A1, meta + 8, sym, vL, vX);
  epi(yp + 32, A2, meta + 16, sym, vL, vX);
  epi(yp + 48, A3, meta + 24, sym, vL, vX);
  epi(yp + 64, A4, meta + 32, sym, vL, vX);
  epi(yp + 80, A5, meta + 40, sym, vL, vX);
  epi(yp + 96, A6, meta + 48, sym, vL, vX);
  epi(yp + 112, A7, meta + 56, sym, vL, vX);
}

@inline function lo16(r: v128, h: v128): v128 {
  // even rows Σlo = r − 256·h interleaved with odd rows h: rows 0..7 of the 16
  return i16x8.shuffle(i16x8.sub(r, i16x8.shl(h, 8)), h, 0, 8, 1, 9, 2, 10, 3, 11);
}
@inline function hi16(r: v128, h: v128): v128 {
  return i16x8.shuffle(i16x8.sub(r, i16x8.shl(h, 8)), h, 4, 12, 5, 13, 6, 14, 7, 15);
}
@inline function updLow(A: v128, s: v128, bias: v128, p: i32): v128 {
  return i32x4.add(A, i32x4.shl(i32x4.sub(i32x4.extend_low_i16x8_u(s), bias), p));
}
@inline function updHigh(A: v128, s: v128, bias: v128, p: i32): v128 {
  return i32x4.add(A, i32x4.shl(i32x4.sub(i32x4.extend_high_i16x8_u(s), bias), p));
}

// lutBlock for two tokens (tables ta, tb; outputs ya, yb) sharing the nibble extraction of the weights.
function lutBlock2(
  w: usize, ta: usize, tb: usize, nj: i32, bits: i32, sym: bool, meta: usize,
  hLa: f32, hXa: f32, hLb: f32, hXb: f32, ya: usize, yb: usize,
): void {
  const m4 = i8x16.splat(0x0f);
  let A0 = i32x4.splat(0), A1 = i32x4.splat(0), A2 = i32x4.splat(0), A3 = i32x4.splat(0);
  let A4 = i32x4.splat(0), A5 = i32x4.splat(0), A6 = i32x4.splat(0), A7 = i32x4.splat(0);
  let B0 = i32x4.splat(0), B1 = i32x4.splat(0), B2 = i32x4.splat(0), B3 = i32x4.splat(0);
  let B4 = i32x4.splat(0), B5 = i32x4.splat(0), B6 = i32x4.splat(0), B7 = i32x4.splat(0);
  const planeBytes = <usize>nj * 16;
  const bias = i32x4.splat(TAB_BIAS * nj);
  for (let p = 0; p < bits; p++) {
    let ra0 = i16x8.splat(0), ha0 = i16x8.splat(0), ra1 = i16x8.splat(0), ha1 = i16x8.splat(0);
    let rb0 = i16x8.splat(0), hb0 = i16x8.splat(0), rb1 = i16x8.splat(0), hb1 = i16x8.splat(0);
    let wp = w + <usize>p * planeBytes;
    const end = wp + planeBytes;
    let pa = ta;
    let pb = tb;
    while (wp < end) {
      const v = v128.load(wp);
      const lo = v128.and(v, m4);
      const hi = v128.and(i16x8.shr_u(v, 4), m4);
      const TA = v128.load(pa);
      const a0 = i8x16.swizzle(TA, lo);
      const a1 = i8x16.swizzle(TA, hi);
      ra0 = i16x8.add(ra0, a0);
      ha0 = i16x8.add(ha0, i16x8.shr_u(a0, 8));
      ra1 = i16x8.add(ra1, a1);
      ha1 = i16x8.add(ha1, i16x8.shr_u(a1, 8));
      const TB = v128.load(pb);
      const b0 = i8x16.swizzle(TB, lo);
      const b1 = i8x16.swizzle(TB, hi);
      rb0 = i16x8.add(rb0, b0);
      hb0 = i16x8.add(hb0, i16x8.shr_u(b0, 8));
      rb1 = i16x8.add(rb1, b1);
      hb1 = i16x8.add(hb1, i16x8.shr_u(b1, 8));
      wp += 16;
      pa += 16;
      pb += 16;
    }
    let t = lo16(ra0, ha0);
    A0 = updLow(A0, t, bias, p);
    A1 = updHigh(A1, t, bias, p);
    t = hi16(ra0, ha0);
    A2 = updLow(A2, t, bias, p);
    A3 = updHigh(A3, t, bias, p);
    t = lo16(ra1, ha1);
    A4 = updLow(A4, t, bias, p);
    A5 = updHigh(A5, t, bias, p);
    t = hi16(ra1, ha1);
    A6 = updLow(A6, t, bias, p);
    A7 = updHigh(A7, t, bias, p);
    t = lo16(rb0, hb0);
    B0 = updLow(B0, t, bias, p);
    B1 = updHigh(B1, t, bias, p);
    t = hi16(rb0, hb0);
    B2 = updLow(B2, t, bias, p);
    B3 = updHigh(B3, t, bias, p);
    t = lo16(rb1, hb1);
    B4 = updLow(B4, t, bias, p);
    B5 = updHigh(B5, t, bias, p);
    t = hi16(rb1, hb1);
    B6 = updLow(B6, t, bias, p);
    B7 = updHigh(B7, t, bias, p);
  }
  epi8(ya, meta, sym, hLa, hXa, A0, A1, A2, A3, A4, A5, A6, A7);
  epi8(yb, meta, sym, hLb, hXb, B0, B1, B2, B3, B4, B5, B6, B7);
}

// y[4 rows] += scale · (hL·A + zt·hX); sym: no zero terms stored, zt = −1 and zt·hX = −hX exactly (same floats)
@inline function epi(yp: usize, A: v128, meta: usize, sym: bool, vL: v128, vX: v128): void {
  const s = f16x4(meta);
  const a = f32x4.mul(vL, f32x4.convert_i32x4_s(A));
  const t = sym ? f32x4.sub(a, vX) : f32x4.add(a, f32x4.mul(f32x4.convert_i32x4_s(v128.load16x4_s(meta + 64)), vX));
  v128.store(yp, f32x4.add(v128.load(yp), f32x4.mul(s, t)));
}

/**
 * Y (m, nPad) = Xs · Ŵᵀ from packed LUT weights w and the tables of lutTables, over row tiles of 32
 * (fmt: the weight bits, + 16 when the layout has no zero terms, META_SYM)
 * claimed `chunk` at a time from the i32 counter at `counter` (zeroed by the caller; every thread calls
 * this with the same arguments). For each tile and block the tokens loop innermost, so the block's
 * weights are read from memory once and reused from L1 for every token.
 */
export function lutGemmTiles(
  w: usize, tab: usize, tmeta: usize, y: usize, m: i32, nPad: i32, kPad: i32, fmt: i32, blockLen: i32,
  counter: usize, chunk: i32,
): void {
  const bits = fmt & 15;
  const sym = (fmt & 16) != 0;
  const metaBytes = <usize>(sym ? META_SYM : META);
  const nb = (kPad + blockLen - 1) / blockLen;
  const tiles = nPad / TILE;
  const claims = (tiles + chunk - 1) / chunk;
  const tileBytes = <usize>bits * <usize>kPad * 4 + <usize>nb * metaBytes;
  const allShort = ((1 << bits) - 1) * (blockLen >> 2) * 255 < 65536; // (a shorter last block is short too)
  for (;;) {
    const c = atomic.add<i32>(counter, 1);
    if (c >= claims) break;
    const tEnd = min(c * chunk + chunk, tiles);
    for (let tile = c * chunk; tile < tEnd; tile++) {
      const y0 = y + <usize>tile * <usize>m * TILE * 4;
      const yEnd = y0 + <usize>m * TILE * 4;
      for (let yz = y0; yz < yEnd; yz += 16) v128.store(yz, i32x4.splat(0)); // (memory.fill on shared memory is a runtime call)
      let wp = w + <usize>tile * tileBytes;
      if (m == 1 && allShort) {
        lutTileShort1(wp, tab, tmeta, nb, blockLen, kPad, bits, sym, metaBytes, y0, w + <usize>tiles * tileBytes);
        continue;
      }
      for (let b = 0; b < nb; b++) {
        const c0 = b * blockLen;
        const L = min(blockLen, kPad - c0);
        const nj = L >> 2;
        const meta = wp + <usize>bits * <usize>L * 4;
        const tb = tab + <usize>m * <usize>c0 * 4;
        const mb = tmeta + <usize>b * <usize>m * 8;
        let i = 0;
        for (; i + 2 <= m; i += 2) {
          const mp = mb + <usize>i * 8;
          const ta = tb + <usize>i * <usize>L * 4;
          const ya = y0 + <usize>i * TILE * 4;
          lutBlock2(wp, ta, ta + <usize>L * 4, nj, bits, sym, meta, load<f32>(mp), load<f32>(mp, 4), load<f32>(mp, 8), load<f32>(mp, 12), ya, ya + TILE * 4);
        }
        if (i < m) {
          const mp = mb + <usize>i * 8;
          lutBlock(wp, tb + <usize>i * <usize>L * 4, nj, bits, sym, meta, load<f32>(mp), load<f32>(mp, 4), y0 + <usize>i * TILE * 4);
        }
        wp = meta + metaBytes;
      }
    }
  }
}
