// Element-wise ops of the forward pass (WebAssembly SIMD128). Reference: src/infer/ops.ts.
import { expf4 } from './expf';

/** g[i] = silu(g[i]) · u[i] = g / (1 + e^−g) · u, i < n (f32 arrays at g, u). */
export function siluMul(g: usize, u: usize, n: i32): void {
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const gp = g + <usize>i * 4;
    const x = v128.load(gp);
    const e = expf4(f32x4.neg(x));
    v128.store(gp, f32x4.mul(f32x4.div(x, f32x4.add(f32x4.splat(1), e)), v128.load(u + <usize>i * 4)));
  }
  for (; i < n; i++) {
    const gp = g + <usize>i * 4;
    const x = load<f32>(gp);
    store<f32>(gp, (x / (<f32>1 + Mathf.exp(-x))) * load<f32>(u + <usize>i * 4));
  }
}
