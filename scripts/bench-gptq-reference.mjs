#!/usr/bin/env node
// edgeq's GPTQ against the original implementation (IST-DASLab/gptq `gptq.py` GPTQ.fasterquant + `quant.py`
// Quantizer) on brown-llama-7m at w4 g128 asymmetric, damp 0.01, blocksize 128, no act-order, static_groups off,
// min/max grid (no MSE clip), calibration 128 × 256 Brown tokens (seed 0), true-sequential as edgeq runs it.
//
//   1. `edgeq quantize --method gptq` with EDGEQ_DUMP_GPTQ=<dir>: per linear the W the solver received, the
//      Hessian H = 2XᵀX/N edgeq's pipeline accumulated for it (undamped) and edgeq's result.
//   2. scripts/gptq-reference/compare.py (/usr/bin/python3 + torch) runs the upstream solver, imported from the
//      checkout given by --gptq-repo, on the same W and H: codes identical, max |ΔWq| in group scales, the
//      Hessian-weighted error tr(ΔW H ΔWᵀ) of edgeq / upstream / RTN (see its docstring).
//   3. End to end (--windows N, default 32; --no-e2e skips): dense F32 checkpoints of the fake-quantized weights
//      (edgeq's dumped result, upstream's result on edgeq's H) and edgeq's own checkpoint (dequantized), each
//      against the FP16 model on the first N WikiText-2 windows (ctx 256): mean KL, Δppl, top-1.
// Prints a table and one BENCH_JSON line. The upstream code is never part of this repository: check it out
// beside it, e.g. git clone https://github.com/IST-DASLab/gptq .cache/gptq-upstream (tested at 2d65066).
//   npm run bench:gptq-reference -- --gptq-repo .cache/gptq-upstream [--python /usr/bin/python3] [--threads 2]
//     [--windows 32] [--no-e2e] [--reuse-dump] [--calib-samples 128 --calib-seqlen 256] [--group 128]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cliArgs, dist, formatTable, openEval, repoRoot, runQuantize } from './lib/bench-common.mjs';

const { arg, flag } = cliArgs();
const gptqRepo = arg('gptq-repo', process.env.GPTQ_REPO);
const python = arg('python', '/usr/bin/python3');
const threads = Number(arg('threads', 2));
const windows = Number(arg('windows', 32));
const bits = 4;
const group = Number(arg('group', 128)); // 128 = blocksize: group params see exactly upstream's weights (see gptq.ts)
const baselineDir = path.join(repoRoot, 'fixtures/models/brown-llama-7m');
const outRoot = path.join(repoRoot, '.cache/bench-gptq-reference');
const dumpDir = path.join(outRoot, `dump-g${group}`);
const edgeqDir = path.join(outRoot, `edgeq-gptq-w${bits}g${group}`);

function missing(msg) {
  process.stderr.write(
    `bench:gptq-reference: ${msg}\n\nNeeds:\n` +
      `  - a checkout of the original GPTQ code (gptq.py, quant.py), passed as --gptq-repo DIR (or GPTQ_REPO=DIR):\n` +
      `      git clone https://github.com/IST-DASLab/gptq .cache/gptq-upstream   (measured at commit 2d65066)\n` +
      `  - PyTorch + NumPy for ${python} (Debian: apt-get install python3-torch; --python PATH for another interpreter).\n` +
      `    transformers is not needed (compare.py stands in for the one name gptq.py imports from it).\n`,
  );
  process.exit(2);
}
if (!gptqRepo) missing('no --gptq-repo given');
for (const f of ['gptq.py', 'quant.py']) if (!fs.existsSync(path.join(gptqRepo, f))) missing(`${gptqRepo} has no ${f}`);
const probe = spawnSync(python, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
if (probe.status !== 0) missing(`${python} cannot import torch and numpy (${(probe.stderr || String(probe.error)).trim().split('\n').pop()})`);
const torchVersion = probe.stdout.trim();
const upstreamCommit = (() => {
  try {
    return execFileSync('git', ['-C', gptqRepo, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null; // an exported tree, not a git checkout
  }
})();

// ---- 1. edgeq's GPTQ with the dump hook ----
fs.mkdirSync(outRoot, { recursive: true });
let quantSeconds = null;
if (!(flag('reuse-dump') && fs.existsSync(dumpDir) && fs.existsSync(path.join(edgeqDir, 'config.json')))) {
  fs.rmSync(dumpDir, { recursive: true, force: true });
  process.env.EDGEQ_DUMP_GPTQ = dumpDir;
  process.stderr.write(`quantizing GPTQ w${bits} g${group} asym with EDGEQ_DUMP_GPTQ=${path.relative(repoRoot, dumpDir)}…\n`);
  const calib = ['--calib-samples', arg('calib-samples', '128'), '--calib-seqlen', arg('calib-seqlen', '256'), '--seed', '0'];
  const rep = runQuantize(['-m', baselineDir, '--method', 'gptq', '--bits', String(bits), '-g', String(group), '--asym', '--damp', '0.01', ...calib, '--threads', String(threads)], edgeqDir);
  delete process.env.EDGEQ_DUMP_GPTQ;
  quantSeconds = rep.seconds;
}

// ---- 2. the upstream solver on the same W and H ----
process.stderr.write(`upstream GPTQ (${gptqRepo}) on every dumped linear…\n`);
const cmpJson = path.join(outRoot, `compare-g${group}.json`);
const cmp = spawnSync(python, [path.join(repoRoot, 'scripts/gptq-reference/compare.py'), dumpDir, '--gptq-repo', gptqRepo, '--json', cmpJson, '--write-ref', '--calib-seqlen', arg('calib-seqlen', '256')], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, OMP_NUM_THREADS: String(threads) },
});
if (cmp.status !== 0) {
  if (cmp.status === 2) process.exit(2);
  throw new Error(`compare.py failed (status ${cmp.status})`);
}
const { rows, summary } = JSON.parse(fs.readFileSync(cmpJson, 'utf8'));

const short = (n) => n.replace(/^model\.layers\./, '').replace(/\.weight$/, '').replace(/(self_attn|mlp)\./, '');
const pct = (v) => (100 * v).toFixed(3);
const table = [
  ['linear', 'codes = ref %', 'codes = ref16 %', 'max|Δ|/scale', 'err edgeq/RTN', 'err ref/RTN', 'edgeq/ref', 'loss edgeq', 'loss ref'],
  ...rows.map((r) => [
    short(r.name),
    pct(r.ref.codesIdentical),
    pct(r.ref16.codesIdentical),
    r.ref.maxDiffInScales.toFixed(2),
    (r.err.edgeq / r.err.rtn).toFixed(4),
    (r.err.ref / r.err.rtn).toFixed(4),
    (r.err.edgeq / r.err.ref).toFixed(4),
    r.edgeqLoss.toPrecision(5),
    r.ref.upstreamLoss.toPrecision(5),
  ]),
  ['all', pct(summary.codesIdentical.ref), pct(summary.codesIdentical.ref16), summary.maxDiffInScales.ref.toFixed(2), (summary.errSum.edgeq / summary.errSum.rtn).toFixed(4), (summary.errSum.ref / summary.errSum.rtn).toFixed(4), summary.edgeqOverRef.sum.toFixed(4), '', ''],
];

// ---- 3. end to end: dense fake-quantized checkpoints vs FP16 ----
let e2e = null;
if (!flag('no-e2e')) {
  const { SafetensorsCheckpoint } = await dist('formats/safetensors/checkpoint.js');
  const { writeSafetensors } = await dist('formats/safetensors/writer.js');
  /** baselineDir with every dumped linear replaced by `<name>.<ext>` from the dump, stored as F32. */
  async function denseCheckpoint(dir, ext) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    for (const f of fs.readdirSync(baselineDir)) if (f !== 'model.safetensors') fs.copyFileSync(path.join(baselineDir, f), path.join(dir, f));
    const src = await SafetensorsCheckpoint.open(baselineDir);
    const tensors = [];
    let replaced = 0;
    for (const [name, info] of src.tensors) {
      const file = path.join(dumpDir, `${name}.${ext}`);
      if (fs.existsSync(file)) {
        const b = fs.readFileSync(file);
        tensors.push({ name, dtype: 'F32', shape: info.shape, data: new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice() });
        replaced++;
      } else tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await src.readRaw(name) });
    }
    await src.close();
    await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    return replaced;
  }
  const denseEdgeq = path.join(outRoot, `dense-edgeq-g${group}`);
  const denseRef = path.join(outRoot, `dense-upstream-g${group}`);
  const nE = await denseCheckpoint(denseEdgeq, 'Wq.f32');
  const nR = await denseCheckpoint(denseRef, 'Wq_ref.f32');
  if (nE !== rows.length || nR !== rows.length) throw new Error(`dense checkpoints replaced ${nE} / ${nR} linears, expected ${rows.length}`);
  const { backend, baseline, tok, text, loadModel, compareManyWithBaseline } = await openEval(baselineDir, threads);
  const models = [await loadModel(edgeqDir, backend, { quantized: 'dequantized' }), await loadModel(denseEdgeq, backend), await loadModel(denseRef, backend)];
  process.stderr.write(`evaluating 3 models + FP16 on ${windows} WikiText-2 windows…\n`);
  const res = await compareManyWithBaseline(models, baseline, text.ids, { ctx: 256, bosId: tok.bosId ?? 1, maxWindows: windows });
  await backend.dispose();
  const labels = ['edgeq GPTQ checkpoint (dequantized)', 'edgeq GPTQ, dense F32 from the dump', 'upstream GPTQ on edgeq H, dense F32'];
  e2e = res.map((r, i) => ({ model: labels[i], windows: r.windows, ppl: r.ppl, baselinePpl: r.baselinePpl, deltaPpl: r.deltaPpl, meanKl: r.meanKl, top1: r.top1Agreement }));
}

console.log(`edgeq GPTQ vs IST-DASLab gptq.py (${upstreamCommit ? upstreamCommit.slice(0, 7) : 'checkout'}, torch ${torchVersion}) — brown-llama-7m w${bits} g${group} asym, damp 0.01, blocksize 128, no act-order`);
console.log('ref = upstream as is (fp32 scales); ref16 = upstream with its scale rounded up to fp16 as edgeq stores it; err = tr(ΔW H ΔWᵀ), H = edgeq\'s 2XᵀX/N');
for (const line of formatTable(table)) console.log(line);
if (e2e) {
  console.log(`\nend to end, first ${windows} WikiText-2 windows (ctx 256) vs FP16 (ppl ${e2e[0].baselinePpl.toFixed(2)}):`);
  for (const line of formatTable([['model', 'ppl', 'Δppl', 'mean KL', 'top-1 %'], ...e2e.map((r) => [r.model, r.ppl.toFixed(3), r.deltaPpl.toFixed(3), r.meanKl.toExponential(4), (100 * r.top1).toFixed(2)])])) console.log(line);
}
const bench = {
  bench: 'gptq-reference',
  model: 'brown-llama-7m',
  grid: { bits, groupSize: group, sym: false },
  settings: { damp: 0.01, blocksize: 128, actOrder: false, staticGroups: false, mse: false, calibSamples: Number(arg('calib-samples', '128')), calibSeqlen: Number(arg('calib-seqlen', '256')) },
  upstream: { repo: 'IST-DASLab/gptq', commit: upstreamCommit, torch: torchVersion },
  quantSeconds,
  linears: rows.length,
  codesIdentical: summary.codesIdentical,
  maxDiffInScales: summary.maxDiffInScales,
  errVsRtn: { edgeq: summary.errSum.edgeq / summary.errSum.rtn, ref: summary.errSum.ref / summary.errSum.rtn, ref16: summary.errSum.ref16 / summary.errSum.rtn },
  edgeqOverRef: summary.edgeqOverRef,
  e2e,
};
console.log(`BENCH_JSON ${JSON.stringify(bench)}`);
