#!/usr/bin/env node
// Full WikiText-2 perplexity (ctx 256) of both fixture models on edgeq's core vs the float64 PyTorch
// reference. Prints a table and a JSON line. Takes minutes (the whole text).
//   npm run bench:ppl [-- --threads 2 --models stories260K,brown-llama-7m]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { createWasmBackend } = await dist('kernels/wasm-backend.js');
const { loadModel } = await dist('model/load-model.js');
const { EdgeqTokenizer } = await dist('tokenizer/tokenizer.js');
const { readEvalText, tokenizeText } = await dist('eval/dataset.js');
const { evaluatePerplexity } = await dist('eval/perplexity.js');

const args = process.argv.slice(2);
const arg = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const threads = Number(arg('threads', 2));
const models = arg('models', 'stories260K,brown-llama-7m').split(',');

const backend = await createWasmBackend({ threads });
const rows = [];
for (const name of models) {
  const dir = path.join(root, 'fixtures/models', name);
  const ref = JSON.parse(fs.readFileSync(path.join(root, 'fixtures/reference', `${name}.ctx256.json`), 'utf8')).eval;
  const model = await loadModel(dir, backend);
  const tok = EdgeqTokenizer.load(dir, model.config.bosTokenId, model.config.eosTokenIds);
  const text = tokenizeText(tok, readEvalText(path.join(root, 'fixtures/text/wiki.test.raw')));
  const r = await evaluatePerplexity(model, text.ids, {
    ctx: 256,
    bosId: tok.bosId ?? 1,
    onWindow: (d, t) => {
      if (d % 100 === 0 && process.stderr.isTTY) process.stderr.write(`\r${name} ${d}/${t}`);
    },
  });
  let maxWin = 0;
  for (let i = 0; i < r.windowMeanNll.length; i++) maxWin = Math.max(maxWin, Math.abs(r.windowMeanNll[i] - ref.window_mean_nll[i]));
  rows.push({
    model: name,
    windows: r.windows,
    refWindows: ref.windows,
    scoredTokens: r.scoredTokens,
    refScoredTokens: ref.scored_tokens,
    ppl: r.ppl,
    refPpl: ref.ppl,
    pplRelDiff: r.ppl / ref.ppl - 1,
    maxWindowNllDiff: maxWin,
    seconds: r.seconds,
    prefillTokPerSec: r.prefillTokPerSec,
    pass: Math.abs(r.ppl / ref.ppl - 1) < 1e-3 && r.windows === ref.windows && maxWin < 1e-3,
  });
  model.dispose();
}
await backend.dispose();
if (process.stderr.isTTY) process.stderr.write('\n');
const header = ['model', 'windows', 'ppl (edgeq)', 'ppl (float64 ref)', 'rel diff', 'max |Δ window NLL|', 'tok/s', 'within 0.1 %'];
const table = [header, ...rows.map((r) => [r.model, `${r.windows}/${r.refWindows}`, r.ppl.toFixed(4), r.refPpl.toFixed(4), `${(100 * r.pplRelDiff).toFixed(4)} %`, r.maxWindowNllDiff.toExponential(2), r.prefillTokPerSec.toFixed(0), r.pass ? 'yes' : 'NO'])];
const w = header.map((_, i) => Math.max(...table.map((row) => String(row[i]).length)));
for (const row of table) console.log(row.map((c, i) => String(c).padStart(w[i])).join('  '));
console.log(JSON.stringify({ bench: 'ppl', threads, rows }));
process.exitCode = rows.every((r) => r.pass) ? 0 : 1;
