// int8-dot GEMV/GEMM for group-quantized weights (WebAssembly SIMD128 baseline, i32x4.dot_i16x8_s):
// activations quantized to int8 per block (held as i16), weights as u8 codes (8-bit) or nibbles
// (2/3/4-bit, unpacked in registers). Weight layout: src/kernels/lowbit-pack.ts; the arithmetic is
// mirrored by the scalar oracle src/kernels/lowbit-oracle.ts.
//
//   Xs    (m, kPad) f32      activations (gathered, padded)
//   Xq    (nb, m, L) i16     round(x · 127/max|x|) per block; block-major (one block's activations of all
//                            tokens contiguous, see lowbit-lut.ts)
//   XMeta (nb, m, 2)         per block and token: f32 activation scale, i32 Σ xq
//   Y     (m, nPad) f32
//
// Per row and block: y += s · xScale · (Σ xq·code − z·Σ xq), integer part exact in int32.

const TILE: i32 = 4;
const META: i32 = 16; // 4 × u16 fp16 scale + 4 × u16 zero

@inline function f16x4(p: usize): v128 {
  return f32x4.mul(i32x4.shl(v128.load16x4_u(p), 13), f32x4.splat(5.192296858534828e33)); // 2^112
}

/** Xs rows [t0, t1) -> Xq, XMeta. */
export function q8Acts(xs: usize, m: i32, kPad: i32, blockLen: i32, xq: usize, xmeta: usize, t0: i32, t1: i32): void {
  const nb = (kPad + blockLen - 1) / blockLen;
  for (let t = t0; t < t1; t++) {
    const xr = xs + <usize>t * <usize>kPad * 4;
    for (let b = 0; b < nb; b++) {
      const c0 = b * blockLen;
      const c1 = min(c0 + blockLen, kPad);
      const L = c1 - c0;
      const qr = xq + <usize>m * <usize>c0 * 2 + <usize>t * <usize>L * 2 - <usize>c0 * 2; // + c·2 below
      const mp = xmeta + (<usize>b * <usize>m + <usize>t) * 8;
      let mx = f32x4.splat(0);
      for (let c = c0; c < c1; c += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(xr + <usize>c * 4)));
      const maxAbs = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
      const inv = f32x4.splat(maxAbs > 0 ? <f32>127 / maxAbs : <f32>0);
      let s = i32x4.splat(0);
      for (let c = c0; c < c1; c += 8) {
        const p = xr + <usize>c * 4;
        const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), inv)));
        const q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), inv)));
        s = i32x4.add(s, i32x4.add(q0, q1));
        v128.store(qr + <usize>c * 2, i16x8.narrow_i32x4_s(q0, q1));
      }
      store<f32>(mp, maxAbs / <f32>127);
      store<i32>(mp, i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3), 4);
    }
  }
}

// Horizontal sums of four i32x4 -> one i32x4 [Σa, Σb, Σc, Σd].
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

// y[4 rows] += s · xScale · (R − z·Σxq)
@inline function epi(yp: usize, R: v128, meta: usize, xScale: f32, sumq: i32): void {
  const z = v128.load16x4_u(meta + 8);
  const d = i32x4.sub(R, i32x4.mul(z, i32x4.splat(sumq)));
  const t = f32x4.mul(f32x4.convert_i32x4_s(d), f32x4.splat(xScale));
  v128.store(yp, f32x4.add(v128.load(yp), f32x4.mul(f16x4(meta), t)));
}

// One (tile, block, token) with 8-bit codes, 4 rows × L bytes at w: the rows' exact Σ xq·code as [r0, r1, r2, r3].
@inline function q8Rows8(w: usize, L: i32, xp: usize): v128 {
  const rs = <usize>L;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  const end = w + rs;
  while (w < end) {
    const x0 = v128.load(xp);
    const x1 = v128.load(xp, 16);
    a0 = i32x4.add(a0, i32x4.add(i32x4.dot_i16x8_s(x0, v128.load8x8_u(w)), i32x4.dot_i16x8_s(x1, v128.load8x8_u(w, 8))));
    a1 = i32x4.add(a1, i32x4.add(i32x4.dot_i16x8_s(x0, v128.load8x8_u(w + rs)), i32x4.dot_i16x8_s(x1, v128.load8x8_u(w + rs, 8))));
    a2 = i32x4.add(a2, i32x4.add(i32x4.dot_i16x8_s(x0, v128.load8x8_u(w + 2 * rs)), i32x4.dot_i16x8_s(x1, v128.load8x8_u(w + 2 * rs, 8))));
    a3 = i32x4.add(a3, i32x4.add(i32x4.dot_i16x8_s(x0, v128.load8x8_u(w + 3 * rs)), i32x4.dot_i16x8_s(x1, v128.load8x8_u(w + 3 * rs, 8))));
    w += 16;
    xp += 32;
  }
  return hsum4(a0, a1, a2, a3);
}

function q8Block8(w: usize, L: i32, xp: usize, meta: usize, xScale: f32, sumq: i32, yp: usize): void {
  epi(yp, q8Rows8(w, L, xp), meta, xScale, sumq);
}

// acc += Σ over 32 columns of xq · code; v holds 8 u16 lanes of 4 nibbles each (nibble j = column 8j + lane).
// q8Block8 for two tokens (activations xa, xb; outputs ya, yb) sharing the weight loads.
function q8Block8x2(
  w: usize, L: i32, xa: usize, xb: usize, meta: usize,
  sa: f32, qa: i32, sb: f32, qb: i32, ya: usize, yb: usize,
): void {
  const rs = <usize>L;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
  const end = w + rs;
  while (w < end) {
    const x0 = v128.load(xa);
    const x1 = v128.load(xb);
    let v = v128.load8x8_u(w);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(x0, v));
    b0 = i32x4.add(b0, i32x4.dot_i16x8_s(x1, v));
    v = v128.load8x8_u(w + rs);
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(x0, v));
    b1 = i32x4.add(b1, i32x4.dot_i16x8_s(x1, v));
    v = v128.load8x8_u(w + 2 * rs);
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(x0, v));
    b2 = i32x4.add(b2, i32x4.dot_i16x8_s(x1, v));
    v = v128.load8x8_u(w + 3 * rs);
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(x0, v));
    b3 = i32x4.add(b3, i32x4.dot_i16x8_s(x1, v));
    w += 8;
    xa += 16;
    xb += 16;
  }
  epi(ya, hsum4(a0, a1, a2, a3), meta, sa, qa);
  epi(yb, hsum4(b0, b1, b2, b3), meta, sb, qb);
}

@inline function dot32(acc: v128, v: v128, x0: v128, x1: v128, x2: v128, x3: v128, m4: v128): v128 {
  const w0 = v128.and(v, m4);
  const w1 = v128.and(i16x8.shr_u(v, 4), m4);
  const w2 = v128.and(i16x8.shr_u(v, 8), m4);
  const w3 = i16x8.shr_u(v, 12);
  const s0 = i32x4.add(i32x4.dot_i16x8_s(x0, w0), i32x4.dot_i16x8_s(x1, w1));
  const s1 = i32x4.add(i32x4.dot_i16x8_s(x2, w2), i32x4.dot_i16x8_s(x3, w3));
  return i32x4.add(acc, i32x4.add(s0, s1));
}

// One (tile, block, token) with nibble codes: 4 rows × L/2 bytes at w.
function q8Block4(w: usize, L: i32, xp: usize, meta: usize, xScale: f32, sumq: i32, yp: usize): void {
  const rs = <usize>(L >> 1);
  const m4 = i16x8.splat(0x000f);
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  const end = w + rs;
  while (w < end) {
    const x0 = v128.load(xp);
    const x1 = v128.load(xp, 16);
    const x2 = v128.load(xp, 32);
    const x3 = v128.load(xp, 48);
    a0 = dot32(a0, v128.load(w), x0, x1, x2, x3, m4);
    a1 = dot32(a1, v128.load(w + rs), x0, x1, x2, x3, m4);
    a2 = dot32(a2, v128.load(w + 2 * rs), x0, x1, x2, x3, m4);
    a3 = dot32(a3, v128.load(w + 3 * rs), x0, x1, x2, x3, m4);
    w += 16;
    xp += 64;
  }
  epi(yp, hsum4(a0, a1, a2, a3), meta, xScale, sumq);
}

// One token, one 4-row tile of 8-bit codes whose blocks all share each row's scale and zero (per-channel, or one
// group spanning k): the rows' exact block sums, weighted by the block's activation scale, are accumulated in f32
// and the scale and zero applied once per tile: y = s·(Σ_b xScale_b·R_b − z·zs) with zs = Σ_b xScale_b·Σxq_b. The
// same sum as q8Block8's per-block y += s·xScale·(R − z·Σxq), in another float order; no epilogue per block.
function q8TileChannel1(wp: usize, xq: usize, xmeta: usize, nb: i32, blockLen: i32, kPad: i32, zs: f32, y0: usize): void {
  let F = f32x4.splat(0);
  let meta: usize = 0;
  for (let b = 0; b < nb; b++) {
    const c0 = b * blockLen;
    const L = min(blockLen, kPad - c0);
    const R = q8Rows8(wp, L, xq + <usize>c0 * 2);
    F = f32x4.add(F, f32x4.mul(f32x4.convert_i32x4_s(R), f32x4.splat(load<f32>(xmeta + <usize>b * 8))));
    meta = wp + <usize>L * 4;
    wp = meta + META;
  }
  const z = f32x4.convert_i32x4_s(v128.load16x4_u(meta + 8));
  v128.store(y0, f32x4.mul(f16x4(meta), f32x4.sub(F, f32x4.mul(z, f32x4.splat(zs)))));
}

/**
 * Y (m, nPad) = Xs · Ŵᵀ from packed int8-layout weights and q8Acts output, over row tiles of 4 claimed
 * `chunk` at a time from the i32 counter (as lutGemmTiles). nibble: 1 = ≤ 4-bit codes as nibbles.
 */
export function q8GemmTiles(
  w: usize, xq: usize, xmeta: usize, y: usize, m: i32, nPad: i32, kPad: i32, blockLen: i32, nibble: i32,
  counter: usize, chunk: i32,
): void {
  // nibble 2: 8-bit codes, every block of a row with the same scale and zero (q8TileChannel1 for one token)
  const channel = nibble == 2;
  if (channel) nibble = 0;
  const nb = (kPad + blockLen - 1) / blockLen;
  const tiles = nPad / TILE;
  const claims = (tiles + chunk - 1) / chunk;
  const tileBytes = (nibble ? <usize>kPad * 2 : <usize>kPad * 4) + <usize>nb * META;
  const yStride = <usize>nPad * 4;
  let zs: f32 = 0;
  if (channel && m == 1) for (let b = 0; b < nb; b++) zs += load<f32>(xmeta + <usize>b * 8) * <f32>load<i32>(xmeta + <usize>b * 8, 4);
  for (;;) {
    const c = atomic.add<i32>(counter, 1);
    if (c >= claims) break;
    const tEnd = min(c * chunk + chunk, tiles);
    for (let tile = c * chunk; tile < tEnd; tile++) {
      const y0 = y + <usize>tile * TILE * 4;
      for (let i = 0; i < m; i++) v128.store(y0 + <usize>i * yStride, i32x4.splat(0));
      let wp = w + <usize>tile * tileBytes;
      if (channel && m == 1) {
        q8TileChannel1(wp, xq, xmeta, nb, blockLen, kPad, zs, y0);
        continue;
      }
      for (let b = 0; b < nb; b++) {
        const c0 = b * blockLen;
        const L = min(blockLen, kPad - c0);
        const meta = wp + (nibble ? <usize>L * 2 : <usize>L * 4);
        let i = 0;
        if (!nibble) {
          for (; i + 2 <= m; i += 2) {
            const mp = xmeta + (<usize>b * <usize>m + <usize>i) * 8;
            const xp = xq + <usize>m * <usize>c0 * 2 + <usize>i * <usize>L * 2;
            const yp = y0 + <usize>i * yStride;
            q8Block8x2(wp, L, xp, xp + <usize>L * 2, meta, load<f32>(mp), load<i32>(mp, 4), load<f32>(mp, 8), load<i32>(mp, 12), yp, yp + yStride);
          }
        }
        for (; i < m; i++) {
          const mp = xmeta + (<usize>b * <usize>m + <usize>i) * 8;
          const xp = xq + <usize>m * <usize>c0 * 2 + <usize>i * <usize>L * 2;
          const yp = y0 + <usize>i * yStride;
          if (nibble) q8Block4(wp, L, xp, meta, load<f32>(mp), load<i32>(mp, 4), yp);
          else q8Block8(wp, L, xp, meta, load<f32>(mp), load<i32>(mp, 4), yp);
        }
        wp = meta + META;
      }
    }
  }
}
