#!/usr/bin/env node
// Quantization quality on brown-llama-7m: RTN, RTN+imatrix, GPTQ and AWQ at w4 g128, w3 g128 and w2 g64 with
// the bundled calibration set (128 × 256 tokens, seed 0), each evaluated on WikiText-2 (ctx 256, first 128
// windows) on the dequantized-fp32 reference forward against the FP16 model: ppl, Δppl, mean KL divergence,
// top-1 agreement, size, bits/weight, quantization wall time. Prints a table and one BENCH_JSON line.
//   npm run bench:quality [-- --windows 128 --threads 2 --methods rtn,gptq,awq --configs 4:128,3:128,2:64]
// A quick AWQ iteration: npm run bench:quality -- --methods rtn,awq --configs 4:128,3:128 (AWQ runs print, per
// block, each mapping's α and its module-output MSE relative to unscaled fake quantization).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const args = process.argv.slice(2);
const arg = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const windows = Number(arg('windows', 128));
const threads = Number(arg('threads', 2));
const methods = arg('methods', 'rtn,rtn-imatrix,gptq,awq').split(',');
const configs = arg('configs', '4:128,3:128,2:64').split(',').map((s) => s.split(':').map(Number));
const calib = ['--calib-samples', arg('calib-samples', '128'), '--calib-seqlen', arg('calib-seqlen', '256'), '--seed', '0'];
const baselineDir = path.join(root, 'fixtures/models/brown-llama-7m');
const outRoot = path.join(root, '.cache/bench-quality');
fs.mkdirSync(outRoot, { recursive: true });

const runs = [];
for (const [bits, group] of configs) {
  for (const m of methods) {
    const [method, extra] = m === 'rtn-imatrix' ? ['rtn', ['--imatrix']] : [m, []];
    const out = path.join(outRoot, `${m}-w${bits}g${group}`);
    process.stderr.write(`quantizing ${m} w${bits} g${group}…\n`);
    const t0 = Date.now();
    const json = execFileSync(process.execPath, [path.join(root, 'bin/edgeq.js'), 'quantize', '-m', baselineDir, '--method', method, ...extra, '--bits', String(bits), '-g', String(group), ...calib, '--threads', String(threads), '-o', out, '--overwrite', '--json', '--quiet'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const rep = JSON.parse(json);
    // AWQ: per block and mapping, the chosen α and the module-output MSE of the best scales relative to s = 1
    const awq = rep.awq?.length ? rep.awq.map((b) => ({ block: b.block, mappings: b.mappings.map((x) => ({ mapping: x.mapping, alpha: x.alpha, mseRatio: x.mseBest / x.mseNoScale })) })) : undefined;
    for (const b of awq ?? []) process.stderr.write(`  block ${b.block}: ${b.mappings.map((x) => `${x.mapping.split('→')[1]} α=${x.alpha} mse×${x.mseRatio.toFixed(3)}`).join(' | ')}\n`);
    runs.push({ method: m, bits, group, dir: out, seconds: rep.seconds ?? (Date.now() - t0) / 1000, bytes: rep.plan.bytes, bitsPerWeight: rep.plan.bitsPerWeight, params: rep.plan.params, awq });
  }
}

const { createWasmBackend } = await dist('kernels/wasm-backend.js');
const { loadModel } = await dist('model/load-model.js');
const { EdgeqTokenizer } = await dist('tokenizer/tokenizer.js');
const { readEvalText, tokenizeText } = await dist('eval/dataset.js');
const { compareManyWithBaseline } = await dist('eval/compare.js');
const backend = await createWasmBackend({ threads });
const baseline = await loadModel(baselineDir, backend);
const models = [];
// the dequantized-fp32 reference forward (the packed low-bit core is checked against it by bench:core-accuracy)
for (const r of runs) models.push(await loadModel(r.dir, backend, { quantized: 'dequantized' }));
const tok = EdgeqTokenizer.load(baselineDir, baseline.config.bosTokenId, baseline.config.eosTokenIds);
const text = tokenizeText(tok, readEvalText(path.join(root, 'fixtures/text/wiki.test.raw')));
process.stderr.write(`evaluating ${models.length} models + FP16 on ${windows} windows…\n`);
const res = await compareManyWithBaseline(models, baseline, text.ids, { ctx: 256, bosId: tok.bosId ?? 1, maxWindows: windows });
await backend.dispose();

const fp16Bytes = fs.statSync(path.join(baselineDir, 'model.safetensors')).size;
const rows = runs.map((r, i) => ({ ...r, dir: path.relative(root, r.dir), ...res[i], gptqPerBillion: (r.seconds / r.params) * 1e9 }));
const header = ['method', 'bits', 'group', 'ppl', 'Δppl', 'mean KL', 'top-1 %', 'size MB', 'bits/w', 'quant s'];
const table = [
  header,
  ['fp16', '16', '-', res[0].baselinePpl.toFixed(3), '0', '0', '100', (fp16Bytes / 1e6).toFixed(2), '16', '-'],
  ...rows.map((r) => [r.method, r.bits, r.group, r.ppl.toFixed(3), r.deltaPpl.toFixed(3), r.meanKl.toFixed(5), (100 * r.top1Agreement).toFixed(2), (r.bytes / 1e6).toFixed(2), r.bitsPerWeight.toFixed(3), r.seconds.toFixed(1)]),
];
const w = header.map((_, i) => Math.max(...table.map((row) => String(row[i]).length)));
console.log(`brown-llama-7m · WikiText-2 ctx 256 · first ${res[0].windows} windows (${res[0].scoredTokens} tokens) · calibration brown ${calib.join(' ')}`);
for (const row of table) console.log(row.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  '));

// Expectation from the issue: at 4 and 3 bits, GPTQ's and AWQ's mean KL each at most 0.8× RTN's.
const verdicts = [];
for (const [bits, group] of configs) {
  const kl = (m) => rows.find((r) => r.method === m && r.bits === bits && r.group === group)?.meanKl;
  for (const m of ['gptq', 'awq']) {
    if (kl(m) === undefined || kl('rtn') === undefined) continue;
    const ratio = kl(m) / kl('rtn');
    verdicts.push({ bits, group, method: m, klRatioVsRtn: ratio, target: bits >= 3 ? 0.8 : null, pass: bits >= 3 ? ratio <= 0.8 : null });
  }
}
for (const v of verdicts) console.log(`${v.method} w${v.bits}g${v.group}: KL / RTN KL = ${v.klRatioVsRtn.toFixed(3)}${v.target ? ` (target ≤ ${v.target}: ${v.pass ? 'met' : 'NOT met'})` : ''}`);
console.log(`BENCH_JSON ${JSON.stringify({ bench: 'quality', model: 'brown-llama-7m', windows: res[0].windows, baselinePpl: res[0].baselinePpl, fp16Bytes, rows, verdicts })}`);
