#!/usr/bin/env node
// Quantization quality on brown-llama-7m: RTN, RTN+imatrix, GPTQ and AWQ at w4 g128, w3 g128 and w2 g64 with
// the bundled calibration set (128 × 256 tokens, seed 0), each evaluated on WikiText-2 (ctx 256, first 128
// windows) on the dequantized-fp32 reference forward against the FP16 model: ppl, Δppl, mean KL divergence,
// top-1 agreement, size, bits/weight, quantization wall time. Prints a table and one BENCH_JSON line.
//   npm run bench:quality [-- --windows 128 --threads 2 --methods rtn,gptq,awq --configs 4:128,3:128,2:64]
//   (a config is bits:group[:sym]; 4:32:sym is exactly Q4_0's grid, 4.5 linear bits/w)
// Peer rows: llama.cpp's own quantizer (llama_model_quantize from node-llama-cpp's libllama, through the g++ harness
// scripts/llama-quantize/quantize.cpp, built into .cache/ here) on edgeq's F16 GGUF, each type evaluated in
// llama.cpp (natively, scripts/llama-quantize/perplexity.cpp; --llama-threads, default 1) on the same windows
// against llama.cpp's own F16 run of that GGUF:
//   --peer-quant q4_0,q4_k_m,q3_k_m,q2_k (default all) · --no-peer-quant · --methods none (peer rows only)
// llama.cpp's rows keep token_embd and output in F16, as edgeq's checkpoints keep the embedding and the LM head, so
// that the rows compare at equal bits per weight (--peer-quant-embeddings: llama.cpp's defaults, output Q6_K and
// token_embd near the file type). Every row states linear bits/w (the block linears' bytes × 8 / their weights,
// counted the same way from the safetensors header and from the GGUF tensor table) and file bits/w; the table is
// sorted by linear bits/w.
// Each type also with an imatrix (--no-peer-imatrix skips): mean x² per input channel of every linear, from edgeq's FP16
// forward over the same calibration sample (brown, --calib-samples × --calib-seqlen, seed 0), handed to
// llama_model_quantize as its llama_model_imatrix_data (output.weight has none, as llama-imatrix's default);
// --peer-imatrix-only: only the imatrix variants.
// Cross-check: edgeq's FP16 ppl on its core vs llama.cpp's on the F16 GGUF (the same weights).
// A quick AWQ iteration: npm run bench:quality -- --methods rtn,awq --configs 4:128,3:128 (AWQ runs print, per
// block, each mapping's α and its module-output MSE relative to unscaled fake quantization).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable, openEval, parseGridConfigs, runQuantize } from './lib/bench-common.mjs';
import { checkpointBits, ggufBits } from './lib/bits-per-weight.mjs';
import { llamaCppPerplexity, llamaHarness, writeTokenFile } from './lib/llamacpp-native.mjs';
import { writePeerImatrix } from './lib/peer-imatrix.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const args = process.argv.slice(2);
const arg = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const windows = Number(arg('windows', 128));
const threads = Number(arg('threads', 2));
const methods = arg('methods', 'rtn,rtn-imatrix,gptq,awq').split(',').filter((m) => m && m !== 'none');
const PEER_FTYPES = { q4_0: 2, q2_k: 10, q3_k_m: 12, q4_k_m: 15 }; // llama_ftype (include/llama.h of node-llama-cpp's release)
const peerTypes = args.includes('--no-peer-quant') ? [] : arg('peer-quant', Object.keys(PEER_FTYPES).join(',')).split(',').filter(Boolean);
const peerImatrix = !args.includes('--no-peer-imatrix');
const peerQuantEmbeddings = args.includes('--peer-quant-embeddings');
for (const t of peerTypes) if (!(t in PEER_FTYPES)) throw new Error(`--peer-quant: unknown type ${t} (one of ${Object.keys(PEER_FTYPES).join(', ')})`);
// bits:group[:sym] — e.g. 4:32:sym is Q4_0's grid (4.5 linear bits/w), for a row at exactly a llama.cpp type's size
const configs = parseGridConfigs(arg('configs', '4:128,3:128,2:64'));
const calib = ['--calib-samples', arg('calib-samples', '128'), '--calib-seqlen', arg('calib-seqlen', '256'), '--seed', '0'];
const baselineDir = path.join(root, 'fixtures/models/brown-llama-7m');
const outRoot = path.resolve(root, arg('out', '.cache/bench-quality')); // --out DIR: another worker's run can share .cache
fs.mkdirSync(outRoot, { recursive: true });

const runs = [];
for (const { bits, group, sym, name, label, args: gridArgs } of configs) {
  for (const m of methods) {
    const [method, extra] = m === 'rtn-imatrix' ? ['rtn', ['--imatrix']] : [m, []];
    const out = path.join(outRoot, `${m}-${name}`);
    process.stderr.write(`quantizing ${m} ${label}…\n`);
    const t0 = Date.now();
    const rep = runQuantize(['-m', baselineDir, '--method', method, ...extra, ...gridArgs, ...calib, '--threads', String(threads)], out);
    // AWQ: per block and mapping, the chosen α and the module-output MSE of the best scales relative to s = 1
    const awq = rep.awq?.length ? rep.awq.map((b) => ({ block: b.block, mappings: b.mappings.map((x) => ({ mapping: x.mapping, alpha: x.alpha, mseRatio: x.mseBest / x.mseNoScale })) })) : undefined;
    for (const b of awq ?? []) process.stderr.write(`  block ${b.block}: ${b.mappings.map((x) => `${x.mapping.split('→')[1]} α=${x.alpha} mse×${x.mseRatio.toFixed(3)}`).join(' | ')}\n`);
    runs.push({ method: m, bits, group, sym, name, label, dir: out, seconds: rep.seconds ?? (Date.now() - t0) / 1000, bytes: rep.plan.bytes, bitsPerWeight: rep.plan.bitsPerWeight, params: rep.plan.params, awq });
  }
}

const { backend, baseline, tok, text, loadModel, compareManyWithBaseline } = await openEval(baselineDir, threads);
const models = [];
// the dequantized-fp32 reference forward (the packed low-bit core is checked against it by bench:core-accuracy)
for (const r of runs) models.push(await loadModel(r.dir, backend, { quantized: 'dequantized' }));
process.stderr.write(`evaluating ${models.length} models + FP16 on ${windows} windows…\n`);
const res = models.length === 0 ? [] : await compareManyWithBaseline(models, baseline, text.ids, { ctx: 256, bosId: tok.bosId ?? 1, maxWindows: windows });

// ---- llama.cpp's own quantizer as the peer (rows evaluated in llama.cpp, baseline = llama.cpp's F16 run) ----
const peerRows = [];
let peerBase = null;
let crossCheck = null;
if (peerTypes.length) {
  const { llamaCppAvailable } = await dist('export/llamacpp-runner.js');
  if (!(await llamaCppAvailable())) process.stderr.write('llama.cpp (node-llama-cpp) not available: no peer rows\n');
  else {
    const { exportGguf } = await dist('export/gguf-export.js');
    const peerDir = path.join(outRoot, 'llama.cpp');
    fs.mkdirSync(peerDir, { recursive: true });
    const bin = llamaHarness('quantize');
    const f16 = path.join(peerDir, 'brown-f16.gguf');
    await exportGguf({ modelDir: baselineDir, out: f16, type: 'f16' });
    let imFile = null;
    if (peerImatrix) {
      process.stderr.write('imatrix: mean x² per linear input on the FP16 model over the calibration sample…\n');
      imFile = path.join(peerDir, 'imatrix.eqim');
      const im = await writePeerImatrix({ baseline, tok, samples: Number(calib[1]), seqLen: Number(calib[3]), file: imFile });
      process.stderr.write(`imatrix: ${im.count} tensors from ${im.sequences} × ${im.seqLen} calibration tokens\n`);
    }
    // F16 embedding and head (ggml_type 1) unless --peer-quant-embeddings: the same as edgeq's checkpoints keep them
    const keepF16 = peerQuantEmbeddings ? [] : ['--output-type', '1', '--token-embedding-type', '1'];
    const variants = [];
    for (const t of peerTypes) {
      for (const im of imFile ? (args.includes('--peer-imatrix-only') ? [true] : [false, true]) : [false]) {
        const file = path.join(peerDir, `brown-${t}${im ? '-imatrix' : ''}${peerQuantEmbeddings ? '-qemb' : ''}.gguf`);
        process.stderr.write(`llama.cpp quantizing ${t}${im ? ' with imatrix' : ''}${peerQuantEmbeddings ? '' : ' (embedding and head F16)'}…\n`);
        const t0 = Date.now();
        try {
          execFileSync(bin, [f16, file, String(PEER_FTYPES[t]), String(threads), ...(im ? [imFile] : []), ...keepF16], { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
        } catch (e) {
          throw new Error(`llama_model_quantize ${t} failed: ${e.stderr?.toString().split('\n').slice(-5).join('\n')}`);
        }
        variants.push({ method: `llama.cpp ${t}${im ? '+imatrix' : ''}`, type: t, imatrix: im, file, seconds: (Date.now() - t0) / 1000, size: await ggufBits(file) });
      }
    }
    // evaluated natively (scripts/llama-quantize/perplexity.cpp; the same numbers as src/export/llamacpp-runner.ts,
    // see bench:gguf-ppl, in milliseconds per window instead of seconds)
    const tokensFile = writeTokenFile(text.ids, path.join(peerDir, `wikitext2-${text.sha256.slice(0, 12)}.u32`));
    process.stderr.write(`evaluating ${variants.length} llama.cpp models + llama.cpp F16 on ${windows} windows…\n`);
    const lc = llamaCppPerplexity({ tokensFile, bosId: tok.bosId ?? 1, ctx: 256, windows, threads: Number(arg('llama-threads', 1)), files: [f16, ...variants.map((v) => v.file)] });
    const n = lc.windows * (lc.ctx - 1);
    peerBase = { ppl: lc.models[0].ppl, windows: lc.windows, scoredTokens: n, size: await ggufBits(f16) };
    variants.forEach((v, i) => {
      const m = lc.models[i + 1];
      peerRows.push({ ...v, file: path.relative(root, v.file), ppl: m.ppl, baselinePpl: peerBase.ppl, deltaPpl: m.ppl - peerBase.ppl, meanKl: m.kl, top1Agreement: m.top1 });
    });
    // the two FP16 baselines are the same weights (the F16 GGUF holds the FP16 checkpoint exactly): their ppl agree
    let edgeqFp16 = res[0]?.baselinePpl;
    if (edgeqFp16 === undefined) {
      const { evaluatePerplexity } = await dist('eval/perplexity.js');
      edgeqFp16 = (await evaluatePerplexity(baseline, text.ids, { ctx: 256, bosId: tok.bosId ?? 1, maxWindows: windows })).ppl;
    }
    crossCheck = { edgeqFp16Ppl: edgeqFp16, llamaCppF16Ppl: peerBase.ppl, relDiff: peerBase.ppl / edgeqFp16 - 1 };
  }
}

await backend.dispose();

const fp16Size = checkpointBits(baselineDir);
const rows = runs.map((r, i) => ({ ...r, dir: path.relative(root, r.dir), ...res[i], size: checkpointBits(r.dir), gptqPerBillion: (r.seconds / r.params) * 1e9 }));
const header = ['method', 'eval in', 'linears', 'emb / head', 'linear bits/w', 'file bits/w', 'size MB', 'ppl', 'Δppl', 'mean KL', 'top-1 %', 'quant s'];
// edgeq's rows and llama.cpp's own quantizations in one table, sorted by linear bits/w (equal bpw side by side);
// edgeq's rows are evaluated on edgeq's core against edgeq's FP16, llama.cpp's rows in llama.cpp against llama.cpp's
// own F16 run of the same F16 GGUF (mean KL and top-1 need the FP16 logits of the same runtime)
const qrows = [...rows.map((r) => ({ ...r, evalIn: 'edgeq', linears: r.label })), ...peerRows.map((r) => ({ ...r, evalIn: 'llama.cpp', linears: r.size.types.linears }))].sort(
  (a, b) => b.size.linearBitsPerWeight - a.size.linearBitsPerWeight || a.meanKl - b.meanKl,
);
const sizeCells = (z) => [`${z.types.embedding ?? '?'} / ${z.types.head ?? '?'}`, z.linearBitsPerWeight.toFixed(3), z.fileBitsPerWeight.toFixed(3), (z.fileBytes / 1e6).toFixed(2)];
const table = [
  header,
  ...(res.length ? [['fp16', 'edgeq', 'F16', ...sizeCells(fp16Size), res[0].baselinePpl.toFixed(3), '0', '0', '100', '-']] : []),
  ...(peerBase ? [['F16 GGUF', 'llama.cpp', 'F16', ...sizeCells(peerBase.size), peerBase.ppl.toFixed(3), '0', '0', '100', '-']] : []),
  ...qrows.map((r) => [r.method, r.evalIn, r.linears, ...sizeCells(r.size), r.ppl.toFixed(3), r.deltaPpl.toFixed(3), r.meanKl.toFixed(5), (100 * r.top1Agreement).toFixed(2), r.seconds.toFixed(1)]),
];
const nw = res[0] ?? peerBase;
console.log(`brown-llama-7m · WikiText-2 ctx 256 · first ${nw.windows} windows (${nw.scoredTokens} tokens) · calibration brown ${calib.join(' ')}`);
for (const line of formatTable(table, [0, 1, 2, 3])) console.log(line);
console.log('linear bits/w: bytes of the block linears (codes + scales + zero points, or GGUF blocks) × 8 / their 4,718,592 weights; file bits/w: file bytes × 8 / all 6,819,072 parameters (GGUF: + metadata and tokenizer)');
if (peerRows.length)
  console.log(
    `llama.cpp rows: llama_model_quantize (node-llama-cpp libllama) on edgeq's F16 GGUF${peerQuantEmbeddings ? ' (its default embedding/head types)' : ', token_embd and output kept F16 as edgeq keeps them (--peer-quant-embeddings: llama.cpp\'s defaults)'}; ppl/Δppl/KL/top-1 in llama.cpp vs its own F16 run of that GGUF; K-quants mix types per tensor (Q4_K_M: Q6_K for some ffn_down/attn_v)`,
  );
if (crossCheck) console.log(`cross-check, same FP16 weights: edgeq core ppl ${crossCheck.edgeqFp16Ppl.toFixed(4)} · llama.cpp F16 GGUF ppl ${crossCheck.llamaCppF16Ppl.toFixed(4)} (${(100 * crossCheck.relDiff).toFixed(4)} %)`);

// Expectation from the issue: at 4 and 3 bits, GPTQ's and AWQ's mean KL each at most 0.8× RTN's.
const verdicts = [];
for (const { bits, group, sym, name } of configs) {
  const kl = (m) => rows.find((r) => r.method === m && r.name === name)?.meanKl;
  for (const m of ['gptq', 'awq']) {
    if (kl(m) === undefined || kl('rtn') === undefined) continue;
    const ratio = kl(m) / kl('rtn');
    verdicts.push({ bits, group, sym, name, method: m, klRatioVsRtn: ratio, target: bits >= 3 ? 0.8 : null, pass: bits >= 3 ? ratio <= 0.8 : null });
  }
}
for (const v of verdicts) console.log(`${v.method} ${v.name}: KL / RTN KL = ${v.klRatioVsRtn.toFixed(3)}${v.target ? ` (target ≤ ${v.target}: ${v.pass ? 'met' : 'NOT met'})` : ''}`);
console.log(`BENCH_JSON ${JSON.stringify({ bench: 'quality', model: 'brown-llama-7m', windows: nw.windows, baselinePpl: res[0]?.baselinePpl, fp16Size, rows, peer: peerBase ? { runtime: 'llama.cpp', embeddingsQuantized: peerQuantEmbeddings, f16Ppl: peerBase.ppl, f16Size: peerBase.size, rows: peerRows } : undefined, crossCheck, verdicts })}`);
