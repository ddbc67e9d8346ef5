#!/usr/bin/env node
// edgeq's low-bit core vs llama.cpp (node-llama-cpp's prebuilt CPU binary) on the same machine, same
// thread count, runs alternating in one process: pp512 (prefill) and tg128 (decode) tokens/s, mean ± sd.
//   4-bit: SmolLM2-135M and Llama-3.2-1B shapes (seeded random weights, full depth): edgeq RTN int4 g32
//          sym — the Q4_0 grid — and the GGUF Q4_0 exported from that same checkpoint (lossless repack).
//   2-bit: Llama-3.2-1B shape: edgeq RTN int2 g64 asym vs llama.cpp Q2_K exported from the fp16 model
//          (SmolLM2's width 576 is not a multiple of Q2_K's 256-wide super-blocks).
// The LM head (tied embedding) is not fp32 on either side: edgeq runs it as int8 per channel (`--head
// int8`); the GGUF keeps it at Q6_K as llama-quantize does (Q8_0 where the width is not a multiple of 256,
// e.g. SmolLM2's 576). Also prints each side's fraction of the DRAM read roofline: weight bytes read per token × tok/s ÷
// the read bandwidth measured in this run with the same thread count.
// Targets (2 threads): decode 4-bit ≥ 0.8× llama.cpp, decode 2-bit ≥ 1.0×, prefill ≥ 0.5×.
//   npm run bench:peer [-- --threads 2 --reps 3 --cases smollm2-q4,llama1b-q4,llama1b-q2 --pp 512 --tg 128]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const args = process.argv.slice(2);
const arg = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const threads = Number(arg('threads', 2));
const reps = Number(arg('reps', 3));
const pp = Number(arg('pp', 512));
const tg = Number(arg('tg', 128));
const wanted = arg('cases', 'smollm2-q4,llama1b-q4,llama1b-q2').split(',');
const cacheDir = path.join(root, '.cache/bench-peer');
fs.mkdirSync(cacheDir, { recursive: true });
const edgeqBin = path.join(root, 'bin/edgeq.js');
const log = (s) => process.stderr.write(`${s}\n`);

const CASES = {
  'smollm2-q4': { preset: 'smollm2-135m', bits: 4, group: 32, sym: true, gguf: 'q4_0', ggufFrom: 'edgeq' },
  'llama1b-q4': { preset: 'llama-3.2-1b', bits: 4, group: 32, sym: true, gguf: 'q4_0', ggufFrom: 'edgeq' },
  'llama1b-q2': { preset: 'llama-3.2-1b', bits: 2, group: 64, sym: false, gguf: 'q2_k', ggufFrom: 'fp16' },
};

const { writeSyntheticModel } = await dist('model/synthetic.js');
const { exportGguf } = await dist('export/gguf-export.js');
const { createWasmBackend } = await dist('kernels/wasm-backend.js');
const { loadModel } = await dist('model/load-model.js');
const { measureThroughput, summarizeRates } = await dist('eval/throughput.js');
const { openLlamaCpp } = await dist('peer/llama-cpp.js');
const { measureReadBandwidth } = await dist('devices/bandwidth.js');

async function ensureModel(preset) {
  const dir = path.join(root, '.cache/synthetic', preset);
  if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
    log(`generating the ${preset} synthetic model…`);
    await writeSyntheticModel(preset, dir, {});
  }
  return dir;
}

function ensureQuantized(src, c, name) {
  const out = path.join(cacheDir, name);
  if (!fs.existsSync(path.join(out, 'model.safetensors'))) {
    log(`quantizing ${name} (RTN int${c.bits} g${c.group} ${c.sym ? 'sym' : 'asym'})…`);
    execFileSync(process.execPath, [edgeqBin, 'quantize', '-m', src, '--method', 'rtn', '--bits', String(c.bits), '-g', String(c.group), c.sym ? '--sym' : '--asym', '-o', out, '--quiet', '--json', '--threads', String(threads)], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return out;
}

async function ensureGguf(modelDir, type, name) {
  const out = path.join(cacheDir, `${name}.gguf`);
  if (!fs.existsSync(out)) {
    log(`exporting ${name}.gguf (${type})…`);
    await exportGguf({ modelDir, out, type });
  }
  return out;
}

const results = [];
const bw = await measureReadBandwidth({ threads });
log(`read bandwidth (${threads} threads): ${(bw.bytesPerSec / 1e9).toFixed(1)} GB/s`);
for (const id of wanted) {
  const c = CASES[id];
  if (!c) throw new Error(`unknown case ${id}; choose from ${Object.keys(CASES).join(', ')}`);
  const src = await ensureModel(c.preset);
  const qdir = ensureQuantized(src, c, `${c.preset}-int${c.bits}g${c.group}${c.sym ? 's' : 'a'}`);
  const gguf = await ensureGguf(c.ggufFrom === 'edgeq' ? qdir : src, c.gguf, `${c.preset}-${c.gguf}`);
  const vocab = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')).vocab_size;

  const backend = await createWasmBackend({ threads });
  const model = await loadModel(qdir, backend, { head: 'int8' });
  const peer = await openLlamaCpp(gguf, vocab);
  const edgeqBytesPerToken = model.weightBytesPerToken();
  const ggufBytes = fs.statSync(gguf).size;
  log(`${id}: warm-up…`);
  await measureThroughput(model, { promptTokens: pp, genTokens: tg, reps: 1, warmup: false });
  await peer.bench({ threads, promptTokens: pp, genTokens: tg, reps: 1, warmup: false });
  const e = { pp: [], tg: [] };
  const l = { pp: [], tg: [] };
  for (let r = 0; r < reps; r++) {
    log(`${id}: repetition ${r + 1}/${reps}`);
    const a = await measureThroughput(model, { promptTokens: pp, genTokens: 0, reps: 1, warmup: false });
    const b = await peer.bench({ threads, promptTokens: pp, genTokens: 0, reps: 1, warmup: false });
    const cc = await measureThroughput(model, { promptTokens: 0, genTokens: tg, reps: 1, warmup: false });
    const d = await peer.bench({ threads, promptTokens: 0, genTokens: tg, reps: 1, warmup: false });
    e.pp.push(a.prefill.samples[0]);
    l.pp.push(b.prefill.samples[0]);
    e.tg.push(cc.decode.samples[0]);
    l.tg.push(d.decode.samples[0]);
  }
  model.dispose();
  await backend.dispose();
  await peer.dispose();
  const stat = summarizeRates;
  const row = {
    case: id,
    preset: c.preset,
    edgeq: { grid: `int${c.bits} g${c.group} ${c.sym ? 'sym' : 'asym'}`, prefill: stat(e.pp), decode: stat(e.tg), bytesPerToken: edgeqBytesPerToken },
    llamaCpp: { type: c.gguf.toUpperCase(), version: peer.version, prefill: stat(l.pp), decode: stat(l.tg), fileBytes: ggufBytes },
  };
  row.ratio = { prefill: row.edgeq.prefill.mean / row.llamaCpp.prefill.mean, decode: row.edgeq.decode.mean / row.llamaCpp.decode.mean };
  row.roofline = {
    edgeq: (edgeqBytesPerToken * row.edgeq.decode.mean) / bw.bytesPerSec,
    llamaCpp: (ggufBytes * row.llamaCpp.decode.mean) / bw.bytesPerSec,
  };
  row.target = { decode: c.bits === 4 ? 0.8 : 1.0, prefill: 0.5 };
  results.push(row);
}

const f = (x, d = 1) => x.toFixed(d);
const rs = (r) => `${f(r.mean)} ± ${f(r.sd)}`;
const table = [['case', 'test', 'edgeq t/s', 'llama.cpp t/s', 'ratio', 'target', 'edgeq % roofline', 'llama.cpp % roofline']];
for (const r of results) {
  table.push([r.case, `pp${pp}`, rs(r.edgeq.prefill), rs(r.llamaCpp.prefill), `${f(r.ratio.prefill, 2)}×`, `≥ ${r.target.prefill}×`, '', '']);
  table.push([r.case, `tg${tg}`, rs(r.edgeq.decode), rs(r.llamaCpp.decode), `${f(r.ratio.decode, 2)}×`, `≥ ${r.target.decode}×`, `${f(100 * r.roofline.edgeq, 0)} %`, `${f(100 * r.roofline.llamaCpp, 0)} %`]);
}
const widths = table[0].map((_, i) => Math.max(...table.map((r) => String(r[i]).length)));
console.log(`edgeq vs llama.cpp, ${threads} threads, ${reps} alternating repetitions; read bandwidth ${(bw.bytesPerSec / 1e9).toFixed(1)} GB/s`);
for (const r of table) console.log(r.map((c, i) => (i < 2 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '));
console.log(`BENCH_JSON ${JSON.stringify({ bench: 'peer', threads, reps, pp, tg, bandwidth: bw.bytesPerSec, results })}`);
