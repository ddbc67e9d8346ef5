// Causal grouped-query attention over a KV cache that lives in this memory (WebAssembly SIMD128).
// The reference is the TypeScript causalAttention (src/infer/attention.ts): same maths, float32 here.
//
//   Q    (T, nHeads, d) f32   queries, already rotated
//   O    (T, nHeads, d) f32   outputs
//   K, V (kvHeads, cap, d)    one layer of the cache: KV head g's positions [0, S) are contiguous rows
//   P    (4, S) f32 per job   score scratch
//
// Work items are (query head, token t), flattened as f = head·T + t; a job runs items [f0, f1). Token t
// attends to positions [0, pos0 + t]. Four consecutive tokens of one head are done together (prefill):
// each key and value row is loaded once for the four, over the positions all four see; the up to three
// positions only the later tokens see are done row by row.
import { expf4 } from './expf';

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline function dot(a: usize, b: usize, d: i32): f32 {
  const d4 = d & ~3;
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i < d4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + <usize>i * 4), v128.load(b + <usize>i * 4)));
  let s = hsum(acc);
  for (; i < d; i++) s += load<f32>(a + <usize>i * 4) * load<f32>(b + <usize>i * 4);
  return s;
}

/** p[0, len) ← e^(p − max p) in place; returns 1 / Σ. */
function softmaxWeights(p: usize, len: i32): f32 {
  let mx: f32 = -Infinity;
  for (let s = 0; s < len; s++) mx = max(mx, load<f32>(p + <usize>s * 4));
  const vmx = f32x4.splat(mx);
  let vsum = f32x4.splat(0);
  const len4 = len & ~3;
  let s = 0;
  for (; s < len4; s += 4) {
    const a = p + <usize>s * 4;
    const e = expf4(f32x4.sub(v128.load(a), vmx));
    v128.store(a, e);
    vsum = f32x4.add(vsum, e);
  }
  let sum = hsum(vsum);
  for (; s < len; s++) {
    const a = p + <usize>s * 4;
    const e = f32x4.extract_lane(expf4(f32x4.splat(load<f32>(a) - mx)), 0);
    store<f32>(a, e);
    sum += e;
  }
  return <f32>1 / sum;
}

/** o[0, d) += w · vrow. */
@inline function axpy(o: usize, w: f32, vp: usize, d: i32): void {
  const d4 = d & ~3;
  const ws = f32x4.splat(w);
  let c = 0;
  for (; c < d4; c += 4) {
    const a = o + <usize>c * 4;
    v128.store(a, f32x4.add(v128.load(a), f32x4.mul(ws, v128.load(vp + <usize>c * 4))));
  }
  for (; c < d; c++) store<f32>(o + <usize>c * 4, load<f32>(o + <usize>c * 4) + w * load<f32>(vp + <usize>c * 4));
}

@inline function zero(o: usize, d: i32): void {
  for (let c = 0; c < d; c++) store<f32>(o + <usize>c * 4, 0);
}

// One query row: scores over [0, len), softmax, weighted sum of V.
function oneRow(qp: usize, op: usize, kg: usize, vg: usize, len: i32, d: i32, scale: f32, p: usize): void {
  const rowBytes = <usize>d * 4;
  for (let s = 0; s < len; s++) store<f32>(p + <usize>s * 4, dot(qp, kg + <usize>s * rowBytes, d) * scale);
  const inv = softmaxWeights(p, len);
  zero(op, d);
  for (let s = 0; s < len; s++) axpy(op, load<f32>(p + <usize>s * 4) * inv, vg + <usize>s * rowBytes, d);
}

// Four query rows (tokens t..t+3 of one head, strided qs bytes apart in Q and O) that see len, len+1, len+2,
// len+3 positions. Scratch rows of S floats at p, p + ps, …
function fourRows(qp: usize, op: usize, qs: usize, kg: usize, vg: usize, len: i32, d: i32, scale: f32, p: usize, ps: usize): void {
  const rowBytes = <usize>d * 4;
  const d4 = d & ~3;
  const q1 = qp + qs, q2 = qp + 2 * qs, q3 = qp + 3 * qs;
  const p1 = p + ps, p2 = p + 2 * ps, p3 = p + 3 * ps;
  // scores over the positions all four rows see: each key row loaded once
  for (let s = 0; s < len; s++) {
    const kp = kg + <usize>s * rowBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let i = 0;
    for (; i < d4; i += 4) {
      const off = <usize>i * 4;
      const kv = v128.load(kp + off);
      a0 = f32x4.add(a0, f32x4.mul(v128.load(qp + off), kv));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(q1 + off), kv));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(q2 + off), kv));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(q3 + off), kv));
    }
    let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (; i < d; i++) {
      const off = <usize>i * 4;
      const kv = load<f32>(kp + off);
      s0 += load<f32>(qp + off) * kv;
      s1 += load<f32>(q1 + off) * kv;
      s2 += load<f32>(q2 + off) * kv;
      s3 += load<f32>(q3 + off) * kv;
    }
    const so = <usize>s * 4;
    store<f32>(p + so, s0 * scale);
    store<f32>(p1 + so, s1 * scale);
    store<f32>(p2 + so, s2 * scale);
    store<f32>(p3 + so, s3 * scale);
  }
  // the positions only the later rows see
  for (let r = 1; r < 4; r++) {
    const qr = qp + <usize>r * qs;
    const pr = p + <usize>r * ps;
    for (let s = len; s < len + r; s++) store<f32>(pr + <usize>s * 4, dot(qr, kg + <usize>s * rowBytes, d) * scale);
  }
  const i0 = softmaxWeights(p, len);
  const i1 = softmaxWeights(p1, len + 1);
  const i2 = softmaxWeights(p2, len + 2);
  const i3 = softmaxWeights(p3, len + 3);
  const o1 = op + qs, o2 = op + 2 * qs, o3 = op + 3 * qs;
  zero(op, d);
  zero(o1, d);
  zero(o2, d);
  zero(o3, d);
  // weighted sums over the shared positions: each value row loaded once
  for (let s = 0; s < len; s++) {
    const so = <usize>s * 4;
    const w0 = f32x4.splat(load<f32>(p + so) * i0);
    const w1 = f32x4.splat(load<f32>(p1 + so) * i1);
    const w2 = f32x4.splat(load<f32>(p2 + so) * i2);
    const w3 = f32x4.splat(load<f32>(p3 + so) * i3);
    const vp = vg + <usize>s * rowBytes;
    let c = 0;
    for (; c < d4; c += 4) {
      const off = <usize>c * 4;
      const vv = v128.load(vp + off);
      v128.store(op + off, f32x4.add(v128.load(op + off), f32x4.mul(w0, vv)));
      v128.store(o1 + off, f32x4.add(v128.load(o1 + off), f32x4.mul(w1, vv)));
      v128.store(o2 + off, f32x4.add(v128.load(o2 + off), f32x4.mul(w2, vv)));
      v128.store(o3 + off, f32x4.add(v128.load(o3 + off), f32x4.mul(w3, vv)));
    }
    for (; c < d; c++) {
      const off = <usize>c * 4;
      const vv = load<f32>(vp + off);
      store<f32>(op + off, load<f32>(op + off) + f32x4.extract_lane(w0, 0) * vv);
      store<f32>(o1 + off, load<f32>(o1 + off) + f32x4.extract_lane(w1, 0) * vv);
      store<f32>(o2 + off, load<f32>(o2 + off) + f32x4.extract_lane(w2, 0) * vv);
      store<f32>(o3 + off, load<f32>(o3 + off) + f32x4.extract_lane(w3, 0) * vv);
    }
  }
  axpy(o1, load<f32>(p1 + <usize>len * 4) * i1, vg + <usize>len * rowBytes, d);
  axpy(o2, load<f32>(p2 + <usize>len * 4) * i2, vg + <usize>len * rowBytes, d);
  axpy(o2, load<f32>(p2 + <usize>(len + 1) * 4) * i2, vg + <usize>(len + 1) * rowBytes, d);
  for (let s = len; s < len + 3; s++) axpy(o3, load<f32>(p3 + <usize>s * 4) * i3, vg + <usize>s * rowBytes, d);
}

export function attnRows(
  q: usize, o: usize, T: i32, nHeads: i32, d: i32, pos0: i32, rep: i32,
  k: usize, v: usize, cap: i32, p: usize, f0: i32, f1: i32,
): void {
  const scale: f32 = <f32>1 / Mathf.sqrt(<f32>d);
  const rowBytes = <usize>d * 4;
  const qs = <usize>nHeads * rowBytes; // next token, same head
  const ps = (<usize>(pos0 + T) * 4 + 63) & ~(<usize>63); // one scratch row
  let f = f0;
  while (f < f1) {
    const head = f / T;
    const t = f - head * T;
    const g = head / rep;
    const qp = q + (<usize>t * <usize>nHeads + <usize>head) * rowBytes;
    const op = o + (<usize>t * <usize>nHeads + <usize>head) * rowBytes;
    const kg = k + <usize>g * <usize>cap * rowBytes;
    const vg = v + <usize>g * <usize>cap * rowBytes;
    if (t + 4 <= T && f + 4 <= f1) {
      fourRows(qp, op, qs, kg, vg, pos0 + t + 1, d, scale, p, ps);
      f += 4;
    } else {
      oneRow(qp, op, kg, vg, pos0 + t + 1, d, scale, p);
      f += 1;
    }
  }
}
