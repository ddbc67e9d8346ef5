/**
 * Reference codecs of the 256-weight k-quant super-blocks, bit-exact to llama.cpp's
 * `quantize_row_q{2,3,4,6}_K_ref` and `dequantize_row_q{2,3,4,6}_K` (QK_K = 256):
 *
 *   Q2_K  84 B: { u8 scales[16] (lo nibble scale, hi nibble min); u8 qs[64]; fp16 d; fp16 dmin }
 *               16 sub-blocks of 16, w = d·sc·q − dmin·m, q ∈ [0, 3]
 *   Q3_K 110 B: { u8 hmask[32]; u8 qs[64]; u8 scales[12] (16 × 6 bit); fp16 d }
 *               16 sub-blocks of 16, w = d·(sc − 32)·(q − 4), q ∈ [0, 7] (2 low bits in qs, high bit in hmask)
 *   Q4_K 144 B: { fp16 d; fp16 dmin; u8 scales[12] (8 × 6-bit scale + 8 × 6-bit min); u8 qs[128] }
 *               8 sub-blocks of 32, w = d·sc·q − dmin·m, q ∈ [0, 15]
 *   Q6_K 210 B: { u8 ql[128]; u8 qh[64]; i8 scales[16]; fp16 d }
 *               16 sub-blocks of 16, w = d·sc·(q − 32), q ∈ [0, 63]
 */
import { f, fp16Bits, nearestInt, readHalf, toInt8, toUint8, writeHalf } from './float32.js';
import { makeQ3Quants, makeQkx2Quants, makeQxQuants } from './k-quant-search.js';

const QK = 256;

/** Q2/Q3 low-bit packing: 4 levels per byte, groups of 32 at strides of 32 within each 128. */
function pack2bit(L: Uint8Array | Int8Array, out: Uint8Array, o: number): void {
  for (let j = 0; j < QK; j += 128) {
    for (let l = 0; l < 32; l++) {
      out[o + j / 4 + l] = (L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6)) & 0xff;
    }
  }
}

// ------------------------------------------------------------------------------------------- Q2_K

export function quantizeQ2_K(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 84);
  const L = new Uint8Array(QK);
  const Laux = new Uint8Array(16);
  const weights = new Float32Array(16);
  const mins = new Float32Array(16);
  const scales = new Float32Array(16);
  const q4scale = 15;
  for (let i = 0; i < nb; i++) {
    const xb = i * QK;
    const o = i * 84;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[xb + 16 * j + l]!);
      const [s, m] = makeQkx2Quants(16, 3, x, xb + 16 * j, weights, L, 16 * j, Laux, -0.5, f(0.1), 15, true);
      scales[j] = s;
      mins[j] = m;
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    if (maxScale > 0) {
      const iscale = f(q4scale / maxScale);
      for (let j = 0; j < 16; j++) out[o + j] = toUint8(nearestInt(f(iscale * scales[j]!)));
      writeHalf(out, o + 80, fp16Bits(f(maxScale / q4scale)));
    } else {
      for (let j = 0; j < 16; j++) out[o + j] = 0;
      writeHalf(out, o + 80, fp16Bits(0));
    }
    if (maxMin > 0) {
      const iscale = f(q4scale / maxMin);
      for (let j = 0; j < 16; j++) out[o + j] = toUint8(out[o + j]! | (nearestInt(f(iscale * mins[j]!)) << 4));
      writeHalf(out, o + 82, fp16Bits(f(maxMin / q4scale)));
    } else {
      writeHalf(out, o + 82, fp16Bits(0));
    }
    const dAll = readHalf(out, o + 80);
    const dminAll = readHalf(out, o + 82);
    for (let j = 0; j < 16; j++) {
      const d = f(dAll * (out[o + j]! & 0xf));
      if (!d) continue;
      const dm = f(dminAll * (out[o + j]! >> 4));
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f(f(x[xb + 16 * j + ii]! + dm) / d));
        L[16 * j + ii] = Math.max(0, Math.min(3, l));
      }
    }
    pack2bit(L, out, o + 16);
  }
  return out;
}

export function dequantizeQ2_K(b: Uint8Array, out: Float32Array): Float32Array {
  const nb = out.length / QK;
  let y = 0;
  for (let i = 0; i < nb; i++) {
    const o = i * 84;
    const d = readHalf(b, o + 80);
    const min = readHalf(b, o + 82);
    let q = o + 16;
    let is = 0;
    for (let n = 0; n < QK; n += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const sc = b[o + is++]!;
          const dl = f(d * (sc & 0xf));
          const ml = f(min * (sc >> 4));
          for (let l = 0; l < 16; l++) out[y++] = f(f(dl * ((b[q + 16 * half + l]! >> shift) & 3)) - ml);
        }
      }
      q += 32;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------- Q3_K

/** The 6-bit scale j of a Q3_K block (0..63, stored with +32 offset). */
function q3Scale(b: Uint8Array, so: number, j: number): number {
  const low = j < 8 ? b[so + j]! & 0xf : b[so + j - 8]! >> 4;
  const high = (b[so + 8 + (j % 4)]! >> (2 * Math.floor(j / 4))) & 3;
  return low | (high << 4);
}

export function quantizeQ3_K(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 110);
  const L = new Int8Array(QK);
  const scales = new Float32Array(16);
  for (let i = 0; i < nb; i++) {
    const xb = i * QK;
    const o = i * 110;
    const so = o + 96; // scales
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(16, 4, x, xb + 16 * j, L, 16 * j);
      const s = Math.abs(scales[j]!);
      if (s > amax) {
        amax = s;
        maxScale = scales[j]!;
      }
    }
    if (maxScale) {
      const iscale = f(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        let l = toInt8(nearestInt(f(iscale * scales[j]!)));
        l = Math.max(-32, Math.min(31, l)) + 32;
        if (j < 8) out[so + j] = l & 0xf;
        else out[so + j - 8] = out[so + j - 8]! | ((l & 0xf) << 4);
        l >>= 4;
        out[so + (j % 4) + 8] = out[so + (j % 4) + 8]! | (l << (2 * Math.floor(j / 4)));
      }
      writeHalf(out, o + 108, fp16Bits(f(1 / iscale)));
    } else {
      writeHalf(out, o + 108, fp16Bits(0));
    }
    const dAll = readHalf(out, o + 108);
    for (let j = 0; j < 16; j++) {
      const sc = toInt8(q3Scale(out, so, j) - 32);
      const d = f(dAll * sc);
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f(x[xb + 16 * j + ii]! / d));
        L[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
      }
    }
    let m = 0;
    let hm = 1;
    for (let j = 0; j < QK; j++) {
      if (L[j]! > 3) {
        out[o + m] = out[o + m]! | hm;
        L[j] = L[j]! - 4;
      }
      if (++m === 32) {
        m = 0;
        hm <<= 1;
      }
    }
    pack2bit(L, out, o + 32);
  }
  return out;
}

export function dequantizeQ3_K(b: Uint8Array, out: Float32Array): Float32Array {
  const nb = out.length / QK;
  let y = 0;
  for (let i = 0; i < nb; i++) {
    const o = i * 110;
    const dAll = readHalf(b, o + 108);
    let q = o + 32;
    let m = 1;
    let is = 0;
    for (let n = 0; n < QK; n += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const dl = f(dAll * (q3Scale(b, o + 96, is++) - 32));
          for (let l = 0; l < 16; l++) {
            const idx = 16 * half + l;
            const v = ((b[q + idx]! >> shift) & 3) - (b[o + idx]! & m ? 0 : 4);
            out[y++] = f(dl * v);
          }
        }
        m <<= 1;
      }
      q += 32;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------- Q4_K

/** `get_scale_min_k4`: the 6-bit scale and min of sub-block j. */
export function scaleMinK4(b: Uint8Array, so: number, j: number): [number, number] {
  if (j < 4) return [b[so + j]! & 63, b[so + j + 4]! & 63];
  return [(b[so + j + 4]! & 0xf) | ((b[so + j - 4]! >> 6) << 4), (b[so + j + 4]! >> 4) | ((b[so + j]! >> 6) << 4)];
}

export function quantizeQ4_K(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 144);
  const L = new Uint8Array(QK);
  const Laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  for (let i = 0; i < nb; i++) {
    const xb = i * QK;
    const o = i * 144;
    const so = o + 4;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[xb + 32 * j + l]! * x[xb + 32 * j + l]!));
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[xb + 32 * j + l]!));
      const [s, m] = makeQkx2Quants(32, 15, x, xb + 32 * j, weights, L, 32 * j, Laux, -1, f(0.1), 20, false);
      scales[j] = s;
      mins[j] = m;
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, toUint8(nearestInt(f(invScale * scales[j]!))));
      const lm = Math.min(63, toUint8(nearestInt(f(invMin * mins[j]!))));
      if (j < 4) {
        out[so + j] = ls;
        out[so + j + 4] = lm;
      } else {
        out[so + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        out[so + j - 4] = out[so + j - 4]! | ((ls >> 4) << 6);
        out[so + j] = out[so + j]! | ((lm >> 4) << 6);
      }
    }
    writeHalf(out, o, fp16Bits(f(maxScale / 63)));
    writeHalf(out, o + 2, fp16Bits(f(maxMin / 63)));
    const dAll = readHalf(out, o);
    const dminAll = readHalf(out, o + 2);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(out, so, j);
      const d = f(dAll * sc);
      if (!d) continue;
      const dm = f(dminAll * m);
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(f(f(x[xb + 32 * j + ii]! + dm) / d));
        L[32 * j + ii] = Math.max(0, Math.min(15, l));
      }
    }
    let q = o + 16;
    for (let j = 0; j < QK; j += 64) {
      for (let l = 0; l < 32; l++) out[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
      q += 32;
    }
  }
  return out;
}

export function dequantizeQ4_K(b: Uint8Array, out: Float32Array): Float32Array {
  const nb = out.length / QK;
  let y = 0;
  for (let i = 0; i < nb; i++) {
    const o = i * 144;
    const d = readHalf(b, o);
    const min = readHalf(b, o + 2);
    let q = o + 16;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1v] = scaleMinK4(b, o + 4, is);
      const [sc2, m2v] = scaleMinK4(b, o + 4, is + 1);
      const d1 = f(d * sc1);
      const m1 = f(min * m1v);
      const d2 = f(d * sc2);
      const m2 = f(min * m2v);
      for (let l = 0; l < 32; l++) out[y++] = f(f(d1 * (b[q + l]! & 0xf)) - m1);
      for (let l = 0; l < 32; l++) out[y++] = f(f(d2 * (b[q + l]! >> 4)) - m2);
      q += 32;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------- Q6_K

export function quantizeQ6_K(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 210);
  const L = new Int8Array(QK);
  const scales = new Float32Array(16);
  for (let i = 0; i < nb; i++) {
    const xb = i * QK;
    const o = i * 210;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, xb + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      const a = Math.abs(scale);
      if (a > maxAbsScale) {
        maxAbsScale = a;
        maxScale = scale;
      }
    }
    if (maxAbsScale < f(1e-15)) continue; // all-zero block: every byte 0 (d = +0)
    const iscale = f(-128 / maxScale);
    writeHalf(out, o + 208, fp16Bits(f(1 / iscale)));
    for (let ib = 0; ib < 16; ib++) out[o + 192 + ib] = toUint8(Math.min(127, nearestInt(f(iscale * scales[ib]!))));
    const dAll = readHalf(out, o + 208);
    for (let j = 0; j < 16; j++) {
      const d = f(dAll * toInt8(out[o + 192 + j]!));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f(x[xb + 16 * j + ii]! / d));
        L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    let ql = o;
    let qh = o + 128;
    for (let j = 0; j < QK; j += 128) {
      for (let l = 0; l < 32; l++) {
        const a = L[j + l]!;
        const b2 = L[j + l + 32]!;
        const c = L[j + l + 64]!;
        const d = L[j + l + 96]!;
        out[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
        out[ql + l + 32] = (b2 & 0xf) | ((d & 0xf) << 4);
        out[qh + l] = ((a >> 4) | ((b2 >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6)) & 0xff;
      }
      ql += 64;
      qh += 32;
    }
  }
  return out;
}

export function dequantizeQ6_K(b: Uint8Array, out: Float32Array): Float32Array {
  const nb = out.length / QK;
  for (let i = 0; i < nb; i++) {
    const o = i * 210;
    const d = readHalf(b, o + 208);
    let ql = o;
    let qh = o + 128;
    let sc = o + 192;
    for (let n = 0; n < QK; n += 128) {
      const y = i * QK + n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = b[qh + l]!;
        const q1 = ((b[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = f(f(d * toInt8(b[sc + is]!)) * q1);
        out[y + l + 32] = f(f(d * toInt8(b[sc + is + 2]!)) * q2);
        out[y + l + 64] = f(f(d * toInt8(b[sc + is + 4]!)) * q3);
        out[y + l + 96] = f(f(d * toInt8(b[sc + is + 6]!)) * q4);
      }
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
  return out;
}
