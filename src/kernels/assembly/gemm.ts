// fp32 GEMM kernels (WebAssembly SIMD128, no relaxed SIMD, no FMA: mul + add).
//
// Everything here works on raw byte addresses into the imported shared memory; there are no managed
// objects. Layouts (all f32, little endian):
//
//   X      row-major (m, k)                 activations, copied in per call
//   Xp     row blocks: ceil(m/MR) × [k][MR]  X repacked per call by packX; rows ≥ m are 0
//   Wp     panels: ceil(n/NR) × [k][NR]      W (n, k) repacked once by packW; cols ≥ n are 0
//   Y      row-major (mPad, nPad), nPad = ceil(n/NR)·NR, mPad = ceil(m/MR)·MR (the caller trims)
//
// Y[m, n] = X[m, k] · Wᵀ is computed as a sum of rank-1 updates on MR×NR register tiles: per k step
// the micro-kernel loads one NR-wide row of the W panel (2 × v128) and splats MR values of X.
// 5×8 keeps 10 accumulators + 2 W vectors + splat + product = 14 of the 15 xmm registers V8 hands
// out on x64 (xmm15 is its scratch), so nothing spills (6×8 and 4×12 spill; k-unrolling lets
// Binaryen fuse the steps into longer expressions that V8 then schedules into spills). On Zen 3 at
// 2.45 GHz the micro-kernel alone runs at ~38.5 GFLOP/s, ~98% of the mul+add peak of 39.2.

export const MR: i32 = 5;
export const NR: i32 = 8;
/** K-block (max): a W micro-panel (KC × NR floats = 12 KiB) stays in L1 while X row blocks pass by. */
export const KC: i32 = 384;

/** First free byte after static data; the JS allocator starts above it. */
export function heapBase(): usize {
  return __heap_base;
}

@inline function madd(c: v128, a: v128, b: v128): v128 {
  return f32x4.add(c, f32x4.mul(a, b));
}

// Ap[kc][5] · Wp[kc][8] -> C (5, 8) at c with row stride ldc floats; adds into C when acc.
// Not exported and called from two sites so Binaryen keeps it a separate function (own register
// allocation in V8).
function micro5x8(a: usize, b: usize, c: usize, ldc: usize, kc: i32, acc: bool): void {
  const s = ldc << 2;
  // start from C (K-blocks after the first) or from 0: loading here, before the loop, keeps the
  // epilogue to plain stores (a load-add epilogue makes V8 keep accumulators on the stack)
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0), c41 = f32x4.splat(0);
  if (acc) {
    c00 = v128.load(c);
    c01 = v128.load(c, 16);
    c10 = v128.load(c + s);
    c11 = v128.load(c + s, 16);
    c20 = v128.load(c + 2 * s);
    c21 = v128.load(c + 2 * s, 16);
    c30 = v128.load(c + 3 * s);
    c31 = v128.load(c + 3 * s, 16);
    c40 = v128.load(c + 4 * s);
    c41 = v128.load(c + 4 * s, 16);
  }
  const aEnd = a + <usize>kc * 20;
  while (a < aEnd) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load32_splat(a);
    c00 = madd(c00, av, b0);
    c01 = madd(c01, av, b1);
    av = v128.load32_splat(a, 4);
    c10 = madd(c10, av, b0);
    c11 = madd(c11, av, b1);
    av = v128.load32_splat(a, 8);
    c20 = madd(c20, av, b0);
    c21 = madd(c21, av, b1);
    av = v128.load32_splat(a, 12);
    c30 = madd(c30, av, b0);
    c31 = madd(c31, av, b1);
    av = v128.load32_splat(a, 16);
    c40 = madd(c40, av, b0);
    c41 = madd(c41, av, b1);
    a += 20;
    b += 32;
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  c += s;
  v128.store(c, c10);
  v128.store(c, c11, 16);
  c += s;
  v128.store(c, c20);
  v128.store(c, c21, 16);
  c += s;
  v128.store(c, c30);
  v128.store(c, c31, 16);
  c += s;
  v128.store(c, c40);
  v128.store(c, c41, 16);
}

// X (m, k) row blocks [rb0, rb1) -> Xp ceil(m/MR) × [k][MR]; rows ≥ m become 0.
export function packX(x: usize, m: i32, k: i32, rb0: i32, rb1: i32, dst: usize): void {
  const dstride = <usize>MR * 4;
  const blockBytes = <usize>k * dstride;
  for (let rb = rb0; rb < rb1; rb++) {
    const blk = dst + <usize>rb * blockBytes;
    for (let i = 0; i < MR; i++) {
      const row = rb * MR + i;
      let d = blk + <usize>i * 4;
      const dEnd = d + blockBytes;
      if (row < m) {
        let s = x + <usize>row * <usize>k * 4;
        while (d < dEnd) {
          store<f32>(d, load<f32>(s));
          s += 4;
          d += dstride;
        }
      } else {
        while (d < dEnd) {
          store<f32>(d, 0);
          d += dstride;
        }
      }
    }
  }
}

/**
 * Y (mPad, nPad) = X (m, k) · Wᵀ from Xp (packX) and Wp (packW), as tiles of tileRB row blocks ×
 * tilePanels panels handed out dynamically: every participating thread calls this with the same
 * arguments and claims tiles with an atomic increment of the i32 at `counter` (zeroed by the caller)
 * until none are left, so a thread slowed down by anything else on the machine just does fewer.
 * Consecutive tiles share their row block range, which then stays in this core's L2.
 */
export function gemmTiles(
  xp: usize, w: usize, y: usize, m: i32, n: i32, k: i32,
  counter: usize, tileRB: i32, tilePanels: i32,
): void {
  const rowBlocks = (m + MR - 1) / MR;
  const panels = (n + NR - 1) / NR;
  const tilesM = (rowBlocks + tileRB - 1) / tileRB;
  const tilesN = (panels + tilePanels - 1) / tilePanels;
  const tiles = tilesM * tilesN;
  const ldy = <usize>panels * NR;
  const xBlockBytes = <usize>k * <usize>MR * 4;
  const panelBytes = <usize>k * <usize>NR * 4;
  const yBlockBytes = ldy * <usize>MR * 4;
  // even K blocking: ceil(k/KC) blocks of equal size, no short leftover block
  const kBlocks = (k + KC - 1) / KC;
  const kcStep = (k + kBlocks - 1) / kBlocks;
  for (;;) {
    const t = atomic.add<i32>(counter, 1);
    if (t >= tiles) break;
    const rb0 = (t / tilesN) * tileRB;
    const rb1 = min(rb0 + tileRB, rowBlocks);
    const p0 = (t % tilesN) * tilePanels;
    const p1 = min(p0 + tilePanels, panels);
    for (let k0 = 0; k0 < k; k0 += kcStep) {
      const kc = min(kcStep, k - k0);
      const acc = k0 > 0;
      for (let p = p0; p < p1; p++) {
        // this W micro-panel (kc × NR) stays in L1 while the tile's X row blocks pass by
        const wp = w + <usize>p * panelBytes + <usize>k0 * <usize>NR * 4;
        let ap = xp + <usize>rb0 * xBlockBytes + <usize>k0 * <usize>MR * 4;
        let yc = y + <usize>rb0 * yBlockBytes + <usize>p * NR * 4;
        for (let rb = rb0; rb < rb1; rb++) {
          if (acc) micro5x8(ap, wp, yc, ldy, kc, true);
          else micro5x8(ap, wp, yc, ldy, kc, false);
          ap += xBlockBytes;
          yc += yBlockBytes;
        }
      }
    }
  }
}

// y (nPad,) panels [p0, p1) = Wp · x (k,): four panels at a time (8 accumulators), then singles.
export function gemv(x: usize, w: usize, y: usize, k: i32, p0: i32, p1: i32): void {
  const panelBytes = <usize>k * <usize>NR * 4;
  const xEnd = x + <usize>k * 4;
  let p = p0;
  for (; p + 4 <= p1; p += 4) {
    let b0 = w + <usize>p * panelBytes;
    let b1 = b0 + panelBytes;
    let b2 = b1 + panelBytes;
    let b3 = b2 + panelBytes;
    let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
    let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
    let xp = x;
    while (xp < xEnd) {
      const xv = v128.load32_splat(xp);
      a00 = madd(a00, xv, v128.load(b0));
      a01 = madd(a01, xv, v128.load(b0, 16));
      a10 = madd(a10, xv, v128.load(b1));
      a11 = madd(a11, xv, v128.load(b1, 16));
      a20 = madd(a20, xv, v128.load(b2));
      a21 = madd(a21, xv, v128.load(b2, 16));
      a30 = madd(a30, xv, v128.load(b3));
      a31 = madd(a31, xv, v128.load(b3, 16));
      xp += 4;
      b0 += 32;
      b1 += 32;
      b2 += 32;
      b3 += 32;
    }
    const yp = y + <usize>p * NR * 4;
    v128.store(yp, a00);
    v128.store(yp, a01, 16);
    v128.store(yp, a10, 32);
    v128.store(yp, a11, 48);
    v128.store(yp, a20, 64);
    v128.store(yp, a21, 80);
    v128.store(yp, a30, 96);
    v128.store(yp, a31, 112);
  }
  for (; p < p1; p++) {
    let b = w + <usize>p * panelBytes;
    let e0 = f32x4.splat(0), e1 = f32x4.splat(0), o0 = f32x4.splat(0), o1 = f32x4.splat(0);
    let xp = x;
    // two k steps per iteration into separate accumulators to halve the add-latency chain
    for (; xp + 8 <= xEnd; xp += 8) {
      const xe = v128.load32_splat(xp);
      const xo = v128.load32_splat(xp, 4);
      e0 = madd(e0, xe, v128.load(b));
      e1 = madd(e1, xe, v128.load(b, 16));
      o0 = madd(o0, xo, v128.load(b, 32));
      o1 = madd(o1, xo, v128.load(b, 48));
      b += 64;
    }
    if (xp < xEnd) {
      const xe = v128.load32_splat(xp);
      e0 = madd(e0, xe, v128.load(b));
      e1 = madd(e1, xe, v128.load(b, 16));
    }
    const yp = y + <usize>p * NR * 4;
    v128.store(yp, f32x4.add(e0, o0));
    v128.store(yp, f32x4.add(e1, o1), 16);
  }
}

/** y (nPad,) = Wp · x (k,) in chunks of `chunk` panels claimed dynamically (see gemmTiles). */
export function gemvTiles(x: usize, w: usize, y: usize, n: i32, k: i32, counter: usize, chunk: i32): void {
  const panels = (n + NR - 1) / NR;
  const tiles = (panels + chunk - 1) / chunk;
  for (;;) {
    const t = atomic.add<i32>(counter, 1);
    if (t >= tiles) break;
    gemv(x, w, y, k, t * chunk, min(t * chunk + chunk, panels));
  }
}

// W (n, k) row-major -> Wp ceil(n/NR) × [k][NR], zero-padding the last panel's missing rows.
export function packW(src: usize, dst: usize, n: i32, k: i32): void {
  const panels = (n + NR - 1) / NR;
  const dstride = <usize>NR * 4;
  for (let p = 0; p < panels; p++) {
    const panel = dst + <usize>p * <usize>k * dstride;
    const full = (p + 1) * NR <= n;
    if (full) {
      // 8 source rows walk along k together; each step writes one contiguous 32-byte row
      let s = src + <usize>p * NR * <usize>k * 4;
      const rs = <usize>k * 4;
      let d = panel;
      const dEnd = panel + <usize>k * dstride;
      while (d < dEnd) {
        store<f32>(d, load<f32>(s));
        store<f32>(d, load<f32>(s + rs), 4);
        store<f32>(d, load<f32>(s + 2 * rs), 8);
        store<f32>(d, load<f32>(s + 3 * rs), 12);
        store<f32>(d, load<f32>(s + 4 * rs), 16);
        store<f32>(d, load<f32>(s + 5 * rs), 20);
        store<f32>(d, load<f32>(s + 6 * rs), 24);
        store<f32>(d, load<f32>(s + 7 * rs), 28);
        s += 4;
        d += dstride;
      }
    } else {
      for (let j = 0; j < NR; j++) {
        const row = p * NR + j;
        let d = panel + <usize>j * 4;
        const dEnd = d + <usize>k * dstride;
        if (row < n) {
          let s = src + <usize>row * <usize>k * 4;
          while (d < dEnd) {
            store<f32>(d, load<f32>(s));
            s += 4;
            d += dstride;
          }
        } else {
          while (d < dEnd) {
            store<f32>(d, 0);
            d += dstride;
          }
        }
      }
    }
  }
}
