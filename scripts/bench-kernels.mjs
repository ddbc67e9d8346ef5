#!/usr/bin/env node
// Low-bit kernel benchmarks. Run `npm run build` first (this imports the compiled code from dist/), then
// `npm run bench:kernels`. Prints tables and one JSON line (prefix "BENCH_JSON ").
//
//   gemv     Y = x · Ŵᵀ (m = 1) at 4096×4096 and 2048×8192 (n×k) for 2/3/4/8-bit g128 weights, LUT and
//            int8-dot kernels, 1 and 2 threads: ms/call, GFLOP/s (2nk), GB/s of packed weight bytes
//            read; the fp32 GEMV on the same shape for comparison; the 2-bit / 4-bit LUT time ratio.
//   gemm     m = 64 (a prefill chunk) at 4096×4096, 1 and 2 threads: the fp32 GEMM, the LUT and int8-dot
//            kernels run token by token (prefill GEMM off), and the prefill GEMM (int8 activations, int16
//            panels, i32x4.dot_i16x8_s) on the LUT layout and on the int8 layout; also `--prefill-m=a,b`
//            (default 8,16,64,256) rows for 4-bit at 1 thread: prefill GEMM vs LUT per token by m.
//   accuracy mean |error| and mean relative error of each kernel vs dequantize-then-fp32 on N(0,1)
//            activations (RTN g128 asym weights, 512×4096), next to the weight quantization's own error.
//   ppl      brown-llama-7m, every linear layer and the LM head RTN-quantized (w4g128, w3g128, w2g64 asym),
//            WikiText-2 perplexity (ctx 256, first --ppl-windows windows, default 48) run four ways on the
//            same quantized weights: dequantized fp32, LUT kernel and int8-dot kernel (token by token),
//            prefill GEMM.
//
// Options: --quick (shorter timing budget), --threads=N (the multithreaded run; default availableParallelism),
//          --ppl-windows=N (0 skips the perplexity section), --sections=gemv,gemm,accuracy,ppl (default all)
import os from 'node:os';
import { xorshift32 as rng } from './lib/xorshift.mjs';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const threadsArg = argv.find((a) => a.startsWith('--threads='));
const MAX_THREADS = threadsArg ? Number(threadsArg.split('=')[1]) : os.availableParallelism();

let k;
try {
  k = {
    ...(await import('../dist/kernels/wasm-backend.js')),
    ...(await import('../dist/qtypes/registry.js')),
    ...(await import('../dist/kernels/wasm-lowbit.js')),
  };
  k.dist = (p) => import(new URL(`../dist/${p}`, import.meta.url));
} catch (err) {
  console.error('bench-kernels: cannot import dist/*.js — run `npm run build` first.');
  console.error(String(err));
  process.exit(1);
}


function gaussian(rand, len) {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
  return a;
}

/** A random quantized weight (kernel speed does not depend on the values): g128 asym. */
function randomQuant(bits, n, kk, seed) {
  const rand = rng(seed);
  const G = kk / 128;
  const codes = new Uint8Array(n * kk);
  for (let i = 0; i < codes.length; i++) codes[i] = (rand() * 2 ** bits) | 0;
  const scales = new Float32Array(n * G).map(() => 2 ** -8 * (1 + ((rand() * 64) | 0) / 64));
  const zeros = new Uint8Array(n * G).map(() => (rand() * 2 ** bits) | 0);
  return { qtype: `int${bits}_g128_asym`, grid: { bits, groupSize: 128, sym: false }, n, k: kk, groupSize: 128, numGroups: G, codes, scales, zeros, gIdx: null };
}

function time(fn, { budgetMs = QUICK ? 300 : 1200, minReps = 5, warmup = 5 } = {}) {
  for (let i = 0; i < warmup; i++) fn();
  const samples = [];
  const cpu = [];
  const t0 = performance.now();
  while (samples.length < minReps || performance.now() - t0 < budgetMs) {
    const c = process.cpuUsage();
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
    const d = process.cpuUsage(c);
    cpu.push((d.user + d.system) / 1000);
    if (samples.length >= 20000) break;
  }
  samples.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  // cpu: the process's CPU time per call (all threads; with 1 thread, the wall time minus time spent descheduled
  // on a shared machine: the stable number to compare kernels with when other processes compete for the cores)
  return { median: samples[samples.length >> 1], best: samples[0], reps: samples.length, cpu: cpu[cpu.length >> 1] };
}

const SHAPES = [
  { n: 4096, k: 4096 },
  { n: 2048, k: 8192 },
];
const threadCounts = [...new Set([1, 2, MAX_THREADS])].filter((t) => t >= 1 && t <= MAX_THREADS);

async function sectionGemv() {
  const rows = [];
  const backends = [];
  for (const t of threadCounts) backends.push(await k.createWasmBackend({ threads: t }));
  for (const s of SHAPES) {
    const label = `${s.n}x${s.k}`;
    const x = gaussian(rng(7), s.k);
    const y = new Float32Array(s.n);
    const flop = 2 * s.n * s.k;
    for (const be of backends) {
      const wf = be.prepareWeight(gaussian(rng(3), s.n * s.k), s.n, s.k);
      const t = time(() => be.matmul(x, 1, wf, y));
      rows.push({ case: `gemv ${label}`, weights: 'fp32', kernel: 'fp32', threads: be.threads, ms: t.median, best: t.best, gflops: flop / (t.median * 1e6), gbs: (s.n * s.k * 4) / (t.median * 1e6), bytes: s.n * s.k * 4 });
      be.freeWeight(wf);
    }
    for (const bits of [2, 3, 4, 8]) {
      const q = randomQuant(bits, s.n, s.k, bits);
      for (const kernel of bits <= 4 ? ['lut', 'int8'] : ['int8']) {
        for (const be of backends) {
          const h = be.prepareQuantized(q, { kernel });
          const t = time(() => be.matmulQuantized(x, 1, h, y));
          rows.push({ case: `gemv ${label}`, weights: `int${bits} g128`, kernel, threads: be.threads, ms: t.median, best: t.best, gflops: flop / (t.median * 1e6), gbs: h.bytes / (t.median * 1e6), bytes: h.bytes });
          be.freeWeight(h);
        }
      }
    }
  }
  for (const be of backends) await be.dispose();
  return rows;
}

async function sectionGemm() {
  const rows = [];
  const m = 64;
  const s = SHAPES[0];
  const x = gaussian(rng(8), m * s.k);
  const y = new Float32Array(m * s.n);
  const flop = 2 * m * s.n * s.k;
  const opts = { minReps: 3, warmup: 1 };
  for (const threads of threadCounts) {
    const be = await k.createWasmBackend({ threads });
    const wf = be.prepareWeight(gaussian(rng(3), s.n * s.k), s.n, s.k);
    let t = time(() => be.matmul(x, m, wf, y), opts);
    rows.push({ case: `gemm m=${m} ${s.n}x${s.k}`, weights: 'fp32', kernel: 'fp32', threads, ms: t.median, best: t.best, cpu: t.cpu, gflops: flop / (t.median * 1e6), gbs: (s.n * s.k * 4) / (t.median * 1e6), bytes: s.n * s.k * 4 });
    be.freeWeight(wf);
    for (const bits of [2, 4, 8]) {
      const q = randomQuant(bits, s.n, s.k, bits);
      for (const kernel of bits <= 4 ? ['lut', 'int8'] : ['int8']) {
        const h = be.prepareQuantized(q, { kernel });
        for (const prefill of [false, true]) {
          // forced on / off for every bit width here (by default 2/3-bit LUT and 8-bit weights keep their kernel)
          k.setPrefillPolicy(prefill ? { minTokens: 1, lutMinBits: 2, maxBits: 8 } : { minTokens: Infinity });
          t = time(() => be.matmulQuantized(x, m, h, y), opts);
          const name = prefill ? `prefill (${kernel} layout)` : kernel;
          rows.push({ case: `gemm m=${m} ${s.n}x${s.k}`, weights: `int${bits} g128`, kernel: name, threads, ms: t.median, best: t.best, cpu: t.cpu, gflops: flop / (t.median * 1e6), gbs: h.bytes / (t.median * 1e6), bytes: h.bytes });
        }
        be.freeWeight(h);
      }
    }
    k.setPrefillPolicy(k.DEFAULT_PREFILL_POLICY);
    await be.dispose();
  }
  // 4-bit g128, LUT layout, 1 thread: per-token LUT vs prefill GEMM by m (where the threshold comes from)
  const be = await k.createWasmBackend({ threads: 1 });
  const h = be.prepareQuantized(randomQuant(4, s.n, s.k, 4), { kernel: 'lut' });
  for (const mm of PREFILL_M) {
    const xm = gaussian(rng(9), mm * s.k);
    const ym = new Float32Array(mm * s.n);
    const f = 2 * mm * s.n * s.k;
    for (const prefill of [false, true]) {
      k.setPrefillPolicy(prefill ? { minTokens: 1 } : { minTokens: Infinity });
      const tm = time(() => be.matmulQuantized(xm, mm, h, ym), opts);
      rows.push({ case: `gemm m=${mm} ${s.n}x${s.k}`, weights: 'int4 g128', kernel: prefill ? 'prefill (lut layout)' : 'lut', threads: 1, ms: tm.median, best: tm.best, cpu: tm.cpu, gflops: f / (tm.median * 1e6), gbs: h.bytes / (tm.median * 1e6), bytes: h.bytes });
    }
  }
  k.setPrefillPolicy(k.DEFAULT_PREFILL_POLICY);
  be.freeWeight(h);
  await be.dispose();
  return rows;
}

async function sectionAccuracy() {
  const rows = [];
  const be = await k.createWasmBackend({ threads: MAX_THREADS });
  const n = 512;
  const kk = 4096;
  const m = 4;
  const x = gaussian(rng(11), m * kk);
  for (const bits of [2, 3, 4, 8]) {
    const qt = k.getQType(`int${bits}_g128_asym`);
    const q = qt.quantizeRef(gaussian(rng(100 + bits), n * kk), n, kk);
    const wd = qt.dequantize(q);
    const ref = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let c = 0; c < kk; c++) s += x[i * kk + c] * wd[r * kk + c];
        ref[i * n + r] = s;
      }
    }
    // the weight quantization's own error on the same outputs (fp32 W vs Ŵ), for scale
    const w32 = gaussian(rng(100 + bits), n * kk);
    let wErr = 0;
    for (let i = 0; i < m; i++) {
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let c = 0; c < kk; c++) s += x[i * kk + c] * w32[r * kk + c];
        wErr += Math.abs(s - ref[i * n + r]);
      }
    }
    wErr /= m * n;
    let refAbs = 0;
    for (const v of ref) refAbs += Math.abs(v);
    refAbs /= ref.length;
    for (const kernel of bits <= 4 ? ['lut', 'int8'] : ['int8']) {
      const h = be.prepareQuantized(q, { kernel });
      const y = be.matmulQuantized(x, m, h);
      be.freeWeight(h);
      let abs = 0;
      let max = 0;
      for (let j = 0; j < y.length; j++) {
        const e = Math.abs(y[j] - ref[j]);
        abs += e;
        max = Math.max(max, e);
      }
      abs /= y.length;
      // relative: mean |error| over mean |y| (per-element ratios blow up near y = 0)
      rows.push({ case: `int${bits} g128 asym ${n}x${kk}`, kernel, meanAbsErr: abs, meanAbsY: refAbs, relErr: abs / refAbs, maxAbsErr: max, weightQuantRelErr: wErr / refAbs });
    }
  }
  await be.dispose();
  return rows;
}

const sectionsArg = argv.find((a) => a.startsWith('--sections='));
const SECTIONS = new Set((sectionsArg ? sectionsArg.split('=')[1] : 'gemv,gemm,accuracy,ppl').split(','));
const prefillArg = argv.find((a) => a.startsWith('--prefill-m='));
const PREFILL_M = (prefillArg ? prefillArg.split('=')[1] : '8,16,64,256').split(',').filter(Boolean).map(Number);
const pplArg = argv.find((a) => a.startsWith('--ppl-windows='));
const PPL_WINDOWS = pplArg ? Number(pplArg.split('=')[1]) : 48;

/**
 * A MatmulBackend that RTN-quantizes every weight it is given (grid, per-channel where the group size does
 * not divide k) and runs it dequantized in fp32 (mode 'dense') or on a low-bit kernel ('lut' | 'int8').
 */
function quantizingBackend(inner, grid, mode) {
  return {
    name: `${inner.name}+${mode}`,
    threads: inner.threads,
    prepareWeight(w, n, kk) {
      const q = k.qtypeFor(k.fallbackGrid(grid, kk)).quantizeRef(w, n, kk);
      return mode === 'dense' ? { dense: inner.prepareWeight(k.dequantize(q), n, kk), n, k: kk } : { quant: inner.prepareQuantized(q, { kernel: mode }), n, k: kk };
    },
    matmul: (x, m, h, out) => (h.dense ? inner.matmul(x, m, h.dense, out) : inner.matmulQuantized(x, m, h.quant, out)),
    matmulTransient: (...a) => inner.matmulTransient(...a),
    prepareQuantized: (q, o) => inner.prepareQuantized(q, o),
    matmulQuantized: (...a) => inner.matmulQuantized(...a),
    freeWeight: (h) => inner.freeWeight(h.dense ?? h.quant ?? h),
    dispose() {},
  };
}

async function sectionPpl() {
  if (!(PPL_WINDOWS > 0)) return [];
  const path = await import('node:path');
  const root = path.resolve(new URL('..', import.meta.url).pathname);
  const { loadModel } = await k.dist('model/load-model.js');
  const { EdgeqTokenizer } = await k.dist('tokenizer/tokenizer.js');
  const { readEvalText, tokenizeText } = await k.dist('eval/dataset.js');
  const { evaluatePerplexity } = await k.dist('eval/perplexity.js');
  const dir = path.join(root, 'fixtures/models/brown-llama-7m');
  const inner = await k.createWasmBackend({ threads: MAX_THREADS });
  const rows = [];
  let text;
  for (const grid of [{ bits: 4, groupSize: 128, sym: false }, { bits: 3, groupSize: 128, sym: false }, { bits: 2, groupSize: 64, sym: false }]) {
    const ppl = {};
    for (const mode of ['dense', 'lut', 'int8', 'prefill']) {
      // lut / int8: those kernels token by token (prefill GEMM off); prefill: the prefill GEMM on the LUT layout
      k.setPrefillPolicy(mode === 'prefill' ? { minTokens: 1, lutMinBits: 2, maxBits: 8 } : { minTokens: Infinity });
      const model = await loadModel(dir, quantizingBackend(inner, grid, mode === 'prefill' ? 'lut' : mode));
      if (!text) {
        const tok = EdgeqTokenizer.load(dir, model.config.bosTokenId, model.config.eosTokenIds);
        text = { ids: tokenizeText(tok, readEvalText(path.join(root, 'fixtures/text/wiki.test.raw'))).ids, bos: tok.bosId ?? 1 };
      }
      const r = await evaluatePerplexity(model, text.ids, { ctx: 256, bosId: text.bos, maxWindows: PPL_WINDOWS });
      ppl[mode] = r.ppl;
      model.dispose();
    }
    k.setPrefillPolicy(k.DEFAULT_PREFILL_POLICY);
    const id = k.qtypeId(grid);
    rows.push({ case: `brown-llama-7m ${id}`, windows: PPL_WINDOWS, pplDequantFp32: ppl.dense, pplLut: ppl.lut, pplInt8: ppl.int8, pplPrefill: ppl.prefill, lutRelDiff: ppl.lut / ppl.dense - 1, int8RelDiff: ppl.int8 / ppl.dense - 1, prefillRelDiff: ppl.prefill / ppl.dense - 1 });
  }
  await inner.dispose();
  return rows;
}

function table(rows, cols) {
  const lines = rows.map((r) => cols.map(([key, , d]) => (typeof r[key] === 'number' ? (d === 'e' ? r[key].toExponential(2) : r[key].toFixed(d ?? 2)) : String(r[key]))));
  const header = cols.map(([, h]) => h);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
}

const speedCols = [['case', 'case'], ['weights', 'weights'], ['kernel', 'kernel'], ['threads', 'threads', 0], ['ms', 'ms/call', 3], ['best', 'best ms', 3], ['gflops', 'GFLOP/s', 1], ['gbs', 'GB/s (weights)', 1]];

const gemv = SECTIONS.has('gemv') ? await sectionGemv() : [];
if (gemv.length) {
  console.log('\n## GEMV (m = 1)');
  table(gemv, speedCols);
}
const ratios = [];
for (const s of gemv.length ? SHAPES : []) {
  for (const t of threadCounts) {
    const get = (bits) => gemv.find((r) => r.case === `gemv ${s.n}x${s.k}` && r.weights === `int${bits} g128` && r.kernel === 'lut' && r.threads === t);
    const r = { case: `${s.n}x${s.k}`, threads: t, ratio: get(2).ms / get(4).ms, ratioBest: get(2).best / get(4).best };
    ratios.push(r);
  }
}
if (ratios.length) console.log('\n## LUT 2-bit / 4-bit GEMV time (target ≤ 0.6)');
for (const r of ratios) console.log(`${r.case}  threads ${r.threads}: median ${r.ratio.toFixed(3)}  best ${r.ratioBest.toFixed(3)}`);
const gemm = SECTIONS.has('gemm') ? await sectionGemm() : [];
if (gemm.length) {
  console.log('\n## GEMM (prefill chunk); cpu = process CPU time per call (all threads)');
  for (const r of gemm) r.cpuGflops = (2 * Number(r.case.match(/m=(\d+)/)[1]) * SHAPES[0].n * SHAPES[0].k) / (r.cpu * 1e6);
  table(gemm, [...speedCols.slice(0, 7), ['cpu', 'cpu ms', 3], ['cpuGflops', 'GFLOP/s (cpu)', 1]]);
}
const acc = SECTIONS.has('accuracy') ? await sectionAccuracy() : [];
if (acc.length) console.log('\n## Accuracy vs dequantize-then-fp32 (N(0,1) activations, 4 tokens)');
if (acc.length) table(acc, [['case', 'case'], ['kernel', 'kernel'], ['meanAbsY', 'mean |y|', 'e'], ['meanAbsErr', 'mean |err|', 'e'], ['relErr', 'mean |err| / mean |y|', 'e'], ['maxAbsErr', 'max |err|', 'e'], ['weightQuantRelErr', 'weight quant. error / mean |y|', 'e']]);
const ppl = SECTIONS.has('ppl') ? await sectionPpl() : [];
if (ppl.length > 0) {
  console.log(`\n## Perplexity on the kernels vs the same weights dequantized to fp32 (WikiText-2, ctx 256, ${PPL_WINDOWS} windows)`);
  table(ppl, [['case', 'case'], ['windows', 'windows', 0], ['pplDequantFp32', 'dequantized fp32', 4], ['pplLut', 'LUT', 4], ['pplInt8', 'int8-dot', 4], ['pplPrefill', 'prefill GEMM', 4], ['lutRelDiff', 'LUT rel diff', 'e'], ['int8RelDiff', 'int8 rel diff', 'e'], ['prefillRelDiff', 'prefill rel diff', 'e']]);
}
console.log('BENCH_JSON ' + JSON.stringify({ node: process.version, cpus: os.availableParallelism(), cpu: os.cpus()[0]?.model, gemv, ratios, gemm, accuracy: acc, ppl }));
