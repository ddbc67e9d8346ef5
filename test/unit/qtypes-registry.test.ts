import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../../src/core/dtype.js';
import { UnsupportedError } from '../../src/core/errors.js';
import { fp16Ceil, maxQ, paramsFromRange, roundHalfEven } from '../../src/qtypes/int-grid.js';
import { packCodes, packedRowBytes, unpackCodes } from '../../src/formats/bitpack.js';
import {
  checkGroupable,
  dequantize,
  fallbackGrid,
  getQType,
  listQTypes,
  qtypeFor,
  qtypeId,
} from '../../src/qtypes/registry.js';

/** mulberry32: small seeded PRNG, uniform [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

/** Rows of awkward data: Gaussian, outliers, an all-zero row, tiny values, all-positive, all-negative, constant. */
function nastyWeights(n: number, k: number, seed: number): Float32Array {
  const rand = prng(seed);
  const w = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) {
      let v = gaussian(rand) * 0.05;
      switch (r % 8) {
        case 1: if (c % 37 === 5) v *= 200; break; // outliers
        case 2: v = 0; break; // all-zero
        case 3: v *= 1e-6; break; // tiny (subnormal fp16 scales)
        case 4: v = Math.abs(v); break; // all-positive
        case 5: v = -Math.abs(v) - 1; break; // all-negative
        case 6: v = 0.3; break; // constant
        default:
      }
      w[r * k + c] = v;
    }
  }
  return w;
}

const isFp16 = (x: number): boolean => f16BitsToF32(f32ToF16Bits(x)) === x;

describe('int grid helpers', () => {
  it('roundHalfEven rounds ties to even (torch.round), everything else to nearest', () => {
    const cases: Array<[number, number]> = [[0.5, 0], [1.5, 2], [2.5, 2], [-0.5, 0], [-1.5, -2], [-2.5, -2], [2.4999, 2], [2.5001, 3], [-7.5, -8], [7.5, 8], [3, 3]];
    for (const [x, want] of cases) expect(roundHalfEven(x) === want || (want === 0 && roundHalfEven(x) === 0)).toBe(true);
  });

  it('fp16Ceil returns the smallest fp16 value ≥ x', () => {
    const rand = prng(1);
    for (let i = 0; i < 2000; i++) {
      const x = Math.exp((rand() - 0.7) * 30); // ~1e-9 .. 1e4
      if (x > 65504 || x < 2 ** -24) continue;
      const c = fp16Ceil(x);
      expect(isFp16(c)).toBe(true);
      expect(c).toBeGreaterThanOrEqual(x);
      const below = f16BitsToF32(f32ToF16Bits(c) - 1);
      expect(below).toBeLessThan(x);
    }
  });

  it('params: sym zero is 2^(bits−1); an all-zero range gives a finite scale; huge ranges are refused', () => {
    expect(paramsFromRange(-1, 2, { bits: 4, groupSize: 32, sym: true })).toEqual({ scale: fp16Ceil(4 / 15), zero: 8 });
    const z = paramsFromRange(0, 0, { bits: 3, groupSize: 32, sym: false });
    expect(Number.isFinite(z.scale) && z.scale > 0).toBe(true);
    expect(() => paramsFromRange(-1e9, 1e9, { bits: 2, groupSize: 32, sym: false }, 'x')).toThrow(UnsupportedError);
  });
});

describe('quant type registry', () => {
  const types = listQTypes();

  it('holds int{2,3,4,8} × {g32,g64,g128,pc} × {sym,asym} with unique ids and numeric ids', () => {
    expect(types).toHaveLength(32);
    expect(new Set(types.map((t) => t.id)).size).toBe(32);
    expect(new Set(types.map((t) => t.numId)).size).toBe(32);
    for (const id of ['int4_g128_asym', 'int3_g128_sym', 'int8_pc_sym', 'int2_g32_asym']) expect(getQType(id).id).toBe(id);
    expect(() => getQType('q4_0')).toThrow(UnsupportedError);
    expect(() => qtypeFor({ bits: 4, groupSize: 16, sym: true })).toThrow(UnsupportedError);
    expect(getQType('int4_g128_asym').bitsPerWeight(4096)).toBe(4 + 24 / 128);
    expect(getQType('int4_g128_sym').bitsPerWeight(4096)).toBe(4 + 16 / 128);
  });

  it('refuses k not divisible by the group size with a typed error naming the tensor and the fix', () => {
    const t = getQType('int4_g128_asym');
    let err: unknown;
    try {
      t.bytes(64, 172, 'model.layers.0.mlp.down_proj.weight');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedError);
    const u = err as UnsupportedError;
    expect(u.code).toBe('E_GROUP_SIZE');
    expect(u.message).toContain('model.layers.0.mlp.down_proj.weight');
    expect(u.message).toContain('172');
    expect(u.hint).toContain('per-channel');
    expect(() => checkGroupable({ bits: 4, groupSize: 128, sym: false }, 192)).toThrow(/group size 128/);
    try {
      checkGroupable({ bits: 4, groupSize: 128, sym: false }, 192);
    } catch (e) {
      expect((e as UnsupportedError).hint).toContain('--group-size 64');
    }
    const fb = fallbackGrid(t.grid, 172);
    expect(fb).toEqual({ bits: 4, groupSize: -1, sym: false });
    expect(qtypeFor(fb).bytes(64, 172)).toBe(64 * (86 + 2 + 1));
    expect(fallbackGrid(t.grid, 256)).toBe(t.grid);
  });

  describe.each(types.map((t) => [t.id, t] as const))('%s', (id, t) => {
    const { bits, sym } = t.grid;
    const mq = maxQ(bits);

    it('round trip: codes in range, fp16 scales, sym zero constant, |w − ŵ| ≤ scale/2, no NaN', () => {
      for (const k of [256, 384]) {
        const n = 16;
        const w = nastyWeights(n, k, k + bits);
        const q = t.quantizeRef(w, n, k, 'w');
        expect(q.qtype).toBe(id);
        expect(q.numGroups).toBe(t.grid.groupSize === -1 ? 1 : k / t.grid.groupSize);
        const wq = t.dequantize(q);
        for (const c of q.codes) expect(c).toBeLessThanOrEqual(mq);
        for (let i = 0; i < q.scales.length; i++) {
          expect(q.scales[i]).toBeGreaterThan(0);
          expect(isFp16(q.scales[i]!)).toBe(true);
          expect(q.zeros[i]).toBeLessThanOrEqual(mq);
          if (sym) expect(q.zeros[i]).toBe(2 ** (bits - 1));
        }
        for (let r = 0; r < n; r++) {
          for (let c = 0; c < k; c++) {
            const s = q.scales[r * q.numGroups + Math.floor(c / q.groupSize)]!;
            const e = Math.abs(w[r * k + c]! - wq[r * k + c]!);
            expect(Number.isFinite(wq[r * k + c]!)).toBe(true);
            expect(e).toBeLessThanOrEqual(t.tolerance.maxAbsErr * s * (1 + 1e-9));
          }
        }
        // the all-zero row comes back exactly zero
        for (let c = 0; c < k; c++) expect(wq[2 * k + c]).toBe(0);
        expect(dequantize(q)).toEqual(wq);
      }
    });

    it('relative RMSE on N(0,1) weights stays within tolerance.rmse', () => {
      const n = 32;
      const k = 1024;
      const rand = prng(99 + bits);
      const w = Float32Array.from({ length: n * k }, () => gaussian(rand));
      const wq = t.dequantize(t.quantizeRef(w, n, k));
      let e = 0;
      let s = 0;
      for (let i = 0; i < n * k; i++) {
        e += (w[i]! - wq[i]!) ** 2;
        s += w[i]! ** 2;
      }
      expect(Math.sqrt(e / s)).toBeLessThanOrEqual(t.tolerance.rmse);
    });

    it('quantizeGroupRef equals the matrix quantizer on each group', () => {
      const k = 256;
      const w = nastyWeights(8, k, 5);
      const q = t.quantizeRef(w, 8, k);
      const g = q.groupSize;
      const codes = new Uint8Array(g);
      for (let r = 0; r < 8; r++) {
        for (let gi = 0; gi < q.numGroups; gi++) {
          const p = t.quantizeGroupRef(w.subarray(r * k + gi * g, r * k + (gi + 1) * g), codes);
          expect(p.scale).toBe(q.scales[r * q.numGroups + gi]);
          expect(p.zero).toBe(q.zeros[r * q.numGroups + gi]);
          expect(codes).toEqual(q.codes.subarray(r * k + gi * g, r * k + (gi + 1) * g));
        }
      }
    });

    it('bytes() is the byte count of the packed layout (codes + fp16 scales + u8 zeros when asym)', () => {
      for (const [n, k] of [[3, 256], [5, 384], [1, 1024]] as const) {
        const w = nastyWeights(n, k, 11);
        const q = t.quantizeRef(w, n, k);
        const packed = packCodes(q.codes, n, k, bits);
        expect(packed.length).toBe(n * packedRowBytes(k, bits));
        expect(unpackCodes(packed, n, k, bits)).toEqual(q.codes);
        const scaleBytes = new Uint16Array(q.scales.length).byteLength;
        const zeroBytes = sym ? 0 : q.zeros.byteLength;
        expect(t.bytes(n, k)).toBe(packed.length + scaleBytes + zeroBytes);
        expect(t.bitsPerWeight(k)).toBeCloseTo((8 * t.bytes(1, k)) / k, 12);
      }
    });

    it('qtypeFor / qtypeId round trip', () => {
      expect(qtypeId(t.grid)).toBe(id);
      expect(qtypeFor({ ...t.grid })).toBe(t);
    });
  });

  it('dequantize honours gIdx (act-order group map)', () => {
    const t = getQType('int4_g32_sym');
    const n = 2;
    const k = 64;
    const w = nastyWeights(n, k, 3);
    const q = t.quantizeRef(w, n, k);
    // swap the two groups' parameters and point each column at the other group
    const swapped = { ...q, scales: q.scales.slice(), zeros: q.zeros.slice(), gIdx: Int32Array.from({ length: k }, (_, c) => 1 - Math.floor(c / 32)) };
    for (let r = 0; r < n; r++) {
      swapped.scales[r * 2] = q.scales[r * 2 + 1]!;
      swapped.scales[r * 2 + 1] = q.scales[r * 2]!;
    }
    expect(t.dequantize(swapped)).toEqual(t.dequantize(q));
  });

  it('the layout bytes() counts (formats/bitpack): 3-bit codes straddle bytes, rows pad to whole bytes', () => {
    const codes = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 0, 5, 7, 1]); // one row, k = 11 -> 33 bits -> 5 bytes
    const p = packCodes(codes, 1, 11, 3);
    expect(p.length).toBe(5);
    expect(p[0]).toBe(1 | (2 << 3) | ((3 & 3) << 6));
    expect(unpackCodes(p, 1, 11, 3)).toEqual(codes);
    expect(packCodes(Uint8Array.from([1, 15, 3]), 1, 3, 4)).toEqual(Uint8Array.from([0xf1, 0x03]));
  });
});
