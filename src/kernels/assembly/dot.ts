// Row-dot kernels for transient operands with few rows, where packing B would cost as much as the
// product itself (decode-time attention: q · Kᵀ and P · V with V pre-transposed).

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

// Y (m, ldy) cols [j0, j1) = A (m, k) · B (n, k)ᵀ, both row-major; four B rows at a time.
export function dotRows(a: usize, b: usize, y: usize, m: i32, k: i32, ldy: i32, j0: i32, j1: i32): void {
  const rowBytes = <usize>k * 4;
  const k4 = <usize>(k & ~3) * 4;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const b0 = b + <usize>j * rowBytes;
    const b1 = b0 + rowBytes;
    const b2 = b1 + rowBytes;
    const b3 = b2 + rowBytes;
    for (let i = 0; i < m; i++) {
      const ar = a + <usize>i * rowBytes;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      for (let o: usize = 0; o < k4; o += 16) {
        const av = v128.load(ar + o);
        s0 = f32x4.add(s0, f32x4.mul(av, v128.load(b0 + o)));
        s1 = f32x4.add(s1, f32x4.mul(av, v128.load(b1 + o)));
        s2 = f32x4.add(s2, f32x4.mul(av, v128.load(b2 + o)));
        s3 = f32x4.add(s3, f32x4.mul(av, v128.load(b3 + o)));
      }
      let t0 = hsum(s0), t1 = hsum(s1), t2 = hsum(s2), t3 = hsum(s3);
      for (let o = k4; o < rowBytes; o += 4) {
        const av = load<f32>(ar + o);
        t0 += av * load<f32>(b0 + o);
        t1 += av * load<f32>(b1 + o);
        t2 += av * load<f32>(b2 + o);
        t3 += av * load<f32>(b3 + o);
      }
      const yp = y + (<usize>i * <usize>ldy + <usize>j) * 4;
      store<f32>(yp, t0);
      store<f32>(yp, t1, 4);
      store<f32>(yp, t2, 8);
      store<f32>(yp, t3, 12);
    }
  }
  for (; j < j1; j++) {
    const br = b + <usize>j * rowBytes;
    for (let i = 0; i < m; i++) {
      const ar = a + <usize>i * rowBytes;
      let s = f32x4.splat(0);
      for (let o: usize = 0; o < k4; o += 16) s = f32x4.add(s, f32x4.mul(v128.load(ar + o), v128.load(br + o)));
      let t = hsum(s);
      for (let o = k4; o < rowBytes; o += 4) t += load<f32>(ar + o) * load<f32>(br + o);
      store<f32>(y + (<usize>i * <usize>ldy + <usize>j) * 4, t);
    }
  }
}
