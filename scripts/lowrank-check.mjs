#!/usr/bin/env node
// Low-rank factorization quality on brown-llama-7m block 0: for each linear, the relative output error
// ‖X·Wᵀ − X·(U·V)ᵀ‖²_F / ‖X·Wᵀ‖²_F of plain SVD, ASVD (α = 0.5) and SVD-LLM at keep ratios 0.9 / 0.8 / 0.7
// (rank = floor(keep·n·k/(n+k))). X are the block-0 inputs of each linear (tapped from the FP model) for
// calibration sequences of the bundled Brown text: the factorization is fitted on --samples sequences
// (seed 0) and measured both on those (fit) and on --eval-samples held-out sequences (seed 1).
// Not a test and not an npm script yet. Needs a TypeScript build (npm run build:ts, or EDGEQ_DIST=dir).
//   node scripts/lowrank-check.mjs [--samples 32 --eval-samples 16 --seqlen 256 --threads 2 --json]
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const distDir = process.env.EDGEQ_DIST ? path.resolve(process.env.EDGEQ_DIST) : path.join(root, 'dist');
const dist = (p) => import(path.join(distDir, p));
const args = process.argv.slice(2);
const arg = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const samples = Number(arg('samples', 32));
const evalSamples = Number(arg('eval-samples', 16));
const seqLen = Number(arg('seqlen', 256));
const threads = Number(arg('threads', 2));
const ratios = arg('ratios', '0.9,0.8,0.7').split(',').map(Number);
const modelDir = path.join(root, 'fixtures/models/brown-llama-7m');

const { readModelConfig } = await dist('model/model-dir.js');
const { openWeightSource } = await dist('model/weight-source.js');
const { EdgeqTokenizer } = await dist('tokenizer/tokenizer.js');
const { loadCalibrationText, sampleCalibration } = await dist('calib/calibration.js');
const { GLOBAL_TENSORS, LLAMA_LINEARS } = await dist('arch/llama-tensors.js');
const { embedCalibration, BlockRunner } = await dist('pipeline/activations.js');
const { readBlockF32, toBlockWeights, freeBlockWeights } = await dist('pipeline/block-weights.js');
const { createWasmBackend } = await dist('kernels/wasm-backend.js');
const { HessianAccumulator } = await dist('quantizers/hessian.js');
const { MeanAbsAccumulator } = await dist('lowrank/whitening.js');
const { decomposeWhitened, factorsAtRank, lowRankOutputError, quadraticError, rankForRatio } = await dist('lowrank/whitened-svd.js');
const { quantizeFactors, dequantizeFactors } = await dist('lowrank/factor-quant.js');

const { config: c } = readModelConfig(modelDir);
const tok = EdgeqTokenizer.load(modelDir, c.bosTokenId, c.eosTokenIds);
const text = loadCalibrationText('brown');
const src = await openWeightSource(modelDir);
const embed = await src.readF32(GLOBAL_TENSORS.embed);
const block = await readBlockF32(src, c, 0);
const backend = await createWasmBackend({ threads });

const tapOf = { q_proj: 'qkv', k_proj: 'qkv', v_proj: 'qkv', o_proj: 'o', gate_proj: 'gate_up', up_proj: 'gate_up', down_proj: 'down' };
const widthOf = { qkv: c.hiddenSize, o: c.numHeads * c.headDim, gate_up: c.hiddenSize, down: c.intermediateSize };

/** XᵀX (k, k) and mean |x| per tap point of block 0 over `n` sequences sampled with `seed`. */
function statistics(n, seed) {
  const cal = sampleCalibration(tok, text, { samples: n, seqLen, seed });
  const acts = embedCalibration(embed, cal.ids, cal.n, cal.seqLen, c.hiddenSize);
  const acc = {};
  for (const [p, k] of Object.entries(widthOf)) acc[p] = { h: new HessianAccumulator(k, { backend }), m: new MeanAbsAccumulator(k) };
  const w = toBlockWeights(backend, block);
  new BlockRunner(c, backend, cal.seqLen).run(w, acts, {
    propagate: false,
    tap: (p, x, T) => {
      acc[p].h.addBatch(x, T);
      acc[p].m.addBatch(x, T);
    },
  });
  freeBlockWeights(w);
  return Object.fromEntries(Object.entries(acc).map(([p, a]) => [p, { xtx: a.h.H, meanAbs: a.m.mean(), rows: a.h.nsamples }]));
}

const t0 = performance.now();
const fit = statistics(samples, 0);
const held = statistics(evalSamples, 1);
process.stderr.write(`statistics: ${fit.qkv.rows} fit rows, ${held.qkv.rows} held-out rows (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);

const methods = ['plain', 'asvd', 'svdllm'];
const shown = [...methods, 'svdllm-rsvd', 'svdllm-int8'];
const rows = [];
const totals = {}; // `${method}@${keep}` → { fitErr, fitEnergy, heldErr, heldEnergy }
for (const spec of LLAMA_LINEARS) {
  const lin = block.linears[spec.role];
  const p = tapOf[spec.role];
  const { n, k, w } = lin;
  const fitEnergy = quadraticError(w, n, k, fit[p].xtx);
  const heldEnergy = quadraticError(w, n, k, held[p].xtx);
  for (const method of methods) {
    const t1 = performance.now();
    const d = decomposeWhitened(w, n, k, { method, stats: { xtx: fit[p].xtx, meanAbs: fit[p].meanAbs } });
    const svdSeconds = (performance.now() - t1) / 1000;
    for (const keep of ratios) {
      const r = rankForRatio(n, k, keep);
      const f = factorsAtRank(d, r);
      const fitErr = lowRankOutputError(w, f, fit[p].xtx);
      const heldErr = lowRankOutputError(w, f, held[p].xtx);
      rows.push({ linear: spec.role, n, k, method, keep, rank: r, fitRel: fitErr / fitEnergy, heldRel: heldErr / heldEnergy, damp: f.damp, svdSeconds });
      const key = `${method}@${keep}`;
      const t = (totals[key] ??= { fitErr: 0, fitEnergy: 0, heldErr: 0, heldEnergy: 0 });
      t.fitErr += fitErr;
      t.fitEnergy += fitEnergy;
      t.heldErr += heldErr;
      t.heldEnergy += heldEnergy;
    }
  }
  // SVD-LLM variants: the randomized solver on the wasm backend (rank r, p = 10, q = 2), and int8
  // per-channel quantized factors (sqrt split) from the exact decomposition
  const dExact = decomposeWhitened(w, n, k, { method: 'svdllm', stats: { xtx: fit[p].xtx } });
  for (const keep of ratios) {
    const r = rankForRatio(n, k, keep);
    const variants = {
      'svdllm-rsvd': factorsAtRank(decomposeWhitened(w, n, k, { method: 'svdllm', rank: r, stats: { xtx: fit[p].xtx }, solver: 'randomized', backend, randomized: { oversample: 10, powerIters: 2, seed: 0 } }), r),
      'svdllm-int8': dequantizeFactors(quantizeFactors(factorsAtRank(dExact, r, 'sqrt'), { bits: 8, groupSize: -1, sym: true })),
    };
    for (const [method, f] of Object.entries(variants)) {
      const fitErr = lowRankOutputError(w, f, fit[p].xtx);
      const heldErr = lowRankOutputError(w, f, held[p].xtx);
      rows.push({ linear: spec.role, n, k, method, keep, rank: r, fitRel: fitErr / fitEnergy, heldRel: heldErr / heldEnergy });
      const t = (totals[`${method}@${keep}`] ??= { fitErr: 0, fitEnergy: 0, heldErr: 0, heldEnergy: 0 });
      t.fitErr += fitErr;
      t.fitEnergy += fitEnergy;
      t.heldErr += heldErr;
      t.heldEnergy += heldEnergy;
    }
  }
  process.stderr.write(`${spec.role} done\n`);
}
await backend.dispose();

const pct = (x) => (100 * x).toFixed(2).padStart(7);
if (args.includes('--json')) {
  process.stdout.write(JSON.stringify({ samples, evalSamples, seqLen, rows, totals }) + '\n');
} else {
  process.stdout.write(`brown-llama-7m block 0, relative output error % (fit on ${samples}×${seqLen} tokens seed 0 | held-out ${evalSamples}×${seqLen} seed 1)\n`);
  process.stdout.write(`${'linear'.padEnd(10)} ${'n×k'.padEnd(8)} keep  rank |   plain    asvd  svdllm   rsvd*   int8* |   plain    asvd  svdllm   rsvd*   int8* (held-out)\n`);
  for (const spec of LLAMA_LINEARS) {
    for (const keep of ratios) {
      const rs = shown.map((m) => rows.find((x) => x.linear === spec.role && x.method === m && x.keep === keep));
      const { n, k, rank } = rs[0];
      process.stdout.write(`${spec.role.padEnd(10)} ${`${n}×${k}`.padEnd(8)} ${keep.toFixed(1)}  ${String(rank).padStart(4)} |${rs.map((x) => ' ' + pct(x.fitRel)).join('')} |${rs.map((x) => ' ' + pct(x.heldRel)).join('')}\n`);
    }
  }
  process.stdout.write(`rsvd* = SVD-LLM with the randomized solver (wasm GEMM, p = 10, q = 2); int8* = SVD-LLM with int8 per-channel U and V (sqrt split)\n`);
  process.stdout.write(`block total (Σ err / Σ energy over the 7 linears):\n`);
  for (const keep of ratios) {
    const t = shown.map((m) => totals[`${m}@${keep}`]);
    process.stdout.write(`  keep ${keep.toFixed(1)}: fit ${t.map((x, i) => `${shown[i]} ${pct(x.fitErr / x.fitEnergy).trim()}%`).join(', ')}\n`);
    process.stdout.write(`            held-out ${t.map((x, i) => `${shown[i]} ${pct(x.heldErr / x.heldEnergy).trim()}%`).join(', ')}\n`);
  }
}
