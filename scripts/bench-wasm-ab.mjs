#!/usr/bin/env node
// Same-process A/B of kernel builds on decode-shaped GEMVs streamed from DRAM. Run `npm run build` first.
//   npm run bench:wasm-ab -- --wasm A.wasm,B.wasm [--grid 4:32:sym] [--threads 2] [--layers 4] [--rounds 40]
// Each build gets its own backend over the same seeded random weights: the seven GEMVs of a Llama-3.2-1B block
// (q, k, v, o, gate, up, down; m = 1) × --layers blocks, ~34 MB at int4 g32, so they do not sit in the L3 cache
// (a single 8192×2048 weight does, and overstates kernel changes). Rounds alternate between the builds; prints the
// median and 10th-percentile ms per block, the ratio to the first build, and one BENCH_JSON line.
// The builds must read the packed layout this tree's dist/ writes (e.g. build/kernels.wasm of two commits with
// the same lowbit-pack.ts): copy build/kernels.wasm aside, change the kernel, `npm run build:wasm`, compare. A build
// of another layout version (PACKED_LAYOUT, src/kernels/assembly/layout.ts) is refused when it is instantiated.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { xorshift32 as rng } from './lib/xorshift.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const args = process.argv.slice(2);
const arg = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const files = arg('wasm', '').split(',').filter(Boolean);
if (files.length < 2) {
  console.error('bench-wasm-ab: give two or more builds, e.g. --wasm /tmp/before.wasm,build/kernels.wasm');
  process.exit(2);
}
const [bits, group, symTag] = arg('grid', '4:32:sym').split(':');
const threads = Number(arg('threads', 2));
const layers = Number(arg('layers', 4));
const rounds = Number(arg('rounds', 40));

let core, ThreadPool, wasm;
try {
  core = await dist('kernels/wasm-backend-core.js');
  ({ ThreadPool } = await dist('kernels/thread-pool.js'));
  ({ wasm } = await dist('kernels/wasm-api.js'));
} catch (err) {
  console.error('bench-wasm-ab: cannot import dist/*.js — run `npm run build` first.');
  console.error(String(err));
  process.exit(1);
}

function gaussian(rand, n) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
  return a;
}
/** Random codes and scales on the grid (kernel speed does not depend on the values). */
function randomQuant(n, k, seed) {
  const b = Number(bits), g = Number(group), sym = symTag === 'sym';
  const rand = rng(seed);
  const G = k / g;
  const codes = new Uint8Array(n * k);
  for (let i = 0; i < codes.length; i++) codes[i] = (rand() * 2 ** b) | 0;
  const scales = new Float32Array(n * G).map(() => 2 ** -8 * (1 + ((rand() * 64) | 0) / 64));
  const zeros = sym ? new Uint8Array(n * G).fill(2 ** (b - 1)) : new Uint8Array(n * G).map(() => (rand() * 2 ** b) | 0);
  return { qtype: `int${b}_g${g}_${sym ? 'sym' : 'asym'}`, grid: { bits: b, groupSize: g, sym }, n, k, groupSize: g, numGroups: G, codes, scales, zeros, gIdx: null };
}

const SHAPES = [[2048, 2048], [512, 2048], [512, 2048], [2048, 2048], [8192, 2048], [8192, 2048], [2048, 8192]];
const weights = [];
for (let l = 0; l < layers; l++) SHAPES.forEach(([n, k], i) => weights.push(randomQuant(n, k, 10 * l + i + 1)));
const xs = weights.map((q) => gaussian(rng(7), q.k));
const ys = weights.map((q) => new Float32Array(q.n));
const sides = [];
for (const f of files) {
  const mod = await wasm.compile(fs.readFileSync(f));
  let be;
  try {
    be = await core.createWasmBackendFromModule(mod, threads, (memory) => ThreadPool.create(mod, memory, threads - 1, core.POOL_FNS), 65536 * 65536);
  } catch (err) {
    console.error(`bench-wasm-ab: ${f}: ${err.message}${err.code === 'E_WASM_STALE' ? '\n  (compare only builds of the packed layout this tree writes)' : ''}`);
    process.exit(1);
  }
  sides.push({ file: f, be, hs: weights.map((q) => be.prepareQuantized(q)) });
}
const pass = (s) => {
  for (let i = 0; i < weights.length; i++) s.be.matmulQuantized(xs[i], 1, s.hs[i], ys[i]);
};
const times = sides.map(() => []);
for (let r = 0; r < rounds; r++) {
  sides.forEach((s, i) => {
    pass(s);
    const t = performance.now();
    pass(s);
    pass(s);
    times[i].push((performance.now() - t) / 2 / layers);
  });
}
const rows = sides.map((s, i) => {
  const t = [...times[i]].sort((a, b) => a - b);
  return { wasm: s.file, medianMs: t[t.length >> 1], p10Ms: t[Math.floor(t.length * 0.1)] };
});
console.log(`grid ${bits}:${group}:${symTag} · ${threads} threads · ${layers} Llama-1B blocks (7 GEMVs each, m = 1) · ${rounds} alternating rounds · ms per block`);
console.log('build'.padEnd(40), 'median', '   p10', ' ratio (median)');
for (const r of rows) console.log(r.wasm.padEnd(40), r.medianMs.toFixed(3), r.p10Ms.toFixed(3), (r.medianMs / rows[0].medianMs).toFixed(3));
console.log('BENCH_JSON ' + JSON.stringify({ bench: 'wasm-ab', grid: `${bits}:${group}:${symTag}`, threads, layers, rounds, rows }));
for (const s of sides) await s.be.dispose?.();
process.exit(0);
