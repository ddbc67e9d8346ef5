import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeqError } from '../../src/core/errors.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { wasm } from '../../src/kernels/wasm-api.js';
import { createWasmBackend, loadKernelModule, PARALLEL_MIN_MACS } from '../../src/kernels/wasm-backend.js';
import { ThreadPool } from '../../src/kernels/thread-pool.js';
import { WASM_ALIGN, WasmHeap } from '../../src/kernels/wasm-memory.js';

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

function randomMatrix(rand: () => number, len: number, scale = 1): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

/**
 * Asserts |got - want| ≤ rtol · Σ_k |a_ik|·|b_jk| (+ a denormal-sized floor) element-wise. The
 * rounding error of an fp32 dot product of length k is typically ~√k·2⁻²⁴ of that sum (≈ 1.3e-6 for
 * k = 700, any summation order), so 1e-5 leaves headroom while any indexing/packing bug is O(1).
 */
function expectClose(
  got: Float32Array,
  want: Float32Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  what: string,
  rtol = 1e-5,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let mag = 0;
      for (let p = 0; p < k; p++) mag += Math.abs(a[i * k + p]! * b[j * k + p]!);
      const g = got[i * n + j]!;
      const w = want[i * n + j]!;
      const err = Math.abs(g - w);
      if (!(err <= rtol * mag + 1e-30)) {
        throw new Error(`${what}: Y[${i},${j}] = ${g}, oracle ${w}, |err| ${err} > ${rtol} * ${mag}`);
      }
    }
  }
}

// [m, n, k]: GEMV, tiny, awkward (not multiples of 4/5/8/16), K-blocked (k > 256), M-blocked (m > 200)
const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1],
  [1, 8, 4],
  [1, 7, 3],
  [1, 172, 172],
  [1, 33, 700],
  [1, 4096, 64],
  [1, 100, 513],
  [1, 1001, 300],
  [2, 1001, 300],
  [2, 9, 17],
  [3, 5, 1],
  [3, 1, 19],
  [3, 64, 64],
  [4, 12, 31],
  [5, 8, 256],
  [6, 17, 257],
  [7, 13, 9],
  [11, 1, 100],
  [16, 172, 29],
  [29, 31, 172],
  [64, 300, 500],
  [100, 40, 1],
  [201, 24, 300],
  [300, 40, 33],
  [300, 700, 500],
  [512, 9, 15],
];

describe('scalar oracle', () => {
  it('agrees with an independent float64 dot product (rounded once to f32)', () => {
    const rand = prng(7);
    const sb = createScalarBackend();
    for (const [m, n, k] of [
      [1, 5, 3],
      [4, 6, 37],
      [9, 2, 300],
    ] as const) {
      const a = randomMatrix(rand, m * k);
      const b = randomMatrix(rand, n * k);
      const y = sb.matmulTransient(a, m, b, n, k);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          // reverse summation order, explicit Float64Array accumulation
          const acc = new Float64Array(1);
          for (let p = k - 1; p >= 0; p--) acc[0] += a[i * k + p]! * b[j * k + p]!;
          expect(Math.abs(y[i * n + j]! - Math.fround(acc[0]!))).toBeLessThanOrEqual(Math.abs(acc[0]!) * 2 ** -23 + 1e-30);
        }
      }
    }
  });

  it('prepared and transient paths agree', () => {
    const rand = prng(8);
    const sb = createScalarBackend();
    const a = randomMatrix(rand, 3 * 10);
    const b = randomMatrix(rand, 4 * 10);
    expect(sb.matmul(a, 3, sb.prepareWeight(b, 4, 10))).toEqual(sb.matmulTransient(a, 3, b, 4, 10));
  });
});

describe.each([1, 2, 3])('wasm backend, %i thread(s)', (threads) => {
  let be: MatmulBackend;
  const sb = createScalarBackend();
  beforeAll(async () => {
    be = await createWasmBackend({ threads });
  });
  afterAll(async () => {
    await be?.dispose();
  });

  it('reports its name and thread count', () => {
    expect(be.name).toBe('wasm');
    expect(be.threads).toBe(threads);
  });

  // the 3-thread backend only runs the shapes big enough to be split
  const shapes = threads === 3 ? SHAPES.filter(([m, n, k]) => m * n * k >= PARALLEL_MIN_MACS) : SHAPES;
  it.each(shapes)('matmul and matmulTransient match the oracle for m=%i n=%i k=%i', (m, n, k) => {
    const rand = prng(1000 * m + 31 * n + k);
    const x = randomMatrix(rand, m * k);
    const w = randomMatrix(rand, n * k, 0.5);
    const want = sb.matmulTransient(x, m, w, n, k);
    const h = be.prepareWeight(w, n, k);
    expect(h.n).toBe(n);
    expect(h.k).toBe(k);
    expectClose(be.matmul(x, m, h), want, x, w, m, n, k, 'matmul');
    // into a caller-provided (oversized) output; a second call reuses the scratch buffers
    const out = new Float32Array(m * n + 5).fill(123);
    expect(be.matmul(x, m, h, out)).toBe(out);
    expectClose(out, want, x, w, m, n, k, 'matmul(out)');
    expect(out[m * n]).toBe(123);
    be.freeWeight(h);
    expectClose(be.matmulTransient(x, m, w, n, k), want, x, w, m, n, k, 'matmulTransient');
  });

  it('handles many weights, freeing and re-preparing (allocator reuse)', () => {
    const rand = prng(99);
    const ws = [17, 64, 5, 130].map((n) => ({ n, k: 40, data: randomMatrix(rand, n * 40) }));
    const x = randomMatrix(rand, 6 * 40);
    for (let round = 0; round < 3; round++) {
      const hs = ws.map((w) => be.prepareWeight(w.data, w.n, w.k));
      hs.forEach((h, i) => {
        const w = ws[i]!;
        expectClose(be.matmul(x, 6, h), sb.matmulTransient(x, 6, w.data, w.n, w.k), x, w.data, 6, w.n, w.k, `weight ${i}`);
      });
      for (const h of hs.reverse()) be.freeWeight(h);
    }
  });

  it('uses the leading m·k values of a longer input and supports degenerate sizes', () => {
    const rand = prng(5);
    const x = randomMatrix(rand, 3 * 8 + 11);
    const w = randomMatrix(rand, 10 * 8);
    const h = be.prepareWeight(w, 10, 8);
    expectClose(be.matmul(x, 3, h), sb.matmulTransient(x, 3, w, 10, 8), x, w, 3, 10, 8, 'long x');
    expect(be.matmul(new Float32Array(0), 0, h)).toHaveLength(0);
    const h0 = be.prepareWeight(new Float32Array(0), 4, 0);
    expect(Array.from(be.matmul(new Float32Array(0), 2, h0, new Float32Array(8).fill(7)))).toEqual(new Array(8).fill(0));
    expect(be.matmulTransient(x, 3, w, 0, 8)).toHaveLength(0);
  });

  it('propagates NaN to exactly the affected row', () => {
    const rand = prng(6);
    const [m, n, k] = [7, 20, 30];
    const x = randomMatrix(rand, m * k);
    x[2 * k + 5] = Number.NaN;
    const w = randomMatrix(rand, n * k);
    const y = be.matmul(x, m, be.prepareWeight(w, n, k));
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) expect(Number.isNaN(y[i * n + j]!)).toBe(i === 2);
    }
  });

  it('rejects bad shapes, foreign and freed handles', () => {
    const w = new Float32Array(12);
    const h = be.prepareWeight(w, 3, 4);
    expect(() => be.matmul(new Float32Array(7), 2, h)).toThrow(EdgeqError);
    expect(() => be.matmul(new Float32Array(8), 2, h, new Float32Array(5))).toThrow(/output/);
    expect(() => be.prepareWeight(w, 4, 4)).toThrow(/weight/);
    expect(() => be.matmulTransient(new Float32Array(8), 2, w, 4, 4)).toThrow(/B has/);
    expect(() => be.matmul(new Float32Array(8), 1.5, h)).toThrow(/non-negative integer/);
    expect(() => be.matmul(new Float32Array(8), 2, sb.prepareWeight(w, 3, 4))).toThrow(/not prepared by this/);
    be.freeWeight(h);
    be.freeWeight(h); // idempotent
    expect(() => be.matmul(new Float32Array(8), 2, h)).toThrow(/freed/);
  });
});

describe('wasm backend under many back-to-back calls', () => {
  it('stays correct over random shapes alternating between serial and parallel dispatch', async () => {
    const be = await createWasmBackend({ threads: 2, spinMicros: 50 });
    const sb = createScalarBackend();
    const rand = prng(4242);
    try {
      for (let it = 0; it < 150; it++) {
        const m = 1 + Math.floor(rand() * 40);
        const n = 1 + Math.floor(rand() * 300);
        const k = 1 + Math.floor(rand() * 200);
        const x = randomMatrix(rand, m * k);
        const w = randomMatrix(rand, n * k);
        const want = sb.matmulTransient(x, m, w, n, k);
        if (it % 2 === 0) {
          const h = be.prepareWeight(w, n, k);
          expectClose(be.matmul(x, m, h), want, x, w, m, n, k, `iteration ${it} matmul`);
          be.freeWeight(h);
        } else {
          expectClose(be.matmulTransient(x, m, w, n, k), want, x, w, m, n, k, `iteration ${it} transient`);
        }
        // sometimes let the worker fall asleep so the Atomics.wait/notify path runs too
        if (it % 10 === 0) await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      await be.dispose();
    }
  });
});

describe('ThreadPool', () => {
  it('reports a trap on a worker as E_WASM_KERNEL and keeps working afterwards', async () => {
    const module = await loadKernelModule();
    const memory = new wasm.Memory({ initial: 16, maximum: 65536, shared: true });
    const pool = await ThreadPool.create(module, memory, 1, ['gemv']);
    try {
      const f32 = new Float32Array(memory.buffer);
      // gemv(x, w, y, k, p0, p1): one 8-wide panel, k = 1  ->  y[j] = x[0] * w[j]
      const [x, w, y] = [1024, 2048, 4096];
      f32[x >> 2] = 2;
      for (let j = 0; j < 8; j++) f32[(w >> 2) + j] = j;
      const noop = (): void => {};
      // out-of-bounds addresses trap inside the worker
      expect(() => pool.run([{ fn: 0, args: [] }, { fn: 0, args: [-64, w, y, 1, 0, 1] }], noop)).toThrow(
        expect.objectContaining({ code: 'E_WASM_KERNEL' }),
      );
      pool.run([{ fn: 0, args: [] }, { fn: 0, args: [x, w, y, 1, 0, 1] }], noop);
      expect(Array.from(f32.subarray(y >> 2, (y >> 2) + 8))).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
    } finally {
      await pool.dispose();
    }
    expect(() => pool.run([], () => {})).toThrow(expect.objectContaining({ code: 'E_DISPOSED' }));
  });
});

describe('wasm backend lifecycle', () => {
  it('throws E_DISPOSED after dispose; dispose is idempotent', async () => {
    const be = await createWasmBackend({ threads: 2 });
    const h = be.prepareWeight(new Float32Array(4), 2, 2);
    await be.dispose();
    await be.dispose();
    expect(() => be.matmul(new Float32Array(2), 1, h)).toThrow(expect.objectContaining({ code: 'E_DISPOSED' }));
  });

  // needs the compiled dist/ (npm install / npm run build); plain node cannot load the .ts sources
  const distBackend = fileURLToPath(new URL('../../dist/kernels/wasm-backend.js', import.meta.url));
  it.skipIf(!existsSync(distBackend))('does not keep the process alive without dispose (workers are unref\'d)', () => {
    const script = `
      const { createWasmBackend } = await import(${JSON.stringify(distBackend)});
      const be = await createWasmBackend({ threads: 2 });
      const h = be.prepareWeight(new Float32Array(256 * 256).fill(1), 256, 256);
      console.log(be.matmul(new Float32Array(64 * 256).fill(1), 64, h)[0]);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('256');
    expect(r.status).toBe(0);
  });

  it('rejects bad thread counts', async () => {
    await expect(createWasmBackend({ threads: 0 })).rejects.toThrow(/threads/);
  });

  it('reports a missing kernels file with a hint to build it', async () => {
    const err = await loadKernelModule(new URL('file:///nonexistent/edgeq/kernels.wasm')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdgeqError);
    expect(err).toMatchObject({ code: 'E_WASM_MISSING' });
    expect(String((err as EdgeqError).hint)).toMatch(/npm (install|run build:wasm)/);
  });
});

describe('WasmHeap', () => {
  const newHeap = (initialPages = 1, maxPages = 16): WasmHeap =>
    new WasmHeap(new wasm.Memory({ initial: initialPages, maximum: maxPages, shared: true }), 100, maxPages * 65536);

  it('returns 64-byte aligned, non-overlapping blocks above the base', () => {
    const heap = newHeap();
    const blocks = [1, 63, 64, 65, 1000, 3].map((size) => ({ ptr: heap.alloc(size), size }));
    for (const b of blocks) {
      expect(b.ptr % WASM_ALIGN).toBe(0);
      expect(b.ptr).toBeGreaterThanOrEqual(100);
    }
    const sorted = [...blocks].sort((x, y) => x.ptr - y.ptr);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.ptr).toBeGreaterThanOrEqual(sorted[i - 1]!.ptr + sorted[i - 1]!.size);
  });

  it('reuses and coalesces freed blocks', () => {
    const heap = newHeap();
    const a = heap.alloc(128);
    const b = heap.alloc(128);
    const c = heap.alloc(128);
    heap.alloc(64); // keeps the top above c
    heap.free(a);
    heap.free(c);
    heap.free(b); // a, b, c merge into one 384-byte block
    expect(heap.alloc(384)).toBe(a);
  });

  it('grows the memory and refreshes its views; fails cleanly past the maximum', () => {
    const heap = newHeap(1, 8);
    const p = heap.alloc(3 * 65536);
    expect(heap.capacity).toBeGreaterThanOrEqual(p + 3 * 65536);
    heap.f32[(p >>> 2) + 3 * 16384 - 1] = 1.5;
    expect(heap.f32[(p >>> 2) + 3 * 16384 - 1]).toBe(1.5);
    expect(() => heap.alloc(64 * 65536)).toThrow(expect.objectContaining({ code: 'E_WASM_OOM' }));
    expect(() => heap.free(12345)).toThrow(/unknown address/);
  });
});
