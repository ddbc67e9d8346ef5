/**
 * The sharded wasm backend (src/kernels/sharded-backend.ts): weights spread over several WebAssembly memories
 * by a small per-shard limit give logits bit-identical to the single-memory backend (1 and 2 threads, dense and
 * packed low-bit models); handles are routed to their shard with the usual typed errors; reserve() creates the
 * expected shards; without it a weight that does not fit gets E_WASM_OOM naming reserve().
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeqError } from '../../src/core/errors.js';
import { generateGreedy } from '../../src/infer/generate.js';
import { backendWeightBytes, type LoadOptions } from '../../src/model/build-model.js';
import { createWasmBackend, type ShardedBackend } from '../../src/kernels/wasm-backend.js';
import type { WasmBackendOptions } from '../../src/kernels/wasm-backend.js';
import { loadModel } from '../../src/model/load-model.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { openWeightSource } from '../../src/model/weight-source.js';
import { quantizeModel } from '../../src/pipeline/quantize-model.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { gaussian, makeQuantWeight, prng } from './lowbit-weights.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const backends: ShardedBackend[] = [];
let tmp: string;
let brownQ4: string;

async function make(opts: WasmBackendOptions): Promise<ShardedBackend> {
  const b = await createWasmBackend({ spinMicros: 0, ...opts });
  backends.push(b);
  return b;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-sharded-'));
  brownQ4 = path.join(tmp, 'brown-q4');
  const src = FIXTURE_MODELS.brownLlama7m;
  const { config } = readModelConfig(src);
  const backend = await make({ threads: 1 });
  await quantizeModel({ method: 'rtn', grid: { bits: 4, groupSize: 32, sym: false }, fallback: true, denseDtype: 'F32', calib: { samples: 1, seqLen: 16 }, modelDir: src, config, outDir: brownQ4, calibration: null, backend, edgeqVersion: 'test' });
}, 120_000);

afterAll(async () => {
  for (const b of backends) await b.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function errorOf(fn: () => unknown): EdgeqError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeqError);
    return err as EdgeqError;
  }
  throw new Error('expected an error');
}

const PROMPT = [1, 7, 42, 99, 3, 250, 18, 77, 5, 64, 200, 11];

async function run(dir: string, backend: ShardedBackend, opts: LoadOptions): Promise<{ logits: Float32Array; greedy: number[] }> {
  const model = await loadModel(dir, backend, opts);
  try {
    const logits = model.forward(PROMPT, model.createCache(PROMPT.length), 'all')!;
    const greedy = generateGreedy(model, PROMPT, { maxNewTokens: 6 });
    return { logits, greedy };
  } finally {
    model.dispose();
  }
}

describe('a model spread over several shards', () => {
  // Tiny memories need more than the default 1/8 headroom (dense packing stages a whole tensor of up to
  // 4 MiB, plus each product's activations): the fp32 cases set the weight budget explicitly.
  const cases = [
    { name: 'stories260K fp32', dir: () => FIXTURE_MODELS.stories260K, be: { maxMemoryBytes: 1 * MiB, shardWeightBytes: 400 * KiB }, opts: {} },
    { name: 'brown-llama-7m fp32', dir: () => FIXTURE_MODELS.brownLlama7m, be: { maxMemoryBytes: 12 * MiB, shardWeightBytes: 6.5 * MiB }, opts: {} },
    { name: 'brown-llama-7m int4 packed, int8 head', dir: () => brownQ4, be: { maxMemoryBytes: 2 * MiB }, opts: { head: 'int8' } as LoadOptions },
  ];
  for (const c of cases) {
    for (const threads of [1, 2]) {
      it(`${c.name}, ${threads} thread(s): ≥ 3 shards, logits bit-identical to one memory`, async () => {
        const single = await make({ threads });
        const sharded = await make({ threads, ...c.be });
        const ref = await run(c.dir(), single, c.opts);
        const model = await loadModel(c.dir(), sharded, c.opts);
        const stats = sharded.shardStats();
        expect(single.shardCount).toBe(1);
        expect(sharded.shardCount).toBeGreaterThanOrEqual(3);
        expect(stats.filter((s) => s.weights > 0).length).toBe(stats.length); // reserve() made no idle shard
        for (const s of stats.slice(0, -1)) expect(s.weightBytes).toBeLessThanOrEqual(sharded.shardWeightBytes);
        // the loader's estimate (what it reserved) over-estimates what was placed, tensor count and bytes
        const ckpt = await openWeightSource(c.dir());
        const est = backendWeightBytes(readModelConfig(c.dir()).config, ckpt, c.opts);
        await ckpt.close();
        const placed = stats.reduce((a, s) => a + s.weightBytes, 0);
        expect(est.tensors.length).toBe(stats.reduce((a, s) => a + s.weights, 0));
        expect(est.total).toBeGreaterThanOrEqual(placed);
        expect(est.total).toBeLessThan(1.3 * placed);
        model.dispose();
        expect(sharded.shardStats().every((s) => s.weights === 0 && s.weightBytes === 0)).toBe(true);
        const got = await run(c.dir(), sharded, c.opts);
        expect(bytesOf(got.logits).equals(bytesOf(ref.logits))).toBe(true);
        expect(got.greedy).toEqual(ref.greedy);
      }, 60_000);
    }
  }
});

describe('routing by handle', () => {
  // 32×1024 fp32 = 128 KiB in panels; with a 160 KiB weight budget one per shard
  const N = 32;
  const K = 1024;

  it('places weights shard by shard, computes as one memory, keeps the typed handle errors', async () => {
    const be = await make({ threads: 1, maxMemoryBytes: 2 * MiB, shardWeightBytes: 160 * KiB });
    const one = await make({ threads: 1 });
    await be.reserve(3 * 128 * KiB);
    expect(be.shardCount).toBe(3);
    const ws = [0, 1, 2].map((s) => gaussian(prng(s + 1), N * K));
    const hs = ws.map((w) => be.prepareWeight(w, N, K));
    expect(hs.map((h) => be.shardOf(h))).toEqual([0, 1, 2]);
    const x = gaussian(prng(9), 3 * K);
    for (let i = 0; i < 3; i++) {
      const ref = one.prepareWeight(ws[i]!, N, K);
      for (const m of [1, 3]) expect(bytesOf(be.matmul(x, m, hs[i]!)).equals(bytesOf(one.matmul(x, m, ref)))).toBe(true);
      expect(bytesOf(be.matmulPrefix(x, 1, hs[i]!, 13)).equals(bytesOf(one.matmulPrefix(x, 1, ref, 13)))).toBe(true);
    }
    // a handle of another backend, dense and quantized
    const foreign = one.prepareWeight(ws[0]!, N, K);
    expect(errorOf(() => be.matmul(x, 1, foreign))).toMatchObject({ code: 'E_MATMUL_HANDLE', message: expect.stringMatching(/not prepared by this wasm backend/) });
    const q = makeQuantWeight({ bits: 4, groupSize: 64, sym: false, actOrder: false, n: 40, k: K, seed: 3 });
    const qForeign = one.prepareQuantized(q);
    expect(errorOf(() => be.matmulQuantized(x, 1, qForeign))).toMatchObject({ code: 'E_MATMUL_HANDLE', message: expect.stringMatching(/quantized weight handle was not prepared/) });
    be.freeWeight(foreign); // not ours: a no-op
    expect(one.matmul(x, 1, foreign).length).toBe(N);
    // a dense handle where a quantized one is expected, on a shard other than 0
    expect(errorOf(() => be.matmulQuantized(x, 1, hs[2] as never))).toMatchObject({ code: 'E_MATMUL_HANDLE' });
    // lent out on shard 1, then repacked
    const lent = be.unpackWeight(hs[1]!);
    expect(errorOf(() => be.matmul(x, 1, hs[1]!))).toMatchObject({ code: 'E_MATMUL_HANDLE', message: expect.stringMatching(/lent out/) });
    lent.set(ws[1]!);
    be.repackWeight(hs[1]!, lent);
    expect(bytesOf(be.matmul(x, 1, hs[1]!)).equals(bytesOf(one.matmul(x, 1, one.prepareWeight(ws[1]!, N, K))))).toBe(true);
    // freed on shard 2
    be.freeWeight(hs[2]!);
    be.freeWeight(hs[2]!);
    expect(errorOf(() => be.matmul(x, 1, hs[2]!))).toMatchObject({ code: 'E_MATMUL_HANDLE', message: expect.stringMatching(/already freed/) });
    expect(be.shardStats()[2]).toEqual({ weights: 0, weightBytes: 0 });
    // a quantized weight lands on the current shard (2, now empty), is routed there, frees
    const qh = be.prepareQuantized(q);
    expect(be.shardOf(qh)).toBe(2);
    expect(bytesOf(be.matmulQuantized(x, 3, qh)).equals(bytesOf(one.matmulQuantized(x, 3, qForeign)))).toBe(true);
    be.freeWeight(qh);
    expect(errorOf(() => be.matmulQuantized(x, 1, qh))).toMatchObject({ code: 'E_MATMUL_HANDLE', message: expect.stringMatching(/already freed/) });
    // band by band: the writer takes shard 2's room at once, gives it back on abort
    const wr = be.beginWeight(N, K);
    expect(be.shardStats()[2]!.weights).toBe(1);
    wr.abort();
    expect(be.shardStats()[2]).toEqual({ weights: 0, weightBytes: 0 });
    const wr2 = be.beginWeight(N, K);
    wr2.write(ws[2]!.subarray(0, 24 * K), 24);
    wr2.write(ws[2]!.subarray(24 * K), N - 24);
    expect(wr2.rowsWritten).toBe(N);
    const hb = wr2.finish();
    wr2.abort(); // after finish: keeps the weight
    expect(be.shardOf(hb)).toBe(2);
    expect(bytesOf(be.matmul(x, 3, hb)).equals(bytesOf(one.matmul(x, 3, one.prepareWeight(ws[2]!, N, K))))).toBe(true);
    // transient products, SiLU·up and the KV cache run on shard 0 as on one memory
    const a = gaussian(prng(5), 6 * 64);
    const b = gaussian(prng(6), 20 * 64);
    expect(bytesOf(be.matmulTransient(a, 6, b, 20, 64)).equals(bytesOf(one.matmulTransient(a, 6, b, 20, 64)))).toBe(true);
    const kv = be.allocKv(2, 2, 8, 16);
    const args = { q: gaussian(prng(7), 4 * 16), T: 1, pos0: 0, k: kv.k[1]!, v: kv.v[1]!, capacity: 8, kvHeads: 2, headDim: 16, nHeads: 4, out: new Float32Array(4 * 16) };
    expect(be.attention(args)).toBe(true);
    expect(be.attention({ ...args, k: new Float32Array(2 * 8 * 16) })).toBe(false);
    kv.free();
  });
});

describe('reserve and running out', () => {
  it('reserve() creates the shards the bytes need (or the tensors, placed in order)', async () => {
    const be = await make({ threads: 2, maxMemoryBytes: 4 * MiB, spinMicros: undefined }); // default spin: shard 0 re-created
    expect(be.name).toBe('wasm');
    expect(be.threads).toBe(2);
    expect(be.shardWeightBytes).toBe(3.5 * MiB);
    await be.reserve(3 * MiB);
    expect(be.shardCount).toBe(1);
    await be.reserve(10 * MiB); // 3.5 MiB per shard
    expect(be.shardCount).toBe(3);
    // 2 + 2 > 3.5: one 2 MiB tensor per shard
    await be.reserve(10 * MiB, [2 * MiB, 2 * MiB, 2 * MiB, 2 * MiB, 1 * MiB]);
    expect(be.shardCount).toBe(4);
    await be.reserve(1, [3 * MiB, 3 * MiB, 3 * MiB, 3 * MiB]);
    expect(be.shardCount).toBe(4);
    await expect(be.reserve(5 * MiB, [5 * MiB])).rejects.toMatchObject({ code: 'E_WASM_OOM' });
    await expect(be.reserve(-1)).rejects.toMatchObject({ code: 'E_USAGE' });
    const w = gaussian(prng(1), 64 * 256);
    const h = be.prepareWeight(w, 64, 256);
    expect(be.matmul(gaussian(prng(2), 9 * 256), 9, h).length).toBe(9 * 64); // workers of the re-created shard 0
    const def = await make({ threads: 1 });
    expect(def.maxMemoryBytes).toBe(4 * 1024 * MiB);
    expect(def.shardCount).toBe(1);
  });

  it('without reserve a weight that does not fit gets E_WASM_OOM naming reserve(); after reserve it fits', async () => {
    // 1 MiB memory, 896 KiB weight budget: nine 96 KiB weights fit, a tenth does not
    const be = await make({ threads: 1, maxMemoryBytes: 1 * MiB });
    const w = gaussian(prng(1), 24 * 1024);
    for (let i = 0; i < 9; i++) be.prepareWeight(w, 24, 1024);
    const err = errorOf(() => be.prepareWeight(w, 24, 1024));
    expect(err.code).toBe('E_WASM_OOM');
    expect(err.message).toMatch(/reserve\(\)/);
    expect(err.hint).toMatch(/await backend\.reserve\(/);
    const q = makeQuantWeight({ bits: 8, groupSize: 128, sym: true, actOrder: false, n: 512, k: 1024, seed: 2 });
    expect(errorOf(() => be.prepareQuantized(q))).toMatchObject({ code: 'E_WASM_OOM', message: expect.stringMatching(/reserve\(\)/) });
    await be.reserve(96 * KiB);
    expect(be.shardCount).toBe(2);
    expect(be.shardOf(be.prepareWeight(w, 24, 1024))).toBe(1);
    expect(be.shardOf(be.prepareQuantized(q))).toBe(1);
    // one tensor larger than a whole memory: no reserve() helps
    const big = errorOf(() => be.prepareWeight(new Float32Array(300 * 1024), 300, 1024));
    expect(big.code).toBe('E_WASM_OOM');
    expect(big.hint).toMatch(/one tensor must fit in one memory/);
  });

  it('a disposed backend refuses work with E_DISPOSED', async () => {
    const be = await make({ threads: 1, maxMemoryBytes: 1 * MiB });
    const h = be.prepareWeight(new Float32Array(8 * 8), 8, 8);
    await be.dispose();
    expect(errorOf(() => be.matmul(new Float32Array(8), 1, h)).code).toBe('E_DISPOSED');
    expect(errorOf(() => be.prepareWeight(new Float32Array(8 * 8), 8, 8)).code).toBe('E_DISPOSED');
    await expect(be.reserve(1)).rejects.toMatchObject({ code: 'E_DISPOSED' });
  });
});
