/**
 * Rotary position embeddings in the Hugging Face "rotate-half" layout: for a head vector x of size d,
 * out[i] = x[i]·cos − x[i+d/2]·sin and out[i+d/2] = x[i+d/2]·cos + x[i]·sin, with angle pos·invFreq[i].
 * Frequencies are computed in float64 (the reference is float64) and the tables stored as float32.
 */
import type { LlamaConfig, RopeScaling } from '../arch/llama-config.js';

/** inv_freq[i] = 1 / theta^(2i/d), then the configured scaling. Length d/2. */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  if (scaling.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] /= scaling.factor;
  } else if (scaling.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldCtx } = scaling;
    const lowFreqWavelen = oldCtx / lowFreqFactor;
    const highFreqWavelen = oldCtx / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowFreqWavelen) inv[i] = inv[i] / factor;
      else if (wavelen >= highFreqWavelen) {
        const smooth = (oldCtx / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/** Precomputed cos/sin for positions [0, maxPos): each (maxPos, d/2), row-major. */
export class RopeTable {
  readonly cos: Float32Array;
  readonly sin: Float32Array;
  readonly half: number;
  constructor(
    readonly headDim: number,
    readonly maxPos: number,
    invFreq: Float64Array,
  ) {
    this.half = headDim / 2;
    this.cos = new Float32Array(maxPos * this.half);
    this.sin = new Float32Array(maxPos * this.half);
    for (let p = 0; p < maxPos; p++) {
      for (let i = 0; i < this.half; i++) {
        const a = p * invFreq[i];
        this.cos[p * this.half + i] = Math.cos(a);
        this.sin[p * this.half + i] = Math.sin(a);
      }
    }
  }

  static forConfig(c: LlamaConfig, maxPos: number): RopeTable {
    return new RopeTable(c.headDim, maxPos, ropeInvFreq(c.headDim, c.ropeTheta, c.ropeScaling));
  }

  /**
   * Rotate in place: x (T, nHeads, d) row-major, token t at absolute position pos0 + t.
   */
  apply(x: Float32Array, T: number, nHeads: number, pos0: number): void {
    const d = this.headDim;
    const h = this.half;
    for (let t = 0; t < T; t++) {
      const row = (pos0 + t) * h;
      for (let head = 0; head < nHeads; head++) {
        const base = (t * nHeads + head) * d;
        for (let i = 0; i < h; i++) {
          const c = this.cos[row + i];
          const s = this.sin[row + i];
          const a = x[base + i];
          const b = x[base + i + h];
          x[base + i] = a * c - b * s;
          x[base + i + h] = b * c + a * s;
        }
      }
    }
  }
}
