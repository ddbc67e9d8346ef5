#!/usr/bin/env node
// fp32 benchmarks. Run `npm run build` first (this imports the compiled code from dist/), then
// `npm run bench:fp32`. Prints a table and one JSON line (prefix "BENCH_JSON ") for scripts.
//
// The script is a list of sections; each section is an async function that returns result rows
// ({ section, case, backend, threads, metric, value, unit, ... }). Add new sections (e.g. prefill
// tok/s) to SECTIONS below.
//
// Options: --quick (fewer repetitions), --threads=N (the multithreaded run; default availableParallelism)
import os from 'node:os';

const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
const threadsArg = process.argv.slice(2).find((a) => a.startsWith('--threads='));
const MAX_THREADS = threadsArg ? Number(threadsArg.split('=')[1]) : os.availableParallelism();

let kernels;
try {
  kernels = {
    ...(await import('../dist/kernels/wasm-backend.js')),
    ...(await import('../dist/kernels/scalar-backend.js')),
  };
} catch (err) {
  console.error('bench-fp32: cannot import dist/kernels/*.js — run `npm run build` first.');
  console.error(String(err));
  process.exit(1);
}

/** Deterministic uniform(-1, 1) data (xorshift32). */
function randomArray(len, seed) {
  let s = seed >>> 0 || 1;
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    a[i] = s / 2147483648 - 1;
  }
  return a;
}

/**
 * Times fn(): warm-up, then repeats until `budgetMs` has passed (at least `minReps` times).
 * Returns per-call milliseconds { median, best }. This VM's timings are noisy, so both are kept.
 */
function time(fn, { budgetMs = QUICK ? 300 : 1500, minReps = 3, warmup = 2 } = {}) {
  for (let i = 0; i < warmup; i++) fn();
  const samples = [];
  const t0 = performance.now();
  while (samples.length < minReps || performance.now() - t0 < budgetMs) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
    if (samples.length >= 10000) break;
  }
  samples.sort((a, b) => a - b);
  return { median: samples[samples.length >> 1], best: samples[0], reps: samples.length };
}

// ---------------------------------------------------------------------------------------------------
// Section: fp32 GEMM / GEMV through the MatmulBackend interface (Y = X · Wᵀ, W prepared once)

const GEMM_CASES = [
  { case: 'gemm 512x768x768', m: 512, n: 768, k: 768 },
  { case: 'gemv 1x768x768', m: 1, n: 768, k: 768 },
  { case: 'gemv 1x4096x4096', m: 1, n: 4096, k: 4096 },
];

async function sectionGemm() {
  const rows = [];
  const threadCounts = [...new Set([1, 2, MAX_THREADS])].filter((t) => t >= 1 && t <= MAX_THREADS);
  const backends = [{ label: 'scalar', make: async () => kernels.createScalarBackend() }];
  for (const t of threadCounts) backends.push({ label: `wasm`, make: () => kernels.createWasmBackend({ threads: t }) });
  for (const spec of backends) {
    const be = await spec.make();
    for (const c of GEMM_CASES) {
      const x = randomArray(c.m * c.k, 1);
      const wt = randomArray(c.n * c.k, 2);
      const w = be.prepareWeight(wt, c.n, c.k);
      const out = new Float32Array(c.m * c.n);
      const scalar = be.name === 'scalar';
      const big = c.m * c.n * c.k > 1e8;
      const opts = scalar
        ? { budgetMs: QUICK ? 200 : 1000, minReps: big ? 1 : 3, warmup: big ? 0 : 2 }
        : { warmup: big ? 3 : 20 };
      const t = time(() => be.matmul(x, c.m, w, out), opts);
      const flop = 2 * c.m * c.n * c.k;
      rows.push({
        section: 'fp32-gemm',
        case: c.case,
        backend: be.name,
        threads: be.threads,
        metric: 'GFLOP/s',
        value: flop / (t.median * 1e6),
        best: flop / (t.best * 1e6),
        ms: t.median,
        reps: t.reps,
      });
      be.freeWeight(w);
    }
    await be.dispose();
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------

/**
 * Prefill throughput of the FP16 checkpoints on the fp32 core: one forward of a P-token prompt (fresh KV
 * cache, last-position logits), median of the repetitions, at 1 and MAX_THREADS threads.
 */
async function sectionPrefill() {
  const path = await import('node:path');
  const fs = await import('node:fs');
  const { loadModel } = await import('../dist/model/load-model.js');
  const { writeSyntheticModel } = await import('../dist/model/synthetic.js');
  const root = path.resolve(new URL('..', import.meta.url).pathname);
  const smol = path.join(root, '.cache/synthetic/smollm2-135m');
  if (!fs.existsSync(path.join(smol, 'model.safetensors'))) {
    console.error('bench-fp32: writing the synthetic SmolLM2-135M-shaped model to .cache/synthetic (once)…');
    await writeSyntheticModel('smollm2-135m', smol);
  }
  const models = [
    { name: 'brown-llama-7m', dir: path.join(root, 'fixtures/models/brown-llama-7m'), prompt: 256 },
    { name: 'smollm2-135m (synthetic)', dir: smol, prompt: 512 },
  ];
  const rows = [];
  for (const threads of [...new Set([1, MAX_THREADS])]) {
    const backend = await kernels.createWasmBackend({ threads });
    for (const m of models) {
      const model = await loadModel(m.dir, backend);
      const ids = Array.from({ length: m.prompt }, (_, i) => 3 + ((i * 7919) % 4000));
      const times = [];
      for (let r = 0; r < (QUICK ? 2 : 4); r++) {
        const cache = model.createCache(m.prompt);
        const t0 = performance.now();
        model.forward(ids, cache, 'last');
        times.push(performance.now() - t0);
      }
      times.shift(); // warm-up
      times.sort((a, b) => a - b);
      const med = times[Math.floor(times.length / 2)];
      rows.push({ case: `prefill pp${m.prompt} ${m.name}`, backend: 'wasm', threads, metric: 'tok/s', value: (m.prompt * 1000) / med, best: (m.prompt * 1000) / times[0], ms: med });
      model.dispose();
    }
    await backend.dispose();
  }
  return rows;
}

const SECTIONS = [
  { name: 'fp32-gemm', run: sectionGemm },
  { name: 'prefill (FP16 checkpoints on the fp32 core)', run: sectionPrefill },
];

function fmt(v, d = 1) {
  return typeof v === 'number' ? v.toFixed(d) : String(v ?? '');
}

const all = [];
for (const s of SECTIONS) {
  const rows = await s.run();
  all.push(...rows);
  console.log(`\n## ${s.name}`);
  const header = ['case', 'backend', 'threads', 'metric', 'median', 'best', 'ms/call'];
  const lines = rows.map((r) => [r.case, r.backend, String(r.threads), r.metric, fmt(r.value, 2), fmt(r.best, 2), fmt(r.ms, 3)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const line = (cells) => cells.map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(line(l));
}
console.log(
  'BENCH_JSON ' +
    JSON.stringify({
      node: process.version,
      cpus: os.availableParallelism(),
      cpu: os.cpus()[0]?.model,
      results: all,
    }),
);
