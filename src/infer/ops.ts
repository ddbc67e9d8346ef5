/** Element-wise and row-wise ops of the forward pass. Shapes are row-major; accumulation in float64. */

/** out[t,:] = x[t,:] / sqrt(mean(x[t,:]²) + eps) · w   — x, out (T, d); w (d,). out may alias x. */
export function rmsNorm(x: Float32Array, w: Float32Array, T: number, d: number, eps: number, out: Float32Array): Float32Array {
  for (let t = 0; t < T; t++) {
    const o = t * d;
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) out[o + i] = x[o + i] * inv * w[i];
  }
  return out;
}

/** x += y, both (n,). */
export function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

/** gate = silu(gate) · up, in place on gate; both (n,). silu(z) = z / (1 + e^−z). */
export function siluMulInPlace(gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    gate[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** Adds bias (n,) to every row of y (m, n). */
export function addBiasRows(y: Float32Array, bias: Float32Array, m: number, n: number): void {
  for (let r = 0; r < m; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) y[o + j] += bias[j];
  }
}

/** Softmax in place over row[0, len) (the rest of the row is left alone). */
export function softmaxPrefixInPlace(row: Float32Array, offset: number, len: number, scale: number): void {
  let max = -Infinity;
  for (let i = 0; i < len; i++) max = Math.max(max, row[offset + i] * scale);
  let sum = 0;
  for (let i = 0; i < len; i++) {
    const e = Math.exp(row[offset + i] * scale - max);
    row[offset + i] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let i = 0; i < len; i++) row[offset + i] *= inv;
}

/** log Σ exp(row), computed in float64 with the max trick. row: (n,) at offset. */
export function logSumExp(row: Float32Array, offset: number, n: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (row[offset + i] > max) max = row[offset + i];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(row[offset + i] - max);
  return max + Math.log(sum);
}

/** Index of the largest value of row (n,) at offset; the first one on ties. */
export function argmax(row: Float32Array, offset: number, n: number): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = row[offset + i];
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}
