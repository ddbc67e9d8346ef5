// Causal grouped-query attention over a KV cache that lives in this memory (WebAssembly SIMD128).
// The reference is the TypeScript causalAttention (src/infer/attention.ts): same maths, float32 here.
//
//   Q    (T, nHeads, d) f32   queries, already rotated
//   O    (T, nHeads, d) f32   outputs
//   K, V (kvHeads, cap, d)    one layer of the cache: KV head g's positions [0, S) are contiguous rows
//   P    (S) f32 per job      score scratch
//
// Work items are (kv head g, query head j of its `rep`, token t), flattened as f = (g·rep + j)·T + t, i.e.
// f = head·T + t; a job runs items [f0, f1). Token t attends to positions [0, pos0 + t].

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

export function attnRows(
  q: usize, o: usize, T: i32, nHeads: i32, d: i32, pos0: i32, rep: i32,
  k: usize, v: usize, cap: i32, p: usize, f0: i32, f1: i32,
): void {
  const scale: f32 = <f32>1 / Mathf.sqrt(<f32>d);
  const d4 = d & ~3;
  const rowBytes = <usize>d * 4;
  for (let f = f0; f < f1; f++) {
    const head = f / T;
    const t = f - head * T;
    const g = head / rep;
    const qp = q + (<usize>t * <usize>nHeads + <usize>head) * rowBytes;
    const op = o + (<usize>t * <usize>nHeads + <usize>head) * rowBytes;
    const kg = k + <usize>g * <usize>cap * rowBytes;
    const vg = v + <usize>g * <usize>cap * rowBytes;
    const len = pos0 + t + 1;
    // scores s·scale and their max
    let mx: f32 = -Infinity;
    for (let s = 0; s < len; s++) {
      const kp = kg + <usize>s * rowBytes;
      let acc = f32x4.splat(0);
      let i = 0;
      for (; i < d4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qp + <usize>i * 4), v128.load(kp + <usize>i * 4)));
      let sc = hsum(acc);
      for (; i < d; i++) sc += load<f32>(qp + <usize>i * 4) * load<f32>(kp + <usize>i * 4);
      sc *= scale;
      store<f32>(p + <usize>s * 4, sc);
      if (sc > mx) mx = sc;
    }
    // softmax weights (unnormalised) and their sum
    let sum: f32 = 0;
    for (let s = 0; s < len; s++) {
      const e = Mathf.exp(load<f32>(p + <usize>s * 4) - mx);
      store<f32>(p + <usize>s * 4, e);
      sum += e;
    }
    const inv: f32 = <f32>1 / sum;
    // o = Σ_s p_s · V_s / sum
    let i = 0;
    for (; i < d4; i += 4) v128.store(op + <usize>i * 4, f32x4.splat(0));
    for (; i < d; i++) store<f32>(op + <usize>i * 4, 0);
    for (let s = 0; s < len; s++) {
      const w = load<f32>(p + <usize>s * 4) * inv;
      const ws = f32x4.splat(w);
      const vp = vg + <usize>s * rowBytes;
      let c = 0;
      for (; c < d4; c += 4) {
        const a = op + <usize>c * 4;
        v128.store(a, f32x4.add(v128.load(a), f32x4.mul(ws, v128.load(vp + <usize>c * 4))));
      }
      for (; c < d; c++) store<f32>(op + <usize>c * 4, load<f32>(op + <usize>c * 4) + w * load<f32>(vp + <usize>c * 4));
    }
  }
}
