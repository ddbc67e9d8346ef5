// f64 GEMM pieces (WebAssembly SIMD128, f64x2, mul + add) for the blocked Cholesky and triangular
// inverse of src/quantizers/linalg64.ts; the TypeScript Gemm64 there is the oracle.
//
// Layouts (f64, row-major, leading dimensions in elements):
//   C   (m, n) at c, ldc        A   (m, k) at a, lda
//   Bp  panels: ceil(n/4) × [k][4] at bp (dpackB), columns ≥ n are 0
//
// dgemmP computes rows [r0, r1) of C ±= A · B as 4×4 register tiles (8 f64x2 accumulators + 2 B vectors
// + splat + product), blocked so a KB×4 B micro-panel (8 KiB) stays in L1 while an MB×KB block of A rows,
// packed into per-thread scratch (256 KiB), stays in L2.

const KB: i32 = 256;
const MB: i32 = 128;

/**
 * Packs op(B) (k, n) into 4-column panels at dst: dst[q][p][c] = op(B)[p, 4q + c] (0 past n).
 * transB = 0: B is (k, n) at b; transB = 1: B is given transposed, (n, k) at b.
 */
export function dpackB(b: usize, ldb: i32, transB: i32, k: i32, n: i32, dst: usize): void {
  const panels = (n + 3) >> 2;
  const ld = <usize>ldb << 3;
  for (let q = 0; q < panels; q++) {
    const j = q << 2;
    const nc = min(4, n - j);
    const out = dst + (<usize>q * <usize>k) * 32;
    if (transB == 0) {
      for (let p = 0; p < k; p++) {
        const src = b + <usize>p * ld + (<usize>j << 3);
        const o = out + (<usize>p << 5);
        if (nc == 4) {
          v128.store(o, v128.load(src));
          v128.store(o, v128.load(src, 16), 16);
        } else {
          for (let c = 0; c < 4; c++) store<f64>(o + (<usize>c << 3), c < nc ? load<f64>(src + (<usize>c << 3)) : 0.0);
        }
      }
    } else {
      for (let c = 0; c < 4; c++) {
        const src = b + <usize>(j + c) * ld;
        for (let p = 0; p < k; p++) {
          store<f64>(out + (<usize>p << 5) + (<usize>c << 3), c < nc ? load<f64>(src + (<usize>p << 3)) : 0.0);
        }
      }
    }
  }
}

// C (rows, nc) ±= Ap (4, kc) · Bp (kc, 4); Ap packed [kc][4] (rows ≥ `rows` are 0); C row stride lc bytes.
function micro4x4(c: usize, lc: usize, a: usize, b: usize, kc: i32, neg: bool, rows: i32, nc: i32): void {
  let c00 = f64x2.splat(0), c01 = f64x2.splat(0);
  let c10 = f64x2.splat(0), c11 = f64x2.splat(0);
  let c20 = f64x2.splat(0), c21 = f64x2.splat(0);
  let c30 = f64x2.splat(0), c31 = f64x2.splat(0);
  const end = b + (<usize>kc << 5);
  for (let bp = b, ap = a; bp < end; bp += 32, ap += 32) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let s = f64x2.splat(load<f64>(ap));
    c00 = f64x2.add(c00, f64x2.mul(s, b0));
    c01 = f64x2.add(c01, f64x2.mul(s, b1));
    s = f64x2.splat(load<f64>(ap, 8));
    c10 = f64x2.add(c10, f64x2.mul(s, b0));
    c11 = f64x2.add(c11, f64x2.mul(s, b1));
    s = f64x2.splat(load<f64>(ap, 16));
    c20 = f64x2.add(c20, f64x2.mul(s, b0));
    c21 = f64x2.add(c21, f64x2.mul(s, b1));
    s = f64x2.splat(load<f64>(ap, 24));
    c30 = f64x2.add(c30, f64x2.mul(s, b0));
    c31 = f64x2.add(c31, f64x2.mul(s, b1));
  }
  if (neg) {
    c00 = f64x2.neg(c00); c01 = f64x2.neg(c01);
    c10 = f64x2.neg(c10); c11 = f64x2.neg(c11);
    c20 = f64x2.neg(c20); c21 = f64x2.neg(c21);
    c30 = f64x2.neg(c30); c31 = f64x2.neg(c31);
  }
  if (rows == 4 && nc == 4) {
    v128.store(c, f64x2.add(v128.load(c), c00));
    v128.store(c, f64x2.add(v128.load(c, 16), c01), 16);
    const r1 = c + lc, r2 = r1 + lc, r3 = r2 + lc;
    v128.store(r1, f64x2.add(v128.load(r1), c10));
    v128.store(r1, f64x2.add(v128.load(r1, 16), c11), 16);
    v128.store(r2, f64x2.add(v128.load(r2), c20));
    v128.store(r2, f64x2.add(v128.load(r2, 16), c21), 16);
    v128.store(r3, f64x2.add(v128.load(r3), c30));
    v128.store(r3, f64x2.add(v128.load(r3, 16), c31), 16);
  } else {
    storeCols(c, c00, c01, nc);
    if (rows > 1) storeCols(c + lc, c10, c11, nc);
    if (rows > 2) storeCols(c + 2 * lc, c20, c21, nc);
    if (rows > 3) storeCols(c + 3 * lc, c30, c31, nc);
  }
}

@inline function storeCols(c: usize, lo: v128, hi: v128, nc: i32): void {
  store<f64>(c, load<f64>(c) + f64x2.extract_lane(lo, 0));
  if (nc > 1) store<f64>(c, load<f64>(c, 8) + f64x2.extract_lane(lo, 1), 8);
  if (nc > 2) store<f64>(c, load<f64>(c, 16) + f64x2.extract_lane(hi, 0), 16);
  if (nc > 3) store<f64>(c, load<f64>(c, 24) + f64x2.extract_lane(hi, 1), 24);
}

/** Bytes of per-thread scratch dgemmP needs (its packed block of A). */
export function dgemmScratchBytes(): i32 {
  return MB * KB * 8;
}

// Packs A rows [i0, i1) × cols [k0, k0 + kc) (row stride la bytes) into 4-row tiles at dst:
// tile t = [kc][4] at dst + t·kc·32; rows past i1 are 0. Contiguous tiles avoid the cache-set conflicts
// of walking rows whose stride is a power of two (n = 2048, 8192 ...).
function packA(a: usize, la: usize, i0: i32, i1: i32, k0: i32, kc: i32, dst: usize): void {
  for (let i = i0; i < i1; i += 4) {
    const tile = dst + <usize>((i - i0) >> 2) * (<usize>kc << 5);
    for (let r = 0; r < 4; r++) {
      const o = tile + (<usize>r << 3);
      if (i + r < i1) {
        const src = a + <usize>(i + r) * la + (<usize>k0 << 3);
        for (let p: usize = 0; p < <usize>kc; p++) store<f64>(o + (p << 5), load<f64>(src + (p << 3)));
      } else {
        for (let p: usize = 0; p < <usize>kc; p++) store<f64>(o + (p << 5), 0.0);
      }
    }
  }
}

/**
 * Rows [r0, r1) of C (m, n) ±= A (m, k) · op(B), op(B) packed at bp by dpackB (panel stride k);
 * scratch: dgemmScratchBytes() bytes owned by the calling thread.
 * neg != 0: subtract. tri = 1: row i only needs columns j ≤ i + triOff (whole 4-column panels past that
 * are skipped; the rest of a panel may be written). tri = 2: A[i, p] = 0 for p > i + triOff (the k loop
 * of a 4-row tile stops after its last row's bound; the zeros in between are read).
 */
export function dgemmP(
  c: usize, ldc: i32, a: usize, lda: i32, bp: usize, k: i32, n: i32, r0: i32, r1: i32, neg: i32, tri: i32, triOff: i32,
  scratch: usize,
): void {
  const lc = <usize>ldc << 3;
  const la = <usize>lda << 3;
  const panels = (n + 3) >> 2;
  const ng = neg != 0;
  for (let k0 = 0; k0 < k; k0 += KB) {
    const kc = min(KB, k - k0);
    for (let i0 = r0; i0 < r1; i0 += MB) {
      const i1 = min(r1, i0 + MB);
      if (tri == 2 && i1 - 1 + triOff + 1 <= k0) continue; // every row's A is zero in this K-block
      packA(a, la, i0, i1, k0, kc, scratch);
      for (let q = 0; q < panels; q++) {
        const j = q << 2;
        const nc = min(4, n - j);
        const bq = bp + ((<usize>q * <usize>k + <usize>k0) << 5);
        for (let i = i0; i < i1; i += 4) {
          const rows = min(4, i1 - i);
          const last = i + rows - 1; // last row of the tile
          if (tri == 1 && j > last + triOff) continue; // whole panel right of every row's bound
          let kk = kc;
          if (tri == 2) {
            const kEnd = min(k, last + triOff + 1);
            if (kEnd <= k0) continue;
            kk = min(kc, kEnd - k0);
          }
          const ap = scratch + <usize>((i - i0) >> 2) * (<usize>kc << 5);
          micro4x4(c + <usize>i * lc + (<usize>j << 3), lc, ap, bq, kk, ng, rows, nc);
        }
      }
    }
  }
}
