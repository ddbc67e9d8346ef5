#!/usr/bin/env node
// llama.cpp vs edgeq's core on the same GGUF weights, over the FULL WikiText-2 test text (ctx 256, every window,
// edgeq's perplexity protocol of src/eval/perplexity.ts: windows of 255 tokens with BOS prepended, all scored).
// brown-llama-7m is exported with edgeq's own GGUF export to
//   F16  — straight from the FP16 checkpoint;
//   Q8_0 / Q4_0 — quantized first on the type's own grid (`edgeq quantize --method rtn --target gguf --type …`,
//          an edgeq checkpoint) and then exported, which repacks losslessly (no requantization).
// Each file is evaluated in llama.cpp (node-llama-cpp's libllama through the native harness
// scripts/llama-quantize/perplexity.cpp, F32 KV cache; the first --runner-check windows also through
// src/export/llamacpp-runner.ts, which the tests use, to show both give the same NLL) and on edgeq's core on the
// GGUF's weights decoded with edgeq's reference codecs (loadGgufAsModel). For the quantized types a one-window
// check also shows the GGUF holds the checkpoint's weights (max |Δlogit| checkpoint vs GGUF on edgeq's core).
// Pass: |ppl_llama.cpp / ppl_edgeq − 1| ≤ 0.5 %. Prints a table and one BENCH_JSON line.
//   npm run bench:gguf-ppl [-- --windows 64 --types f16,q8_0,q4_0 --threads 2 --llama-threads 1 --runner-check 4 --ctx 256]
import fs from 'node:fs';
import path from 'node:path';
import { cliArgs, dist, formatTable, repoRoot, runQuantize } from './lib/bench-common.mjs';
import { llamaCppPerplexity, writeTokenFile } from './lib/llamacpp-native.mjs';

const { arg } = cliArgs();
const threads = Number(arg('threads', 2));
const lcThreads = Number(arg('llama-threads', 1));
const runnerCheck = Number(arg('runner-check', 4));
const ctx = Number(arg('ctx', 256));
const maxWindows = arg('windows') === undefined ? undefined : Number(arg('windows'));
const types = arg('types', 'f16,q8_0,q4_0').split(',').filter(Boolean);
for (const t of types) if (!['f16', 'q8_0', 'q4_0'].includes(t)) throw new Error(`--types: unknown type ${t} (f16, q8_0, q4_0)`);
const TOLERANCE = 0.005;

const { createWasmBackend } = await dist('kernels/wasm-backend.js');
const { loadModel } = await dist('model/load-model.js');
const { readModelConfig } = await dist('model/model-dir.js');
const { EdgeqTokenizer } = await dist('tokenizer/tokenizer.js');
const { readEvalText, tokenizeText } = await dist('eval/dataset.js');
const { evaluatePerplexity, windowCount, windowNll } = await dist('eval/perplexity.js');
const { exportGguf } = await dist('export/gguf-export.js');
const { loadGgufAsModel } = await dist('export/gguf-model.js');
const { LlamaCppModel, llamaCppAvailable } = await dist('export/llamacpp-runner.js');

if (!(await llamaCppAvailable())) {
  console.error('llama.cpp (node-llama-cpp) is not available: npm install node-llama-cpp');
  process.exit(3);
}

const modelDir = path.join(repoRoot, 'fixtures/models/brown-llama-7m');
const outDir = path.join(repoRoot, '.cache/bench-gguf-ppl');
fs.mkdirSync(outDir, { recursive: true });
const { config } = readModelConfig(modelDir);
const V = config.vocabSize;
const tok = EdgeqTokenizer.load(modelDir, config.bosTokenId, config.eosTokenIds);
const bosId = tok.bosId ?? 1;
const rawText = readEvalText(path.join(repoRoot, 'fixtures/text/wiki.test.raw'));
const text = tokenizeText(tok, rawText);
const available = windowCount(text.ids.length, ctx);
const nWin = Math.min(available, maxWindows ?? available);
const tokensFile = writeTokenFile(text.ids, path.join(outDir, `wikitext2-${text.sha256.slice(0, 12)}.u32`));
const backend = await createWasmBackend({ threads });
const progress = (label) => (d, t) => {
  if (d % 100 === 0 || d === t) process.stderr.write(`  ${label} ${d}/${t}\n`);
};

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

let tokenizerMatch = null;
const rows = [];
for (const type of types) {
  const file = path.join(outDir, `brown-${type}.gguf`);
  let source = modelDir;
  let quantSeconds = null;
  if (type !== 'f16') {
    source = path.join(outDir, `brown-rtn-${type}`);
    process.stderr.write(`${type}: edgeq quantize --method rtn --target gguf --type ${type}…\n`);
    const t0 = Date.now();
    runQuantize(['-m', modelDir, '--method', 'rtn', '--target', 'gguf', '--type', type, '--threads', String(threads)], source);
    quantSeconds = (Date.now() - t0) / 1000;
  }
  const exp = await exportGguf({ modelDir: source, out: file, type }); // refuses to requantize: lossless or error
  process.stderr.write(`${type}: exported ${path.relative(repoRoot, file)} (${(exp.bytes / 1e6).toFixed(2)} MB; ${Object.entries(exp.counts).filter(([, n]) => n).map(([a, n]) => `${n} ${a}`).join(', ')})\n`);

  const same = await loadGgufAsModel(file, config, backend);
  const lc = await LlamaCppModel.load(file, V);
  try {
    if (tokenizerMatch === null) {
      const theirs = lc.tokenize(rawText);
      tokenizerMatch = theirs.length === text.ids.length && theirs.every((t, i) => t === text.ids[i]);
      process.stderr.write(`tokenizer: llama.cpp ${theirs.length} tokens, edgeq ${text.ids.length}: ${tokenizerMatch ? 'identical ids' : 'DIFFERENT'}\n`);
    }
    // the GGUF holds the checkpoint's own weights: edgeq's core on both, first window
    let checkpointVsGguf = null;
    const ids0 = [bosId, ...text.ids.subarray(0, ctx - 1)];
    if (type !== 'f16') {
      const ck = await loadModel(source, backend, { quantized: 'dequantized' });
      checkpointVsGguf = maxAbsDiff(ck.forward(ids0, ck.createCache(ctx), 'all'), same.forward(ids0, same.createCache(ctx), 'all'));
      ck.dispose();
      process.stderr.write(`${type}: max |Δlogit| edgeq checkpoint vs its GGUF (edgeq core, window 0) ${checkpointVsGguf.toExponential(2)}\n`);
    }
    process.stderr.write(`${type}: edgeq core, ${nWin} windows…\n`);
    const mine = await evaluatePerplexity(same, text.ids, { ctx, bosId, maxWindows: nWin, onWindow: progress(`${type} edgeq`) });
    // llama.cpp natively over all windows (scripts/llama-quantize/perplexity.cpp: node-llama-cpp's JS API hands out
    // logits one position at a time, ~3 s a window here); the first --runner-check windows also through
    // node-llama-cpp (src/export/llamacpp-runner.ts, as `npm test` and `edgeq export --verify` run it)
    process.stderr.write(`${type}: llama.cpp (native harness, ${lcThreads} thread), ${nWin} windows…\n`);
    const t0 = performance.now();
    const native = llamaCppPerplexity({ tokensFile, bosId, ctx, windows: nWin, threads: lcThreads, files: [file] });
    const lcSeconds = (performance.now() - t0) / 1000;
    if (native.windows !== nWin) throw new Error(`llama.cpp harness ran ${native.windows} windows, expected ${nWin}`);
    const theirNll = native.models[0].windowNll;
    const ids = new Array(ctx);
    let maxLogitDiff0 = null;
    let runnerVsNative = 0;
    for (let w = 0; w < Math.min(runnerCheck, nWin); w++) {
      ids[0] = bosId;
      for (let i = 1; i < ctx; i++) ids[i] = text.ids[w * (ctx - 1) + i - 1];
      const logits = await lc.logits(ids, { threads: lcThreads });
      if (w === 0) maxLogitDiff0 = maxAbsDiff(logits, same.forward(ids, same.createCache(ctx), 'all'));
      runnerVsNative = Math.max(runnerVsNative, Math.abs(windowNll(logits, ids, V) - theirNll[w]));
    }
    let total = 0;
    for (const x of theirNll) total += x;
    const lcPpl = Math.exp(total / nWin);
    let maxWindowNllDiff = 0;
    for (let w = 0; w < nWin; w++) maxWindowNllDiff = Math.max(maxWindowNllDiff, Math.abs(theirNll[w] - mine.windowMeanNll[w]));
    const relDiff = lcPpl / mine.ppl - 1;
    rows.push({
      type,
      source: type === 'f16' ? 'fp16 checkpoint' : `edgeq rtn --target gguf --type ${type}`,
      file: path.relative(repoRoot, file),
      bytes: exp.bytes,
      exportActions: exp.counts,
      quantSeconds,
      windows: nWin,
      windowsAvailable: available,
      scoredTokens: mine.scoredTokens,
      edgeqPpl: mine.ppl,
      llamaCppPpl: lcPpl,
      relDiff,
      maxWindowNllDiff,
      maxLogitDiffWindow0: maxLogitDiff0,
      runnerCheckWindows: Math.min(runnerCheck, nWin),
      runnerVsNativeMaxWindowNllDiff: runnerVsNative,
      checkpointVsGgufMaxLogitDiff: checkpointVsGguf,
      edgeqSeconds: mine.seconds,
      llamaCppSeconds: lcSeconds,
      pass: Math.abs(relDiff) <= TOLERANCE,
    });
    process.stderr.write(`${type}: ppl edgeq ${mine.ppl.toFixed(4)} llama.cpp ${lcPpl.toFixed(4)} (${(100 * relDiff).toFixed(4)} %)\n`);
  } finally {
    same.dispose();
    await lc.dispose();
  }
}
await backend.dispose();

const header = ['type', 'windows', 'tokens', 'size MB', 'edgeq ppl', 'llama.cpp ppl', 'rel diff %', 'max |Δ window NLL|', 'max |Δlogit| w0', 'edgeq s', 'llama.cpp s', '≤ 0.5 %'];
const table = [
  header,
  ...rows.map((r) => [
    r.type.toUpperCase(),
    `${r.windows}/${r.windowsAvailable}`,
    r.scoredTokens,
    (r.bytes / 1e6).toFixed(2),
    r.edgeqPpl.toFixed(4),
    r.llamaCppPpl.toFixed(4),
    (100 * r.relDiff).toFixed(4),
    r.maxWindowNllDiff.toExponential(2),
    r.maxLogitDiffWindow0 === null ? '-' : r.maxLogitDiffWindow0.toExponential(2),
    r.edgeqSeconds.toFixed(0),
    r.llamaCppSeconds.toFixed(0),
    r.pass ? 'PASS' : 'FAIL',
  ]),
];
console.log(`brown-llama-7m GGUF (edgeq export) · WikiText-2 test · ctx ${ctx} · ${nWin} of ${available} windows · llama.cpp (node-llama-cpp's libllama, native harness, F32 KV cache) vs edgeq's core on the GGUF-decoded weights`);
for (const line of formatTable(table, [0])) console.log(line);
console.log(`llama.cpp native harness vs node-llama-cpp (llamacpp-runner.ts) on the first ${rows[0]?.runnerCheckWindows} windows: max |Δ window NLL| ${rows.map((r) => `${r.type} ${r.runnerVsNativeMaxWindowNllDiff.toExponential(1)}`).join(', ')}`);
console.log(`tokenizer: llama.cpp's ids for the whole text ${tokenizerMatch ? 'equal' : 'DIFFER from'} edgeq's; Q8_0/Q4_0 GGUFs are lossless repacks of edgeq RTN checkpoints (max |Δlogit| checkpoint vs GGUF: ${rows.filter((r) => r.checkpointVsGgufMaxLogitDiff !== null).map((r) => `${r.type} ${r.checkpointVsGgufMaxLogitDiff.toExponential(1)}`).join(', ') || '-'})`);
console.log(`BENCH_JSON ${JSON.stringify({ bench: 'gguf-ppl', model: 'brown-llama-7m', dataset: 'wikitext2-test', ctx, windows: nWin, windowsAvailable: available, tolerance: TOLERANCE, tokenizerMatch, rows, pass: rows.every((r) => r.pass) })}`);
process.exitCode = rows.every((r) => r.pass) ? 0 : 1;
