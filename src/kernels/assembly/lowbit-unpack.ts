// Unpacks one (32-row tile, block) of a packed low-bit weight into the int16 panel the prefill GEMM
// (lowbit-prefill.ts) reads, from either packed layout (src/kernels/lowbit-pack.ts): the LUT bit-plane
// layout (2/3/4-bit) or the int8 layout (u8 codes or nibbles). WebAssembly SIMD128 baseline.
//
//   panel (8, L/2, 8) i16   row group g (rows 4g..4g+3), column pair p: the codes
//                           [r0 c2p, r0 c2p+1, r1 c2p, r1 c2p+1, r2 c2p, r2 c2p+1, r3 c2p, r3 c2p+1]
//                           so one i32x4.dot_i16x8_s with a broadcast pair of activations gives the
//                           4 rows' partial sums in row order (no horizontal reduction)
//   sc    32 f32            weight scale per row (fp16 → f32)
//   zz    32 i32            zero point per row
//
// Rows past the weight's last tile get zero codes and zero scales (their outputs are dropped).

export const PANEL_ROWS: i32 = 32;

@inline function f16x4(p: usize): v128 {
  return f32x4.mul(i32x4.shl(v128.load16x4_u(p), 13), f32x4.splat(5.192296858534828e33)); // 2^112
}

// Swaps the bits selected by `mask` in a with the bits mask << s in b ... as a "delta swap" between two
// vectors: bits (a >> s) & mask <-> b & mask. Byte-wise masks, so the i16 shifts' carries are cut off.
@inline function swapLo(a: v128, b: v128, s: i32, mask: v128): v128 {
  return v128.and(v128.xor(i16x8.shr_u(a, s), b), mask);
}

/**
 * LUT layout: block `blk` of a 32-row tile (bits planes × (L/4) × 16 bytes, then 32 × u16 fp16 scale,
 * 32 × i16 zero term 2^bits − 1 − 2z; without the zero terms when sym: every zero point 2^(bits−1)).
 */
export function unpackLut(blk: usize, L: i32, bits: i32, sym: bool, panel: usize, sc: usize, zz: usize): void {
  const planeBytes = <usize>L * 4;
  const gStride = <usize>L * 8; // bytes per row group
  const m33 = i8x16.splat(0x33);
  const m55 = i8x16.splat(0x55);
  const m0f = i16x8.splat(0x0f);
  const zero = i32x4.splat(0);
  const nj = L >> 2;
  for (let j = 0; j < nj; j++) {
    const p0 = blk + <usize>j * 16;
    // nibble of plane p (low: row i, high: row i + 16) has bit q = bit p of the code in column 4j + q
    let v0 = v128.load(p0);
    let v1 = bits > 1 ? v128.load(p0 + planeBytes) : zero;
    let v2 = bits > 2 ? v128.load(p0 + 2 * planeBytes) : zero;
    let v3 = bits > 3 ? v128.load(p0 + 3 * planeBytes) : zero;
    // 4×4 bit transpose per nibble (planes × columns -> columns × planes): 2×2 blocks, then single bits
    let t = swapLo(v0, v2, 2, m33);
    v0 = v128.xor(v0, i16x8.shl(t, 2));
    v2 = v128.xor(v2, t);
    t = swapLo(v1, v3, 2, m33);
    v1 = v128.xor(v1, i16x8.shl(t, 2));
    v3 = v128.xor(v3, t);
    t = swapLo(v0, v1, 1, m55);
    v0 = v128.xor(v0, i16x8.shl(t, 1));
    v1 = v128.xor(v1, t);
    t = swapLo(v2, v3, 1, m55);
    v2 = v128.xor(v2, i16x8.shl(t, 1));
    v3 = v128.xor(v3, t);
    // now v_q: byte i = code(row i, col 4j + q) | code(row i + 16, col 4j + q) << 4
    const o = panel + <usize>j * 32; // pairs 2j, 2j + 1 of every row group
    emitPair(o, v0, v1, gStride, m0f);
    emitPair(o + 16, v2, v3, gStride, m0f);
  }
  for (let i = 0; i < PANEL_ROWS; i += 4) {
    v128.store(sc + <usize>i * 4, f16x4(blk + <usize>bits * planeBytes + <usize>i * 2));
    if (sym) {
      v128.store(zz + <usize>i * 4, i32x4.splat(1 << (bits - 1)));
    } else {
      const zt = v128.load16x4_s(blk + <usize>bits * planeBytes + 64 + <usize>i * 2);
      v128.store(zz + <usize>i * 4, i32x4.shr_s(i32x4.sub(i32x4.splat((1 << bits) - 1), zt), 1));
    }
  }
}

// Columns a, b (16 bytes each: rows 0..15 low nibble, rows 16..31 high nibble) -> one pair slot of all
// 8 row groups at o + g·gStride.
@inline function emitPair(o: usize, a: v128, b: v128, gStride: usize, m0f: v128): void {
  const r07 = i8x16.shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const r815 = i8x16.shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  let e = i16x8.extend_low_i8x16_u(r07);
  v128.store(o, v128.and(e, m0f));
  v128.store(o + 4 * gStride, i16x8.shr_u(e, 4));
  e = i16x8.extend_high_i8x16_u(r07);
  v128.store(o + gStride, v128.and(e, m0f));
  v128.store(o + 5 * gStride, i16x8.shr_u(e, 4));
  e = i16x8.extend_low_i8x16_u(r815);
  v128.store(o + 2 * gStride, v128.and(e, m0f));
  v128.store(o + 6 * gStride, i16x8.shr_u(e, 4));
  e = i16x8.extend_high_i8x16_u(r815);
  v128.store(o + 3 * gStride, v128.and(e, m0f));
  v128.store(o + 7 * gStride, i16x8.shr_u(e, 4));
}

/**
 * int8 layout: row group g of the panel from the block at `blk` of one 4-row tile (4 rows × L bytes of
 * codes, or 4 rows × L/2 bytes of nibbles, then 4 × u16 fp16 scale, 4 × u16 zero point).
 */
export function unpackQ8Group(blk: usize, L: i32, nibble: i32, g: i32, panel: usize, sc: usize, zz: usize): void {
  const o = panel + <usize>g * <usize>L * 8;
  let meta: usize;
  if (nibble) {
    const rs = <usize>(L >> 1);
    const m0f = i16x8.splat(0x0f);
    for (let c = 0; c < L; c += 32) {
      const w = blk + <usize>(c >> 1);
      const a0 = v128.load(w), a1 = v128.load(w + rs), a2 = v128.load(w + 2 * rs), a3 = v128.load(w + 3 * rs);
      for (let j = 0; j < 4; j++) {
        // columns c + 8j .. c + 8j + 7 of each row as i16 = 4 column pairs (one u32 each)
        const c0 = v128.and(i16x8.shr_u(a0, 4 * j), m0f);
        const c1 = v128.and(i16x8.shr_u(a1, 4 * j), m0f);
        const c2 = v128.and(i16x8.shr_u(a2, 4 * j), m0f);
        const c3 = v128.and(i16x8.shr_u(a3, 4 * j), m0f);
        store4x4(o + <usize>((c >> 1) + 4 * j) * 16, c0, c1, c2, c3);
      }
    }
    meta = blk + <usize>L * 2;
  } else {
    const rs = <usize>L;
    for (let c = 0; c < L; c += 16) {
      const w = blk + <usize>c;
      const a0 = v128.load(w), a1 = v128.load(w + rs), a2 = v128.load(w + 2 * rs), a3 = v128.load(w + 3 * rs);
      // u16 units = column pairs: interleave rows 0/1 and 2/3, then pairs of rows
      const s01 = i16x8.shuffle(a0, a1, 0, 8, 1, 9, 2, 10, 3, 11);
      const s23 = i16x8.shuffle(a2, a3, 0, 8, 1, 9, 2, 10, 3, 11);
      const h01 = i16x8.shuffle(a0, a1, 4, 12, 5, 13, 6, 14, 7, 15);
      const h23 = i16x8.shuffle(a2, a3, 4, 12, 5, 13, 6, 14, 7, 15);
      const d = o + <usize>(c >> 1) * 16;
      let u = i32x4.shuffle(s01, s23, 0, 4, 1, 5);
      v128.store(d, i16x8.extend_low_i8x16_u(u));
      v128.store(d, i16x8.extend_high_i8x16_u(u), 16);
      u = i32x4.shuffle(s01, s23, 2, 6, 3, 7);
      v128.store(d, i16x8.extend_low_i8x16_u(u), 32);
      v128.store(d, i16x8.extend_high_i8x16_u(u), 48);
      u = i32x4.shuffle(h01, h23, 0, 4, 1, 5);
      v128.store(d, i16x8.extend_low_i8x16_u(u), 64);
      v128.store(d, i16x8.extend_high_i8x16_u(u), 80);
      u = i32x4.shuffle(h01, h23, 2, 6, 3, 7);
      v128.store(d, i16x8.extend_low_i8x16_u(u), 96);
      v128.store(d, i16x8.extend_high_i8x16_u(u), 112);
    }
    meta = blk + <usize>L * 4;
  }
  v128.store(sc + <usize>g * 16, f16x4(meta));
  v128.store(zz + <usize>g * 16, v128.load16x4_u(meta + 8));
}

// 4 rows × 4 column pairs (u32 lanes of c0..c3) -> 4 panel slots [r0 r1 r2 r3] of pairs 0..3 at d.
@inline function store4x4(d: usize, c0: v128, c1: v128, c2: v128, c3: v128): void {
  const t0 = i32x4.shuffle(c0, c1, 0, 4, 1, 5);
  const t1 = i32x4.shuffle(c2, c3, 0, 4, 1, 5);
  const t2 = i32x4.shuffle(c0, c1, 2, 6, 3, 7);
  const t3 = i32x4.shuffle(c2, c3, 2, 6, 3, 7);
  v128.store(d, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
  v128.store(d, i32x4.shuffle(t0, t1, 2, 3, 6, 7), 16);
  v128.store(d, i32x4.shuffle(t2, t3, 0, 1, 4, 5), 32);
  v128.store(d, i32x4.shuffle(t2, t3, 2, 3, 6, 7), 48);
}

/** Row group g of the panel as zeros (rows past the weight's last 4-row tile). */
export function zeroGroup(L: i32, g: i32, panel: usize, sc: usize, zz: usize): void {
  const o = panel + <usize>g * <usize>L * 8;
  const end = o + <usize>L * 8;
  for (let p = o; p < end; p += 16) v128.store(p, i32x4.splat(0));
  v128.store(sc + <usize>g * 16, i32x4.splat(0));
  v128.store(zz + <usize>g * 16, i32x4.splat(0));
}
