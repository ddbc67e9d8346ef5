// The WASM attention kernel (KV cache in the backend's memory) against the TypeScript reference path
// (src/infer/attention.ts on a plain KvCache with the scalar backend), and the cache lease rules.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { causalAttention } from '../../src/infer/attention.js';
import { KvCache } from '../../src/infer/kv-cache.js';
import { gaussian, prng } from './lowbit-weights.js';

let wasm1: MatmulBackend;
let wasm2: MatmulBackend;
const scalar = createScalarBackend();

beforeAll(async () => {
  wasm1 = await createWasmBackend({ threads: 1 });
  wasm2 = await createWasmBackend({ threads: 2, spinMicros: 0 });
});
afterAll(async () => {
  await wasm1.dispose();
  await wasm2.dispose();
});

function randn(n: number, rnd: () => number): Float32Array {
  return gaussian(rnd, n);
}

interface Case {
  nHeads: number;
  kvHeads: number;
  d: number;
  T: number;
  pos0: number;
}

/** Fills positions [0, pos0 + T) of both caches with the same K/V, runs both paths, returns (wasm, reference) outputs. */
function runBoth(backend: MatmulBackend, c: Case, seed: number): { got: Float32Array; want: Float32Array } {
  const rnd = prng(seed);
  const cap = c.pos0 + c.T + 3;
  const storage = backend.allocKv!(1, c.kvHeads, cap, c.d);
  const fast = new KvCache(1, c.kvHeads, c.d, cap, storage);
  const ref = new KvCache(1, c.kvHeads, c.d, cap);
  const S = c.pos0 + c.T;
  const k = randn(S * c.kvHeads * c.d, rnd);
  const v = randn(S * c.kvHeads * c.d, rnd);
  fast.write(0, k, v, S, 0);
  ref.write(0, k, v, S, 0);
  const q = randn(c.T * c.nHeads * c.d, rnd);
  const got = new Float32Array(q.length).fill(NaN);
  const want = new Float32Array(q.length);
  causalAttention(backend, q, c.T, c.pos0, fast, 0, c.nHeads, got);
  causalAttention(scalar, q, c.T, c.pos0, ref, 0, c.nHeads, want);
  storage.free();
  return { got, want };
}

const CASES: Case[] = [
  { nHeads: 4, kvHeads: 2, d: 8, T: 1, pos0: 0 }, // first decode step
  { nHeads: 4, kvHeads: 2, d: 8, T: 1, pos0: 37 }, // decode
  { nHeads: 9, kvHeads: 3, d: 64, T: 1, pos0: 200 }, // SmolLM2 shape, decode
  { nHeads: 9, kvHeads: 3, d: 64, T: 19, pos0: 0 }, // prefill
  { nHeads: 6, kvHeads: 6, d: 6, T: 7, pos0: 4 }, // MHA, head dim not a multiple of 4 (scalar tail)
  { nHeads: 8, kvHeads: 4, d: 8, T: 33, pos0: 5 }, // stories260K-like, prefill after a prefix
  { nHeads: 1, kvHeads: 1, d: 64, T: 41, pos0: 0 }, // one head: with 2 threads the split falls inside the head's tokens
];

describe('WASM attention over a KV cache in the backend memory', () => {
  for (const c of CASES) {
    it(`matches the reference path: ${c.nHeads} heads / ${c.kvHeads} KV, d ${c.d}, T ${c.T}, pos0 ${c.pos0}`, () => {
      for (const backend of [wasm1, wasm2]) {
        const { got, want } = runBoth(backend, c, c.T * 100 + c.pos0);
        expect(want.some((x) => x !== 0)).toBe(true);
        let maxErr = 0;
        let maxRef = 0;
        for (let i = 0; i < want.length; i++) {
          maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
          maxRef = Math.max(maxRef, Math.abs(want[i]!));
        }
        // float32 sums in another order than the reference's float32 matmuls with a float64 softmax: ~1e-7 seen
        expect(maxErr).toBeLessThan(2e-6 * Math.max(1, maxRef));
      }
    });
  }

  it('1 and 2 threads give identical outputs', () => {
    const c = { nHeads: 9, kvHeads: 3, d: 64, T: 24, pos0: 40 };
    const a = runBoth(wasm1, c, 7).got;
    const b = runBoth(wasm2, c, 7).got;
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('a cache not in the backend memory falls back to the reference path (attention returns false)', () => {
    const cache = new KvCache(1, 1, 4, 8);
    const q = new Float32Array(4);
    expect(wasm1.attention!({ q, T: 1, pos0: 0, k: cache.k[0]!, v: cache.v[0]!, capacity: 8, kvHeads: 1, headDim: 4, nHeads: 1, out: new Float32Array(4) })).toBe(false);
  });

  it('a freed storage is no longer recognised', () => {
    const s = wasm1.allocKv!(1, 1, 8, 4);
    const k = s.k[0]!;
    const v = s.v[0]!;
    s.free();
    s.free(); // idempotent
    expect(wasm1.attention!({ q: new Float32Array(4), T: 1, pos0: 0, k, v, capacity: 8, kvHeads: 1, headDim: 4, nHeads: 1, out: new Float32Array(4) })).toBe(false);
  });

  it('refuses attention past the capacity and queries heads that do not divide', () => {
    const s = wasm1.allocKv!(1, 2, 4, 4);
    const base = { q: new Float32Array(64), k: s.k[0]!, v: s.v[0]!, capacity: 4, kvHeads: 2, headDim: 4, out: new Float32Array(64) };
    expect(() => wasm1.attention!({ ...base, T: 2, pos0: 3, nHeads: 2 })).toThrow(/capacity/);
    expect(() => wasm1.attention!({ ...base, T: 1, pos0: 0, nHeads: 3 })).toThrow(/KV heads/);
    s.free();
  });
});

describe('KV cache lease', () => {
  it('a cache replaced by a newer one of the same storage refuses to run; the limit is the requested length', () => {
    const s = wasm1.allocKv!(1, 1, 16, 4);
    const lease = { current: undefined as KvCache | undefined };
    const a = new KvCache(1, 1, 4, 16, s, lease);
    lease.current = a;
    a.maxLength = 8;
    expect(() => a.ensureRoom(8)).not.toThrow();
    expect(() => a.ensureRoom(9)).toThrow(/capacity 8/);
    const b = new KvCache(1, 1, 4, 16, s, lease);
    lease.current = b;
    expect(() => a.ensureRoom(1)).toThrow(/replaced by a newer createCache/);
    expect(() => b.ensureRoom(16)).not.toThrow();
    s.free();
  });

  it('rejects storage of the wrong shape', () => {
    const s = wasm1.allocKv!(2, 1, 16, 4);
    expect(() => new KvCache(1, 1, 4, 16, s)).toThrow(/KV storage/);
    s.free();
  });
});
