/**
 * Low-bit kernels: the WASM LUT and int8-dot kernels against their scalar oracle (tight), and both
 * against "dequantize, then fp32 matmul" within a bound derived from the activation-side quantization:
 *
 *   LUT:  every table entry S (a signed sum of 4 activations) is stored as Q·t with t = max Σ|x_q| / 63 (LUT_TABLE_MAX)
 *         per block, so |S − Q·t| ≤ t/2. A row's block sum is ½·Σ_planes 2^p Σ_j S_j, so its error is at
 *         most ½ · (2^b − 1) · (L/4) · t/2 times the weight scale s:  Σ_blocks s · t · (2^b − 1) · L / 16.
 *   int8: |x − q·t| ≤ t/2 with t = max|x| / 127 per block:  Σ_c |ŵ_c| · t_block(c) / 2.
 *
 * Both bounds are worst cases (the typical error is ~√(#terms) smaller; see bench:kernels for measured
 * mean errors), widened by 1% plus fp32 rounding slack (1e-5 of Σ|ŵ·x|).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MatmulBackend, QuantWeightHandle } from '../../src/kernels/backend.js';
import { kernelScale, lowbitMatmulRef, lutTablesRef, q8ActsRef } from '../../src/kernels/lowbit-oracle.js';
import { blockLength, gatherActivations, makePlan, type LowbitKernel, type LowbitPlan } from '../../src/kernels/lowbit-plan.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { dequantize } from '../../src/qtypes/registry.js';
import type { Bits, QuantizedWeight } from '../../src/qtypes/types.js';
import { gaussian, makeQuantWeight, prng } from './lowbit-weights.js';

let wasm1: MatmulBackend;
let wasm2: MatmulBackend;
const scalar = createScalarBackend();

beforeAll(async () => {
  wasm1 = await createWasmBackend({ threads: 1 });
  wasm2 = await createWasmBackend({ threads: 2, spinMicros: 0 });
});
afterAll(async () => {
  await wasm1?.dispose();
  await wasm2?.dispose();
});

/** Reference Y = X · Ŵᵀ in float64 from the dequantized weight, and Σ|ŵ·x| per output. */
function denseRef(wd: Float32Array, x: Float32Array, m: number, n: number, k: number): { y: Float64Array; mag: Float64Array } {
  const y = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let r = 0; r < n; r++) {
      let s = 0;
      let a = 0;
      for (let c = 0; c < k; c++) {
        const p = x[i * k + c]! * wd[r * k + c]!;
        s += p;
        a += Math.abs(p);
      }
      y[i * n + r] = s;
      mag[i * n + r] = a;
    }
  }
  return { y, mag };
}

/** The documented worst-case bound of |kernel − dequantized fp32| per output (see the file comment). */
function quantBound(q: QuantizedWeight, plan: LowbitPlan, wd: Float32Array, x: Float32Array, m: number): Float64Array {
  const { n, k, kPad, numBlocks, blockLen, blockGroup, perm, bits } = plan;
  const xs = new Float32Array(m * kPad);
  gatherActivations(plan, x, m, xs);
  const bound = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const acts = plan.kernel === 'lut' ? lutTablesRef(plan, xs, i * kPad) : q8ActsRef(plan, xs, i * kPad);
    for (let r = 0; r < n; r++) {
      let e = 0;
      for (let b = 0; b < numBlocks; b++) {
        const L = blockLength(plan, b);
        if (plan.kernel === 'lut') {
          const s = kernelScale(q.scales[r * q.numGroups + blockGroup[b]!]!);
          const t = 2 * ('halfScale' in acts ? acts.halfScale[b]! : 0);
          e += (s * t * (2 ** bits - 1) * L) / 16;
        } else {
          const t = 'scale' in acts ? acts.scale[b]! : 0;
          for (let p = b * blockLen; p < Math.min(b * blockLen + L, k); p++) {
            e += (Math.abs(wd[r * k + (perm ? perm[p]! : p)]!) * t) / 2;
          }
        }
      }
      bound[i * n + r] = e;
    }
  }
  return bound;
}

interface Case {
  bits: Bits;
  groupSize: number;
  sym: boolean;
  actOrder: boolean;
  kernel: LowbitKernel;
}

const cases: Case[] = [];
for (const bits of [2, 3, 4, 8] as Bits[]) {
  for (const groupSize of [32, 64, 128, -1]) {
    for (const sym of [false, true]) {
      for (const actOrder of groupSize === -1 ? [false] : [false, true]) {
        for (const kernel of (bits <= 4 ? ['lut', 'int8'] : ['int8']) as LowbitKernel[]) {
          cases.push({ bits, groupSize, sym, actOrder, kernel });
        }
      }
    }
  }
}

const name = (c: Case): string =>
  `${c.kernel} int${c.bits} ${c.groupSize === -1 ? 'pc' : `g${c.groupSize}`} ${c.sym ? 'sym' : 'asym'}${c.actOrder ? ' act-order' : ''}`;

describe('low-bit kernels: WASM vs scalar oracle vs dequantize-then-fp32', () => {
  it.each(cases)('$kernel $bits-bit g$groupSize sym=$sym actOrder=$actOrder', (c) => {
    // per-channel: k not a multiple of 32 (padding); grouped: 3 groups of 128 or more groups
    const k = c.groupSize === -1 ? 172 : 384;
    const n = 37; // not a multiple of either tile height (32, 4)
    const seed = c.bits * 1000 + (c.groupSize + 1) * 10 + (c.sym ? 1 : 0) + (c.actOrder ? 5 : 0);
    const q = makeQuantWeight({ ...c, n, k, seed });
    const wd = dequantize(q);
    const plan = makePlan(q, c.kernel);
    for (const m of [1, 7]) {
      const x = gaussian(prng(seed + m), m * k);
      const oracle = new Float32Array(m * n);
      const omag = new Float64Array(m * n);
      lowbitMatmulRef(q, plan, x, m, oracle, omag);
      const dense = denseRef(wd, x, m, n, k);
      const bound = quantBound(q, plan, wd, x, m);
      for (const be of [scalar, wasm1, wasm2]) {
        const h: QuantWeightHandle = be.prepareQuantized(q, { kernel: c.kernel });
        expect(h.kernel).toBe(c.kernel);
        expect(h.bytes).toBe(plan.packedBytes + (plan.perm ? 4 * k : 0));
        const y = be.matmulQuantized(x, m, h, new Float32Array(m * n));
        be.freeWeight(h);
        for (let j = 0; j < m * n; j++) {
          const tight = 1e-6 * (plan.numBlocks + 8) * omag[j]! + 1e-30;
          const errO = Math.abs(y[j]! - oracle[j]!);
          if (!(errO <= tight)) throw new Error(`${name(c)} ${be.name}/${be.threads} m=${m}: y[${j}]=${y[j]} oracle ${oracle[j]} (|err| ${errO} > ${tight})`);
          const loose = 1.01 * bound[j]! + 1e-5 * dense.mag[j]! + 1e-30;
          const errD = Math.abs(y[j]! - dense.y[j]!);
          if (!(errD <= loose)) throw new Error(`${name(c)} ${be.name} m=${m}: y[${j}]=${y[j]} dequantized fp32 ${dense.y[j]} (|err| ${errD} > bound ${loose})`);
        }
      }
    }
  });
});

describe('low-bit kernels: defaults, act-order, errors', () => {
  it('picks LUT for 2/3/4-bit and int8-dot for 8-bit by default', () => {
    for (const bits of [2, 3, 4, 8] as Bits[]) {
      const q = makeQuantWeight({ bits, groupSize: 32, sym: false, actOrder: false, n: 4, k: 64, seed: bits });
      expect(wasm1.prepareQuantized(q).kernel).toBe(bits === 8 ? 'int8' : 'lut');
      expect(scalar.prepareQuantized(q).kernel).toBe(bits === 8 ? 'int8' : 'lut');
    }
  });

  it("the plan's kernel format argument: int8 layout nibbles (≤ 4-bit), 8-bit codes, 8-bit per channel", () => {
    const w = (bits: Bits, groupSize: number) => makeQuantWeight({ bits, groupSize, sym: false, actOrder: false, n: 8, k: 256, seed: 3 });
    expect(makePlan(w(4, 32), 'int8').fmt).toBe(1);
    expect(makePlan(w(8, 32), 'int8').fmt).toBe(0);
    expect(makePlan(w(8, -1), 'int8').fmt).toBe(2);
    expect(makePlan(w(2, 64), 'lut').fmt).toBe(2);
  });

  it('a symmetric LUT weight drops the zero terms (Q4_0 grid: 4.5 bits per weight) and gives the same product as with them', () => {
    const q = makeQuantWeight({ bits: 4, groupSize: 32, sym: true, actOrder: false, n: 64, k: 256, seed: 31 });
    const plan = makePlan(q, 'lut');
    expect(plan.lutSym).toBe(true);
    expect((plan.packedBytes * 8) / (64 * 256)).toBe(4.5);
    // the same weight with the zero points stored: one group's zero moved by ±1 and its codes with it (every
    // product unchanged) forces the layout with zero terms
    const zeros = Uint8Array.from(q.zeros);
    const codes = Uint8Array.from(q.codes);
    const g = Array.from({ length: 64 }, (_, r) => r).find((r) => {
      const c = codes.subarray(r * 256, r * 256 + 32);
      return Math.max(...c) < 15 || Math.min(...c) > 0;
    })!;
    expect(g).toBeDefined();
    const grp = codes.subarray(g * 256, g * 256 + 32);
    const d = Math.max(...grp) < 15 ? 1 : -1;
    for (let c = 0; c < 32; c++) grp[c] = grp[c]! + d;
    zeros[g * 8] = zeros[g * 8]! + d;
    const asym: QuantizedWeight = { ...q, zeros, codes };
    expect(makePlan(asym, 'lut').lutSym).toBe(false);
    expect([plan.fmt, makePlan(asym, 'lut').fmt]).toEqual([4 + 16, 4]); // the kernels' format argument
    expect(makePlan(asym, 'lut').packedBytes).toBe(plan.packedBytes + (64 / 32) * (256 / 32) * 64);
    const x = gaussian(prng(6), 3 * 256);
    for (const be of [wasm1, wasm2]) {
      for (const m of [1, 3]) {
        const a = be.matmulQuantized(x, m, be.prepareQuantized(q));
        const b = be.matmulQuantized(x, m, be.prepareQuantized(asym));
        // bit-identical outside row g; row g's codes differ, so its int8-table rounding may differ slightly
        for (let i = 0; i < m * 64; i++) {
          if (i % 64 === g) expect(Math.abs(b[i]! - a[i]!)).toBeLessThan(2e-2 * (1 + Math.abs(a[i]!)));
          else expect(b[i]).toBe(a[i]);
        }
      }
    }
  });

  it('an act-order weight gives the same product as its column-sorted equivalent', () => {
    const q = makeQuantWeight({ bits: 4, groupSize: 32, sym: false, actOrder: true, n: 8, k: 128, seed: 77 });
    const plan = makePlan(q, 'lut');
    const perm = plan.perm!;
    // the same weight with its columns physically sorted by group, gIdx dropped
    const codes = new Uint8Array(q.codes.length);
    for (let r = 0; r < q.n; r++) for (let p = 0; p < q.k; p++) codes[r * q.k + p] = q.codes[r * q.k + perm[p]!]!;
    const sorted: QuantizedWeight = { ...q, codes, gIdx: null };
    const x = gaussian(prng(5), q.k);
    const xSorted = new Float32Array(q.k);
    for (let p = 0; p < q.k; p++) xSorted[p] = x[perm[p]!]!;
    const a = wasm1.matmulQuantized(x, 1, wasm1.prepareQuantized(q));
    const b = wasm1.matmulQuantized(xSorted, 1, wasm1.prepareQuantized(sorted));
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('rejects handles of another backend, freed handles, LUT for 8-bit and unsupported group sizes', () => {
    const q = makeQuantWeight({ bits: 4, groupSize: 32, sym: true, actOrder: false, n: 4, k: 64, seed: 3 });
    const h = wasm1.prepareQuantized(q);
    expect(() => wasm2.matmulQuantized(new Float32Array(64), 1, h)).toThrow(/not prepared by this wasm backend/);
    expect(() => scalar.matmulQuantized(new Float32Array(64), 1, h)).toThrow(/not prepared by this scalar backend/);
    wasm1.freeWeight(h);
    expect(() => wasm1.matmulQuantized(new Float32Array(64), 1, h)).toThrow(/already freed/);
    const q8 = makeQuantWeight({ bits: 8, groupSize: 32, sym: true, actOrder: false, n: 4, k: 64, seed: 3 });
    expect(() => wasm1.prepareQuantized(q8, { kernel: 'lut' })).toThrow(/LUT kernel runs 2\/3\/4-bit/);
    expect(() => wasm1.prepareQuantized({ ...q, groupSize: 48, numGroups: 2, k: 96, codes: new Uint8Array(4 * 96) })).toThrow(/group size 48/);
    expect(() => wasm1.matmulQuantized(new Float32Array(10), 1, wasm1.prepareQuantized(q))).toThrow(/expected at least m\*k/);
  });

  it('2 threads (row tiles split over the pool) give bit-identical results to 1 thread', () => {
    for (const [bits, kernel] of [[2, 'lut'], [4, 'lut'], [4, 'int8'], [8, 'int8']] as const) {
      const q = makeQuantWeight({ bits, groupSize: 64, sym: false, actOrder: true, n: 300, k: 256, seed: 21 + bits });
      for (const m of [1, 3]) {
        const x = gaussian(prng(m), m * 256);
        const a = wasm1.matmulQuantized(x, m, wasm1.prepareQuantized(q, { kernel }));
        const b = wasm2.matmulQuantized(x, m, wasm2.prepareQuantized(q, { kernel }));
        expect(Array.from(b)).toEqual(Array.from(a));
        expect(a.some((v) => v !== 0)).toBe(true);
      }
    }
  });

  it('zero activations give exactly zero (no NaN from empty table scales)', () => {
    const q = makeQuantWeight({ bits: 2, groupSize: 64, sym: false, actOrder: false, n: 33, k: 128, seed: 9 });
    for (const kernel of ['lut', 'int8'] as const) {
      const y = wasm2.matmulQuantized(new Float32Array(2 * 128), 2, wasm2.prepareQuantized(q, { kernel }));
      expect(Array.from(y).every((v) => v === 0)).toBe(true);
    }
  });
});

describe('packed layout version', () => {
  it('the kernels build reads the layout this code packs; another or an unversioned build is refused with the fix', async () => {
    const { checkPackedLayout } = await import('../../src/kernels/wasm-backend-core.js');
    const { PACKED_LAYOUT } = await import('../../src/kernels/lowbit-plan.js');
    const { wasm } = await import('../../src/kernels/wasm-api.js');
    const { loadKernelModule } = await import('../../src/kernels/wasm-backend.js');
    const module = await loadKernelModule();
    const memory = new wasm.Memory({ initial: 64, maximum: 128, shared: true });
    const inst = await wasm.instantiate(module, { env: { memory, abort() {} } });
    const built = (inst.exports as Record<string, { value: unknown }>).PACKED_LAYOUT;
    expect(built.value).toBe(PACKED_LAYOUT);
    expect(() => checkPackedLayout({ PACKED_LAYOUT: built as never })).not.toThrow();
    expect(() => checkPackedLayout({ PACKED_LAYOUT: { value: PACKED_LAYOUT + 1 } as never })).toThrow(new RegExp(`packed layout v${PACKED_LAYOUT + 1}, but this code packs v${PACKED_LAYOUT}`));
    expect(() => checkPackedLayout({})).toThrow(/unversioned/);
  });
});
