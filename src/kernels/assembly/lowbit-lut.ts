// T-MAC-style lookup-table GEMV/GEMM for 2/3/4-bit group-quantized weights (WebAssembly SIMD128,
// baseline only). Layouts: see src/kernels/lowbit-pack.ts (weights) and below (activations); the
// arithmetic is mirrored by the scalar oracle src/kernels/lowbit-oracle.ts.
//
//   Xs    (m, kPad) f32        activations, gathered through the act-order permutation, zero-padded
//   Tab   (m, kPad/4, 16) i8   per 4 activations the 16 signed sums ±x0±x1±x2±x3, quantized to int8
//   TMeta (m, nb, 2) f32       per block: ½·table scale, ½·Σx
//   Y     (m, nPad) f32
//
// Per output row r and block: Σ_c x_c·(code_c − z) = ½·scale·A + ½·(2^b − 1 − 2z)·Σx with
// A = Σ_planes 2^p Σ_j Q_j[idx] (exact int32). Lookups: one v128 of packed nibbles = 32 rows' indices
// into the same 16-entry table; i8x16.swizzle looks up 16 rows at a time; sums widen to int16 per plane
// (≤ 32 lookups × 127 per block, no overflow), then to int32 shifted by the plane weight.

const TILE: i32 = 32;
const META: i32 = 128; // 32 × u16 scale + 32 × i16 zero term

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
  return i8x16.shuffle(lo, neg, 0, 1, 2, 3, 4, 5, 6, 7, 23, 22, 21, 20, 19, 18, 17, 16);
}

/**
 * Tables for tokens [t0, t1): Xs rows (kPad f32 each) -> Tab, TMeta. blockLen: columns per block
 * (the last block may be shorter; all multiples of 4).
 */
export function lutTables(xs: usize, kPad: i32, blockLen: i32, tab: usize, tmeta: usize, t0: i32, t1: i32): void {
  const nb = (kPad + blockLen - 1) / blockLen;
  for (let t = t0; t < t1; t++) {
    const xr = xs + <usize>t * <usize>kPad * 4;
    const tr = tab + <usize>t * <usize>kPad * 4;
    const mr = tmeta + <usize>t * <usize>nb * 8;
    for (let b = 0; b < nb; b++) {
      const c0 = b * blockLen;
      const c1 = min(c0 + blockLen, kPad);
      let maxAbs: f32 = 0;
      let sum: f32 = 0;
      for (let c = c0; c < c1; c += 4) {
        const p = xr + <usize>c * 4;
        const a0 = load<f32>(p), a1 = load<f32>(p, 4), a2 = load<f32>(p, 8), a3 = load<f32>(p, 12);
        const a = abs<f32>(a0) + abs<f32>(a1) + abs<f32>(a2) + abs<f32>(a3);
        if (a > maxAbs) maxAbs = a;
        sum += a0 + a1 + a2 + a3;
      }
      const inv = f32x4.splat(maxAbs > 0 ? <f32>127 / maxAbs : <f32>0);
      store<f32>(mr + <usize>b * 8, (maxAbs / <f32>127) * <f32>0.5);
      store<f32>(mr + <usize>b * 8, sum * <f32>0.5, 4);
      for (let c = c0; c < c1; c += 4) v128.store(tr + <usize>c * 4, table(xr + <usize>c * 4, inv));
    }
  }
}

// One (tile, block, token): 32 rows × L columns. w: the block's plane data, tp: the block's tables,
// meta: the block's scales/zero terms, yp: 32 output floats (accumulated into).
function lutBlock(w: usize, tp: usize, nj: i32, bits: i32, meta: usize, hL: f32, hX: f32, yp: usize): void {
  const m4 = i8x16.splat(0x0f);
  let A0 = i32x4.splat(0), A1 = i32x4.splat(0), A2 = i32x4.splat(0), A3 = i32x4.splat(0);
  let A4 = i32x4.splat(0), A5 = i32x4.splat(0), A6 = i32x4.splat(0), A7 = i32x4.splat(0);
  const planeBytes = <usize>nj * 16;
  for (let p = 0; p < bits; p++) {
    let a0 = i16x8.splat(0), a1 = i16x8.splat(0), a2 = i16x8.splat(0), a3 = i16x8.splat(0);
    let t = tp;
    let wp = w + <usize>p * planeBytes;
    const end = wp + planeBytes;
    while (wp < end) {
      const T = v128.load(t);
      const v = v128.load(wp);
      const l0 = i8x16.swizzle(T, v128.and(v, m4));
      const l1 = i8x16.swizzle(T, v128.and(i16x8.shr_u(v, 4), m4));
      a0 = i16x8.add(a0, i16x8.extend_low_i8x16_s(l0));
      a1 = i16x8.add(a1, i16x8.extend_high_i8x16_s(l0));
      a2 = i16x8.add(a2, i16x8.extend_low_i8x16_s(l1));
      a3 = i16x8.add(a3, i16x8.extend_high_i8x16_s(l1));
      t += 16;
      wp += 16;
    }
    A0 = i32x4.add(A0, i32x4.shl(i32x4.extend_low_i16x8_s(a0), p));
    A1 = i32x4.add(A1, i32x4.shl(i32x4.extend_high_i16x8_s(a0), p));
    A2 = i32x4.add(A2, i32x4.shl(i32x4.extend_low_i16x8_s(a1), p));
    A3 = i32x4.add(A3, i32x4.shl(i32x4.extend_high_i16x8_s(a1), p));
    A4 = i32x4.add(A4, i32x4.shl(i32x4.extend_low_i16x8_s(a2), p));
    A5 = i32x4.add(A5, i32x4.shl(i32x4.extend_high_i16x8_s(a2), p));
    A6 = i32x4.add(A6, i32x4.shl(i32x4.extend_low_i16x8_s(a3), p));
    A7 = i32x4.add(A7, i32x4.shl(i32x4.extend_high_i16x8_s(a3), p));
  }
  const vL = f32x4.splat(hL);
  const vX = f32x4.splat(hX);
  epi(yp, A0, meta, vL, vX);
  epi(yp + 16, A1, meta + 8, vL, vX);
  epi(yp + 32, A2, meta + 16, vL, vX);
  epi(yp + 48, A3, meta + 24, vL, vX);
  epi(yp + 64, A4, meta + 32, vL, vX);
  epi(yp + 80, A5, meta + 40, vL, vX);
  epi(yp + 96, A6, meta + 48, vL, vX);
  epi(yp + 112, A7, meta + 56, vL, vX);
}

// y[4 rows] += scale · (hL·A + zt·hX)
@inline function epi(yp: usize, A: v128, meta: usize, vL: v128, vX: v128): void {
  const s = f16x4(meta);
  const zt = f32x4.convert_i32x4_s(v128.load16x4_s(meta + 64));
  const t = f32x4.add(f32x4.mul(vL, f32x4.convert_i32x4_s(A)), f32x4.mul(zt, vX));
  v128.store(yp, f32x4.add(v128.load(yp), f32x4.mul(s, t)));
}

/**
 * Y (m, nPad) = Xs · Ŵᵀ from packed LUT weights w and the tables of lutTables, over row tiles of 32
 * claimed `chunk` at a time from the i32 counter at `counter` (zeroed by the caller; every thread calls
 * this with the same arguments). For each tile and block the tokens loop innermost, so the block's
 * weights are read from memory once and reused from L1 for every token.
 */
export function lutGemmTiles(
  w: usize, tab: usize, tmeta: usize, y: usize, m: i32, nPad: i32, kPad: i32, bits: i32, blockLen: i32,
  counter: usize, chunk: i32,
): void {
  const nb = (kPad + blockLen - 1) / blockLen;
  const tiles = nPad / TILE;
  const claims = (tiles + chunk - 1) / chunk;
  const tileBytes = <usize>bits * <usize>kPad * 4 + <usize>nb * META;
  const tabStride = <usize>kPad * 4;
  const metaStride = <usize>nb * 8;
  const yStride = <usize>nPad * 4;
  for (;;) {
    const c = atomic.add<i32>(counter, 1);
    if (c >= claims) break;
    const tEnd = min(c * chunk + chunk, tiles);
    for (let tile = c * chunk; tile < tEnd; tile++) {
      const y0 = y + <usize>tile * TILE * 4;
      for (let i = 0; i < m; i++) memory.fill(y0 + <usize>i * yStride, 0, TILE * 4);
      let wp = w + <usize>tile * tileBytes;
      for (let b = 0; b < nb; b++) {
        const c0 = b * blockLen;
        const L = min(blockLen, kPad - c0);
        const nj = L >> 2;
        const meta = wp + <usize>bits * <usize>L * 4;
        for (let i = 0; i < m; i++) {
          const mp = tmeta + <usize>i * metaStride + <usize>b * 8;
          lutBlock(wp, tab + <usize>i * tabStride + <usize>c0 * 4, nj, bits, meta, load<f32>(mp), load<f32>(mp, 4), y0 + <usize>i * yStride);
        }
        wp = meta + META;
      }
    }
  }
}
