#!/usr/bin/env node
// Does the low-bit core cost accuracy? brown-llama-7m quantized with RTN, GPTQ and AWQ at w4 g128, w3 g128
// and w2 g64 (the bench:quality grid; its checkpoints in .cache/bench-quality are reused when present),
// each scored on WikiText-2 (ctx 256, first 128 windows) three ways: the packed LUT kernel, the packed
// int8-dot kernel, and the dequantized-fp32 reference. Target: |ppl_core / ppl_ref − 1| ≤ 0.5 %.
// Prints a table and one BENCH_JSON line.
//   npm run bench:core-accuracy [-- --windows 128 --threads 2 --methods rtn,gptq,awq --configs 4:128,3:128,2:64]
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
const methods = arg('methods', 'rtn,gptq,awq').split(',');
const configs = arg('configs', '4:128,3:128,2:64').split(',').map((s) => s.split(':').map(Number));
const calib = ['--calib-samples', arg('calib-samples', '128'), '--calib-seqlen', arg('calib-seqlen', '256'), '--seed', '0'];
const baselineDir = path.join(root, 'fixtures/models/brown-llama-7m');
const cacheRoot = path.join(root, '.cache/bench-quality');
fs.mkdirSync(cacheRoot, { recursive: true });

const { createWasmBackend } = await dist('kernels/wasm-backend.js');
const { loadModel } = await dist('model/load-model.js');
const { EdgeqTokenizer } = await dist('tokenizer/tokenizer.js');
const { readEvalText, tokenizeText } = await dist('eval/dataset.js');
const { evaluatePerplexity } = await dist('eval/perplexity.js');
const { isEdgeqCheckpoint } = await dist('formats/edgeq/index.js');

const backend = await createWasmBackend({ threads });
const tokCfg = JSON.parse(fs.readFileSync(path.join(baselineDir, 'config.json'), 'utf8'));
const tok = EdgeqTokenizer.load(baselineDir, tokCfg.bos_token_id, [tokCfg.eos_token_id]);
const text = tokenizeText(tok, readEvalText(path.join(root, 'fixtures/text/wiki.test.raw')));

const paths = [
  { name: 'lut', opts: { kernel: 'lut' } },
  { name: 'int8', opts: { kernel: 'int8' } },
  { name: 'reference', opts: { quantized: 'dequantized' } },
];
const rows = [];
for (const [bits, group] of configs) {
  for (const method of methods) {
    const dir = path.join(cacheRoot, `${method}-w${bits}g${group}`);
    if (!(fs.existsSync(dir) && (await isEdgeqCheckpoint(dir)))) {
      process.stderr.write(`quantizing ${method} w${bits} g${group}…\n`);
      execFileSync(process.execPath, [path.join(root, 'bin/edgeq.js'), 'quantize', '-m', baselineDir, '--method', method, '--bits', String(bits), '-g', String(group), ...calib, '--threads', String(threads), '-o', dir, '--overwrite', '--json', '--quiet'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    }
    const ppl = {};
    for (const p of paths) {
      const model = await loadModel(dir, backend, p.opts);
      process.stderr.write(`  ${method} w${bits}g${group} ${p.name}…\n`);
      ppl[p.name] = (await evaluatePerplexity(model, text.ids, { ctx: 256, bosId: tok.bosId ?? 1, maxWindows: windows })).ppl;
      model.dispose();
    }
    const rel = (k) => ppl[k] / ppl.reference - 1;
    rows.push({ method, bits, group, pplLut: ppl.lut, pplInt8: ppl.int8, pplReference: ppl.reference, relLut: rel('lut'), relInt8: rel('int8'), pass: Math.abs(rel('lut')) <= 0.005 && Math.abs(rel('int8')) <= 0.005 });
  }
}
await backend.dispose();

const pct = (v) => `${(100 * v).toFixed(3)} %`;
const table = [
  ['method', 'bits', 'group', 'ppl LUT', 'ppl int8-dot', 'ppl reference', 'LUT vs ref', 'int8 vs ref', '≤ 0.5 %'],
  ...rows.map((r) => [r.method, r.bits, r.group, r.pplLut.toFixed(4), r.pplInt8.toFixed(4), r.pplReference.toFixed(4), pct(r.relLut), pct(r.relInt8), r.pass ? 'yes' : 'NO']),
];
const widths = table[0].map((_, i) => Math.max(...table.map((r) => String(r[i]).length)));
console.log(`core vs dequantized-fp32 reference, brown-llama-7m, WikiText-2 ctx 256, first ${windows} windows, ${threads} threads`);
for (const r of table) console.log(r.map((c, i) => String(c).padStart(widths[i])).join('  '));
console.log(`BENCH_JSON ${JSON.stringify({ bench: 'core-accuracy', windows, threads, rows })}`);
