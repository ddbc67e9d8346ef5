#!/usr/bin/env node
// Same-process A/B of kernel builds on whole-model decode (or prefill). Run `npm run build` first.
//   npm run bench:decode-ab -- --wasm A.wasm,B.wasm[,C.wasm] --model DIR [--threads 2] [--rounds 16] [--tokens 24]
//                              [--prefill N]   (time an N-token prompt instead of decoding)
// Each build gets its own backend and its own copy of the model (an edgeq checkpoint, e.g. one of bench:peer's in
// .cache/bench-peer); rounds alternate between the builds (the order rotates every round) and each round decodes
// --tokens tokens from an empty cache (int8 LM head, as bench:peer). Prints per build the median tok/s and the
// paired ratio to the first build (median and interquartile range of the per-round ratios), and one BENCH_JSON line.
// The builds must read the packed layout this tree's dist/ writes (checked: PACKED_LAYOUT).
import path from 'node:path';
import { cliArgs, dist } from './lib/bench-common.mjs';

const { arg } = cliArgs();
const files = arg('wasm', '').split(',').filter(Boolean).map((f) => path.resolve(f));
const modelDir = arg('model');
if (files.length < 2 || !modelDir) {
  console.error('bench-decode-ab: give two or more builds and a model, e.g. --wasm /tmp/before.wasm,build/kernels.wasm --model .cache/bench-peer/llama-3.2-1b-int2g64a');
  process.exit(2);
}
const threads = Number(arg('threads', 2));
const rounds = Number(arg('rounds', 16));
const tokens = Number(arg('tokens', 24));
const prefill = Number(arg('prefill', 0));

const { loadKernelModule } = await dist('kernels/wasm-backend.js');
const { createWasmBackendFromModule, POOL_FNS } = await dist('kernels/wasm-backend-core.js');
const { ThreadPool } = await dist('kernels/thread-pool.js');
const { ShardedBackend } = await dist('kernels/sharded-backend.js');
const { loadModel } = await dist('model/load-model.js');
const { measureThroughput } = await dist('eval/throughput.js');

const MAX = 65536 * 65536;
const sides = [];
for (const f of files) {
  const module = await loadKernelModule(new URL(`file://${f}`));
  const createShard = () => createWasmBackendFromModule(module, threads, (memory) => ThreadPool.create(module, memory, threads - 1, POOL_FNS), MAX);
  let backend;
  try {
    backend = new ShardedBackend(await createShard(), { maxMemoryBytes: MAX, createShard, respinFirst: threads > 1 });
  } catch (err) {
    console.error(`bench-decode-ab: ${f}: ${err.message}`);
    process.exit(1);
  }
  const model = await loadModel(path.resolve(modelDir), backend, { head: 'int8' });
  await measureThroughput(model, { promptTokens: 0, genTokens: 8, reps: 1, warmup: false });
  sides.push({ file: f, backend, model, rates: [] });
}
for (let r = 0; r < rounds; r++) {
  for (let j = 0; j < sides.length; j++) {
    const s = sides[(j + r) % sides.length];
    const out = await measureThroughput(s.model, { promptTokens: prefill, genTokens: prefill ? 0 : tokens, reps: 1, warmup: false });
    s.rates.push(prefill ? out.prefill.samples[0] : out.decode.samples[0]);
  }
}
const q = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
console.log(`${prefill ? `prefill (${prefill}-token prompt)` : 'decode'} A/B · ${path.basename(path.resolve(modelDir))} · ${threads} threads · ${rounds} rounds${prefill ? '' : ` of ${tokens} tokens`}`);
const rows = sides.map((s) => {
  const ratios = s.rates.map((v, i) => v / sides[0].rates[i]);
  return { file: s.file, medianTokPerSec: q(s.rates, 0.5), pairedRatio: { median: q(ratios, 0.5), p25: q(ratios, 0.25), p75: q(ratios, 0.75) }, samples: s.rates };
});
const w = Math.max(...rows.map((r) => r.file.length));
console.log(`${'build'.padEnd(w)}  tok/s (median)  paired ratio (median, p25–p75)`);
for (const r of rows) console.log(`${r.file.padEnd(w)}  ${r.medianTokPerSec.toFixed(2).padStart(14)}  ${r.pairedRatio.median.toFixed(3)} (${r.pairedRatio.p25.toFixed(3)}–${r.pairedRatio.p75.toFixed(3)})`);
console.log(`BENCH_JSON ${JSON.stringify({ bench: 'decode-ab', phase: prefill ? 'prefill' : 'decode', model: path.resolve(modelDir), threads, rounds, tokens: prefill || tokens, rows })}`);
for (const s of sides) {
  s.model.dispose();
  await s.backend.dispose();
}
