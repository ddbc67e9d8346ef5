#!/usr/bin/env node
// The data-type ladder and low-rank SVD on brown-llama-7m (issue 6), every model made by `edgeq quantize`
// with the bundled calibration set (brown, the same samples × seqlen, seed 0, for every method) and evaluated
// on WikiText-2 (ctx 256) against the FP16 model on the dequantized-fp32 reference forward, as
// bench:quality does (ppl, Δppl, mean KL, top-1; the FP16 model runs once per window batch):
//   1. uniform RTN / GPTQ / AWQ at w4 g128, w3 g128, w2 g64, and the ladder (--target wasm) at 2.5, 3.0, 3.5,
//      4.0 bpw, its quantized linears solved by GPTQ and, as a second row per budget, by AWQ (each block
//      AWQ-scaled on the plan's grids first). Bits per weight of the linears from the written checkpoint (edgeq inspect:
//      the stored bytes of the block linears × 8 / their n·k — quantized codes + scales + zeros, low-rank
//      factors, dense linears alike), total = every tensor's bytes. Verdict per budget: the ladder's Δppl
//      (and KL) against the best uniform row whose linear bpw is no larger than the ladder's.
//   2. SVD at 10 / 20 / 30 % parameter reduction (--ratio 0.9 / 0.8 / 0.7): plain vs whitened (svdllm, asvd),
//      each with the same rank ratio for every linear or with ranks per linear by measured sensitivity under the
//      same total size (`--rank-by sensitivity`, variant "svdllm:sensitivity"), Δppl and variant / plain uniform
//      (target ≤ 0.5); and for one low-rank model (svdllm 0.8, int8 factors) the
//      core's perplexity (packed factors, what `edgeq eval` runs) vs the dequantized reference, within 0.5 %.
//   3. A table, one BENCH_JSON line, and bench-results/ladder-pareto.svg (Δppl and mean KL, log y, vs linear
//      bpw, log x; one series per method; the Pareto front over all rows ringed and joined).
//   npm run bench:ladder [-- --windows 128 --threads 2 --quick --keep]
//   options: --windows N|all (default 128, bench:quality's; --quick 8) · --quick (8 windows, calibration 16 × 128,
//   sensitivity 2 × 64, SVD variants plain,svdllm,svdllm:sensitivity) · --keep (keep the checkpoints, path printed) · --threads N ·
//   --calib-samples N --calib-seqlen T (default 128 × 256) · --sensitivity-samples N --sensitivity-seqlen T
//   (ladder, default 8 × 128) · --budgets 2.5,3,3.5,4 · --ladder-quantizers gptq,awq (rtn too) · --methods rtn,gptq,awq · --configs 4:128,3:128,2:64 (bits:group[:sym]) ·
//   --svd-ratios 0.9,0.8,0.7 · --svd-variants plain,plain:sensitivity,svdllm,svdllm:sensitivity (whitening[:rank-by];
//   asvd too) · --no-uniform / --no-ladder / --no-svd · --no-core-check (skip the packed-core row) · --reuse DIR[,DIR…] (take a row's checkpoint from
//   DIR/<row id> instead of quantizing when its provenance matches the row: method, grid / budget / SVD
//   variant, calibration; bench:quality's --out folder holds the uniform rows, an earlier run's --keep folder
//   all of them) · --text wikitext2|brown-heldout (the evaluation text; brown-heldout = fixtures/text/
//   brown-heldout.txt, in-distribution text brown-llama-7m never trained on) ·
//   --replot OUTPUT.txt (redraw the SVG from an earlier run's BENCH_JSON line) · --extra DIR[,DIR…] (evaluate these
//   checkpoints too, as rows of their own named by folder, in no verdict: e.g. a `--rungs` ladder) · --seeds 0,1,2 (quantize every row
//   that reads calibration data once per calibration seed, ids suffixed -s<seed> beyond seed 0; the verdicts above
//   use the first seed, and a section compares the methods' mean Δppl / KL over the seeds, with their spread)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliArgs, dist, formatTable, openEval, parseGridConfigs, repoRoot as root, runQuantize } from './lib/bench-common.mjs';
import { ladderVerdicts, meanOverSeeds, svdVerdicts, verdictWord } from './lib/ladder-verdict.mjs';
import { pairedBootstrap } from './lib/paired-bootstrap.mjs';
import { calibratedPerplexity } from './lib/temperature-fit.mjs';

const { arg, flag } = cliArgs();
const quick = flag('quick');
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
const windowsArg = arg('windows', quick ? '8' : '128');
const windows = windowsArg === 'all' ? undefined : Number(windowsArg);
const threads = Number(arg('threads', 2));
const keep = flag('keep');
const seeds = list(arg('seeds', '0')).map(Number);
if (seeds.length === 0 || seeds.some((x) => !Number.isInteger(x) || x < 0) || new Set(seeds).size !== seeds.length) throw new Error(`--seeds must list distinct integers ≥ 0 (got ${arg('seeds')})`);
const calib = { samples: Number(arg('calib-samples', quick ? 16 : 128)), seqlen: Number(arg('calib-seqlen', quick ? 128 : 256)), seed: seeds[0] };
const sens = { samples: Number(arg('sensitivity-samples', quick ? 2 : 8)), seqlen: Number(arg('sensitivity-seqlen', quick ? 64 : 128)) };
const budgets = flag('no-ladder') ? [] : list(arg('budgets', '2.5,3.0,3.5,4.0')).map(Number);
const ladderQuantizers = list(arg('ladder-quantizers', 'gptq,awq'));
for (const q of ladderQuantizers) if (!['gptq', 'awq', 'rtn'].includes(q)) throw new Error(`--ladder-quantizers: ${q} is not gptq, awq or rtn`);
const methods = flag('no-uniform') ? [] : list(arg('methods', 'rtn,gptq,awq'));
const configs = parseGridConfigs(arg('configs', '4:128,3:128,2:64'));
const svdRatios = flag('no-svd') ? [] : list(arg('svd-ratios', '0.9,0.8,0.7')).map(Number);
const svdVariants = list(arg('svd-variants', quick ? 'plain,svdllm,svdllm:sensitivity' : 'plain,plain:sensitivity,svdllm,svdllm:sensitivity')).map((v) => {
  const [whitening, rankBy = 'uniform'] = v.split(':');
  if (!['plain', 'svdllm', 'asvd'].includes(whitening) || !['uniform', 'sensitivity'].includes(rankBy)) throw new Error(`--svd-variants: ${v} is not whitening[:rank-by] (plain|svdllm|asvd, uniform|sensitivity)`);
  return { whitening, rankBy, variant: rankBy === 'uniform' ? whitening : `${whitening}+sensitivity` };
});
const reuseDirs = arg('reuse') ? list(arg('reuse')).map((d) => path.resolve(d)) : [];
const TEXTS = { wikitext2: { file: 'fixtures/text/wiki.test.raw', name: 'WikiText-2' }, 'brown-heldout': { file: 'fixtures/text/brown-heldout.txt', name: 'held-out Brown' } };
const textId = arg('text', 'wikitext2');
if (!(textId in TEXTS)) throw new Error(`--text: ${textId} is not one of ${Object.keys(TEXTS).join(', ')}`);
const evalText = TEXTS[textId];
const CHECK = { ratio: svdRatios.includes(0.8) ? 0.8 : svdRatios[0], whitening: 'svdllm', factorBits: 8 };
const CORE_TOLERANCE = 0.005;
for (const [k, v] of Object.entries({ threads, ...(windows !== undefined ? { windows } : {}), 'calib-samples': calib.samples, 'calib-seqlen': calib.seqlen }))
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer (got ${v})`);

const baselineDir = path.join(root, 'fixtures/models/brown-llama-7m');
const commonArgs = (seed) => ['-m', baselineDir, '--calib', 'brown', '--calib-samples', String(calib.samples), '--calib-seqlen', String(calib.seqlen), '--seed', String(seed), '--threads', String(threads)];
const { inspectModel } = await dist('model/inspect-model.js');
const { rungsForTarget } = await dist('ladder/rungs.js');
const { findExecutionTarget } = await dist('targets/execution-targets.js');
const { paretoPlotSvg } = await dist('report/bench-pareto-plot.js');

// --replot FILE: redraw the SVG from the BENCH_JSON line of an earlier run's output, nothing else
if (arg('replot')) {
  const line = fs.readFileSync(arg('replot'), 'utf8').split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error(`--replot: no BENCH_JSON line in ${arg('replot')}`);
  const j = JSON.parse(line.slice('BENCH_JSON '.length));
  console.log(`plot: ${writePlot(j.rows, j.windows, j.baselinePpl)}`);
  process.exit(0);
}

// ---- the runs ----
const jobs = [];
for (const b of budgets)
  for (const q of ladderQuantizers)
    jobs.push({
      // the GPTQ ladder keeps its earlier id, so that older --keep folders are reused
      id: q === 'gptq' ? `ladder-${b}` : `ladder-${q}-${b}`,
      family: 'ladder',
      quantizer: q,
      label: `≤ ${b} bpw ${q}`,
      budget: b,
      args: ['--method', 'ladder', '--target-bpw', String(b), '--target', 'wasm', '--quantizer', q, '--sensitivity-samples', String(sens.samples), '--sensitivity-seqlen', String(sens.seqlen)],
    });
for (const r of svdRatios)
  for (const v of svdVariants)
    jobs.push({
      id: `svd-${v.variant}-${r}`,
      family: 'svd',
      label: `${v.variant} ${r}`,
      ratio: r,
      whitening: v.whitening,
      variant: v.variant,
      rankBy: v.rankBy,
      args: ['--method', 'svd', '--ratio', String(r), '--whitening', v.whitening, ...(v.rankBy === 'sensitivity' ? ['--rank-by', 'sensitivity'] : [])],
    });
if (svdRatios.length && !flag('no-core-check'))
  jobs.push({
    id: `svd-${CHECK.whitening}-${CHECK.ratio}-int${CHECK.factorBits}`,
    family: 'svd',
    label: `${CHECK.whitening} ${CHECK.ratio} int${CHECK.factorBits} factors`,
    ratio: CHECK.ratio,
    whitening: CHECK.whitening,
    factorBits: CHECK.factorBits,
    coreCheck: true,
    args: ['--method', 'svd', '--ratio', String(CHECK.ratio), '--whitening', CHECK.whitening, '--factor-bits', String(CHECK.factorBits)],
  });
// uniform rows last: with --reuse they come from bench:quality's checkpoints, which may still be in the making
for (const { bits, group, sym, name, label, args } of configs) for (const m of methods) jobs.push({ id: `${m}-${name}`, family: m, label, bits, group, sym, args: ['--method', m, ...args] });
for (const d of arg('extra') ? list(arg('extra')).map((x) => path.resolve(x)) : []) {
  if (!fs.existsSync(path.join(d, 'model.safetensors'))) throw new Error(`--extra: no checkpoint (model.safetensors) in ${d}`);
  jobs.push({ id: path.basename(d), family: 'extra', label: path.basename(d), extraDir: d });
}
/** Rows that read no calibration data come out the same at any seed: quantized once (seed null). */
const deterministic = (j) => j.family === 'rtn' || j.family === 'extra' || (j.family === 'svd' && j.whitening === 'plain' && j.rankBy !== 'sensitivity');
const seededJobs = [];
for (const s of seeds)
  for (const j of jobs) {
    const det = deterministic(j);
    if (s !== seeds[0] && (det || j.coreCheck)) continue;
    seededJobs.push({ ...j, key: j.id, seed: det ? null : s, id: det || s === 0 ? j.id : `${j.id}-s${s}`, label: seeds.length > 1 && !det ? `${j.label} s${s}` : j.label });
  }

/** The plan searched the whole ladder (not a `--rungs` subset): its rung ids are the wasm target's. */
const wholeLadder = rungsForTarget(findExecutionTarget('wasm'), false).map((r) => r.id).join(',');
const sameRungs = (rungs) => Array.isArray(rungs) && rungs.map((r) => r.id).join(',') === wholeLadder;

/** A checkpoint for this job in one of the --reuse folders whose provenance matches the job, or null. */
async function reusable(j) {
  if (j.extraDir) return j.extraDir; // checked when the options were read
  for (const root of reuseDirs) {
    const dir = path.join(root, j.id);
    if (!fs.existsSync(path.join(dir, 'model.safetensors'))) continue;
    let p;
    try {
      p = JSON.parse((await inspectModel(dir)).metadata['edgeq.provenance'] ?? '{}');
    } catch {
      continue;
    }
    const c = p.calibration ?? {};
    const calibOk = c.name === 'brown' && c.samples === calib.samples && c.seqlen === calib.seqlen && c.seed === (j.seed ?? seeds[0]);
    if (!calibOk && !(deterministic(j) && p.calibration === null)) continue; // plain RTN and plain SVD read none
    let ok;
    if (j.family === 'ladder') ok = p.method === 'ladder' && (p.quantizer ?? 'gptq') === j.quantizer && sameRungs(p.ladder?.rungs) && p.ladder?.sensitivity?.samples === sens.samples && Math.abs((8 * p.ladder.budgetBytes) / p.ladder.params - j.budget) < 0.01;
    else if (j.family === 'svd') ok = p.method === 'svd' && p.svd?.ratio === j.ratio && p.svd?.whitening === j.whitening && (p.svd?.rankBy ?? 'uniform') === (j.rankBy ?? 'uniform') && (p.svd?.factorBits ?? 16) === (j.factorBits ?? 16);
    else ok = p.method === j.family && p.bits === j.bits && p.groupSize === j.group && !!p.sym === j.sym && !p.options?.imatrix;
    if (ok) return dir;
  }
  return null;
}

/** Linear bits per weight from an inspection: stored bytes of the block linears (attention + mlp groups) over their n·k. */
function linearStats(insp) {
  const lin = insp.groups.filter((g) => g.group === 'attention' || g.group === 'mlp');
  const params = lin.reduce((a, g) => a + g.params, 0);
  const bytes = lin.reduce((a, g) => a + g.bytes, 0);
  return { linearParams: params, linearBytes: bytes, linearBpw: (8 * bytes) / params, totalBytes: insp.bytes, params: insp.params, lowRankLinears: insp.lowRank.length };
}

const outRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-bench-ladder-'));
const t00 = Date.now();
const runs = [];
const failures = [];
try {
  for (const [i, j] of seededJobs.entries()) {
    const reused = await reusable(j);
    const dir = reused ?? path.join(outRoot, j.id);
    process.stderr.write(`[${i + 1}/${seededJobs.length}] ${reused ? `reusing ${reused} for` : 'quantizing'} ${j.id}… (${((Date.now() - t00) / 60000).toFixed(1)} min so far)\n`);
    const t0 = Date.now();
    let rep;
    try {
      rep = reused ? { seconds: null } : runQuantize([...commonArgs(j.seed ?? seeds[0]), ...j.args], dir);
    } catch (e) {
      process.stderr.write(`  FAILED: ${e.message}\n`);
      failures.push({ id: j.id, error: e.message });
      continue;
    }
    const insp = await inspectModel(dir);
    const stats = linearStats(insp);
    // the ladder's plan: in the --json report (dry runs) or the checkpoint's provenance ('ladder')
    let lp = rep.ladder;
    try {
      const prov = JSON.parse(insp.metadata['edgeq.provenance'] ?? '{}');
      lp ??= prov.ladder ?? prov.recipe?.details;
    } catch {
      lp = undefined;
    }
    const ladder = j.family === 'ladder' && lp ? { planBitsPerWeight: lp.bitsPerWeight, budgetBytes: lp.budgetBytes, histogram: lp.histogram, estimatedLoss: lp.estimatedLoss, sensitivity: lp.sensitivity } : undefined;
    if (ladder) process.stderr.write(`  ladder plan: ${ladder.planBitsPerWeight?.toFixed(4)} bpw, rungs ${JSON.stringify(ladder.histogram)}\n`);
    const secs = reused ? null : (rep.seconds ?? (Date.now() - t0) / 1000);
    runs.push({ ...j, args: undefined, dir, reused: reused ?? undefined, seconds: secs, wallSeconds: reused ? null : (Date.now() - t0) / 1000, planBytes: rep.plan?.bytes, ...stats, ladder });
    process.stderr.write(`  ${stats.linearBpw.toFixed(3)} bpw (linears), ${(stats.totalBytes / 1e6).toFixed(2)} MB${reused ? ' (reused)' : `, ${secs.toFixed(0)} s (wall ${runs.at(-1).wallSeconds.toFixed(0)} s)`}\n`);
  }

  if (runs.length === 0) throw new Error(`every quantization failed:\n${failures.map((f) => `${f.id}: ${f.error}`).join('\n')}`);

  // ---- evaluation: every model on the dequantized reference forward, in batches against the FP16 model ----
  const ev = await openEval(baselineDir, threads, evalText.file);
  const bosId = ev.tok.bosId ?? 1;
  const BATCH = 6;
  const TEMPERATURES = [0.8, 0.9, 1, 1.1, 1.2, 1.25, 1.3, 1.4, 1.5, 1.6]; // the FP16 scan and the calibration grid
  let baselineWindowNllAtT;
  let baselinePpl;
  let baselineEntropy;
  let baselineWindowNll;
  let baselinePplAtTemperature;
  let evalWindows;
  let scoredTokens;
  const checkRun = runs.find((r) => r.coreCheck);
  const evalItems = runs.map((r) => ({ run: r, mode: 'dequantized' }));
  if (checkRun) evalItems.push({ run: checkRun, mode: 'packed' });
  for (let b = 0; b < evalItems.length; b += BATCH) {
    const batch = evalItems.slice(b, b + BATCH);
    process.stderr.write(`evaluating ${b + 1}–${b + batch.length} of ${evalItems.length} + FP16 on ${windows ?? 'all'} windows… (${((Date.now() - t00) / 60000).toFixed(1)} min so far)\n`);
    const models = [];
    for (const it of batch) models.push(await ev.loadModel(it.run.dir, ev.backend, { quantized: it.mode }));
    const res = await ev.compareManyWithBaseline(models, ev.baseline, ev.text.ids, { ctx: 256, bosId, maxWindows: windows, temperatures: TEMPERATURES });
    batch.forEach((it, i) => {
      const { ppl, deltaPpl, meanKl, top1Agreement, entropy, windowNll, windowNllAtTemperature } = res[i];
      if (it.mode === 'packed') it.run.core = { ppl, deltaPpl, meanKl, top1Agreement, entropy };
      else Object.assign(it.run, { ppl, deltaPpl, meanKl, top1Agreement, entropy, windowNll, windowNllAtT: windowNllAtTemperature });
    });
    if (b === 0) ({ baselineEntropy, baselineWindowNll, baselinePplAtTemperature, baselineWindowNllAtTemperature: baselineWindowNllAtT } = res[0]);
    baselinePpl = res[0].baselinePpl;
    evalWindows = res[0].windows;
    scoredTokens = res[0].scoredTokens;
    for (const m of models) m.dispose?.();
  }
  await ev.backend.dispose();

  // ---- table ----
  const fp16Bytes = fs.statSync(path.join(baselineDir, 'model.safetensors')).size;
  const fmtRow = (r) => [r.family, r.label, r.ppl.toFixed(3), r.deltaPpl.toFixed(3), r.meanKl.toFixed(5), (100 * r.top1Agreement).toFixed(2), r.entropy.toFixed(4), r.linearBpw.toFixed(3), (r.totalBytes / 1e6).toFixed(2), r.seconds?.toFixed(0) ?? 'reused', r.wallSeconds?.toFixed(0) ?? '-'];
  const header = ['method', 'config', 'ppl', 'Δppl', 'mean KL', 'top-1 %', 'entropy', 'bpw (linears)', 'total MB', 'quant s', 'wall s'];
  const qrows = runs.filter((r) => r.family !== 'svd').sort((a, b) => b.linearBpw - a.linearBpw);
  const srows = runs.filter((r) => r.family === 'svd');
  // the verdicts below are per checkpoint, at the first seed (and the rows that read no calibration)
  const primary = runs.filter((r) => r.seed === null || r.seed === seeds[0]);
  const psrows = srows.filter((r) => primary.includes(r));
  console.log(`brown-llama-7m · ${evalText.name} ctx 256 · ${evalWindows} windows (${scoredTokens} tokens) · dequantized-fp32 reference forward · FP16 ppl ${baselinePpl.toFixed(3)}`);
  console.log(`calibration: brown, ${calib.samples} samples × ${calib.seqlen} tokens, seed ${seeds.join(', ')} (every method); ladder sensitivity pass: ${sens.samples} × ${sens.seqlen} tokens; ladder = --target wasm --quantizer ${ladderQuantizers.join(' | ')}`);
  console.log('bpw (linears) = stored bytes of the block linears (codes + scales + zeros, low-rank factors, dense) × 8 / their n·k, read from each written checkpoint; total MB = every tensor (embedding and head fp16); quant s = the quantize report\'s time, wall s = the whole edgeq quantize process (the ladder\'s sensitivity pass included)');
  console.log('entropy = mean entropy (nats) of the next-token distribution; Δppl intervals below: paired bootstrap over the windows (2000 resamples, seed 1)');
  console.log(`FP16 ppl with its logits ÷ T (flattened for T > 1): ${baselinePplAtTemperature.filter(([T]) => T !== 1).map(([T, p]) => `T ${T}: ${p.toFixed(3)}`).join(' · ')}`);
  for (const line of formatTable([header, ['fp16', '-', baselinePpl.toFixed(3), '0', '0', '100', baselineEntropy.toFixed(4), '16', (fp16Bytes / 1e6).toFixed(2), '-', '-'], ...qrows.map(fmtRow), ...srows.map(fmtRow)], [0, 1])) console.log(line);

  // ---- verdicts ----
  const asRow = (r) => ({ id: r.id, method: r.family, bpw: r.linearBpw, deltaPpl: r.deltaPpl, meanKl: r.meanKl, budget: r.budget });
  const lv = ladderVerdicts(primary.filter((r) => r.family === 'ladder').map(asRow), primary.filter((r) => ['rtn', 'gptq', 'awq'].includes(r.family)).map(asRow));
  const byId = new Map(runs.map((r) => [r.id, r]));
  const tokensPerWindow = scoredTokens / evalWindows;
  const interval = (series, stat) => {
    const ci = pairedBootstrap(series, tokensPerWindow, stat);
    return { point: ci.point, lo: ci.lo, hi: ci.hi, level: ci.level, resamples: ci.resamples, dropped: ci.dropped };
  };
  const ciText = (ci, d = 3) => `[95 % CI ${ci.lo.toFixed(d)} … ${ci.hi.toFixed(d)}]`;
  // settled: the interval lies on one side of the threshold (pass or fail whichever windows are drawn)
  const settled = (ci, threshold) => (ci.hi <= threshold ? 'pass settled' : ci.lo > threshold ? 'fail settled' : 'not settled by these windows');
  for (const v of lv) {
    const u = v.bestUniformByPpl && byId.get(v.bestUniformByPpl.id);
    if (!u) continue;
    v.deltaPplDifferenceCi = interval([byId.get(v.id).windowNll, u.windowNll], ([pl, pu]) => pl - pu);
  }
  console.log('\nladder vs the best uniform method of no larger linear bpw:');
  for (const v of lv) {
    const bp = v.bestUniformByPpl;
    const bk = v.bestUniformByKl;
    console.log(
      `  ${v.id}: budget ${v.budget} bpw → ${v.bpw.toFixed(3)} bpw (${v.withinBudget ? 'within budget' : 'OVER budget'}): ` +
        (bp
          ? `Δppl ${v.deltaPpl.toFixed(3)} vs ${bp.id} (${bp.bpw.toFixed(3)} bpw) ${bp.deltaPpl.toFixed(3)} → ${verdictWord(v.passPpl)} ` +
            `(difference ${v.deltaPplDifferenceCi.point.toFixed(3)} ${ciText(v.deltaPplDifferenceCi)}: ${settled(v.deltaPplDifferenceCi, 0)}); `
          : 'Δppl: no uniform row at or below this size → n/a; ') +
        (bk ? `KL ${v.meanKl.toExponential(3)} vs ${bk.id} ${bk.meanKl.toExponential(3)} → ${verdictWord(v.passKl)}` : 'KL: n/a'),
    );
  }
  const sv = svdVerdicts(psrows.filter((r) => !r.factorBits).map((r) => ({ ratio: r.ratio, whitening: r.variant, deltaPpl: r.deltaPpl, meanKl: r.meanKl })));
  for (const v of sv) {
    const row = psrows.find((r) => !r.factorBits && r.ratio === v.ratio && r.variant === v.whitening);
    const plain = psrows.find((r) => !r.factorBits && r.ratio === v.ratio && r.variant === 'plain');
    if (row && plain && v.ratioVsPlain !== null) v.ratioCi = interval([baselineWindowNll, row.windowNll, plain.windowNll], ([pb, pv, pp]) => (pv - pb) / (pp - pb));
  }
  if (sv.length) console.log('\nSVD variants vs plain SVD with the same rank ratio for every linear (fp16 factors): Δppl ratio, target ≤ 0.5 for the whitened ones');
  for (const v of sv)
    console.log(
      `  ${v.reduction} % reduction (ratio ${v.ratio}): ${v.whitening} Δppl ${v.deltaPpl.toFixed(3)} vs plain ${v.plainDeltaPpl?.toFixed(3) ?? '—'} → ×${v.ratioVsPlain?.toFixed(3) ?? '—'} ` +
        `${v.ratioCi ? `${ciText(v.ratioCi)} ` : ''}${v.whitened ? `${verdictWord(v.pass)}${v.ratioCi ? ` (${settled(v.ratioCi, v.target)})` : ''}` : '(not whitened)'}; KL ×${v.klVsPlain?.toFixed(3) ?? '—'}`,
    );
  // ---- temperature-calibrated Δppl (scripts/lib/temperature-fit.mjs): T fitted on the even windows, ppl scored on the odd ----
  const tpw = scoredTokens / evalWindows;
  const baseCal = calibratedPerplexity(baselineWindowNllAtT, TEMPERATURES, tpw);
  for (const r of runs) {
    const c = calibratedPerplexity(r.windowNllAtT, TEMPERATURES, tpw);
    r.calibrated = { T: c.T, ppl: c.ppl, deltaPpl: c.ppl - baseCal.ppl };
  }
  console.log(
    `\ntemperature-calibrated Δppl (a diagnostic, not the issue's metric): each model's T ∈ {${TEMPERATURES.join(', ')}} fitted on the ${baseCal.fitWindows} even windows, ` +
      `ppl scored on the ${baseCal.scoredWindows} odd ones; FP16 T ${baseCal.T}, ppl ${baseCal.ppl.toFixed(3)}`,
  );
  for (const line of formatTable([['method', 'config', 'T', 'calibrated ppl', 'calibrated Δppl', 'Δppl'], ...[...qrows, ...srows].map((r) => [r.family, r.label, String(r.calibrated.T), r.calibrated.ppl.toFixed(3), r.calibrated.deltaPpl.toFixed(3), r.deltaPpl.toFixed(3)])], [0, 1])) console.log(`  ${line}`);
  const asCal = (r) => ({ ...asRow(r), deltaPpl: r.calibrated.deltaPpl });
  const lvCal = ladderVerdicts(primary.filter((r) => r.family === 'ladder').map(asCal), primary.filter((r) => ['rtn', 'gptq', 'awq'].includes(r.family)).map(asCal));
  for (const v of lvCal) if (v.bestUniformByPpl) console.log(`  ${v.id} (≤ ${v.budget}): calibrated Δppl ${v.deltaPpl.toFixed(3)} vs ${v.bestUniformByPpl.id} ${v.bestUniformByPpl.deltaPpl.toFixed(3)} → ${verdictWord(v.passPpl)}`);
  const svCal = svdVerdicts(psrows.filter((r) => !r.factorBits).map((r) => ({ ratio: r.ratio, whitening: r.variant, deltaPpl: r.calibrated.deltaPpl, meanKl: r.meanKl })));
  for (const v of svCal) if (v.whitened) console.log(`  SVD ${v.reduction} %: ${v.whitening} calibrated Δppl ${v.deltaPpl.toFixed(3)} vs plain ${v.plainDeltaPpl?.toFixed(3) ?? '—'} → ×${v.ratioVsPlain?.toFixed(3) ?? '—'} ${verdictWord(v.pass)}`);

  let acrossSeeds;
  if (seeds.length > 1) {
    const seeded = runs.filter((r) => r.family !== 'svd' || !r.factorBits);
    const plainRows = meanOverSeeds(seeded.map((r) => ({ ...asRow(r), key: r.key, seed: r.seed, family: r.family })));
    const calRows = meanOverSeeds(seeded.map((r) => ({ ...asCal(r), key: r.key, seed: r.seed, family: r.family })));
    const pm = (m, sd, d = 3) => `${m.toFixed(d)}${sd === null ? '' : ` ± ${sd.toFixed(d)}`}`;
    console.log(`
across calibration seeds ${seeds.join(', ')} (mean ± sample sd over each method's checkpoints; rows that read no calibration once):`);
    for (const line of formatTable([['row', 'Δppl per seed', 'Δppl', 'calibrated Δppl', 'mean KL'], ...plainRows.map((r, i) => [r.id, r.deltaPplValues.map((x) => x.toFixed(2)).join(' / '), pm(r.deltaPpl, r.deltaPplSd), pm(calRows[i].deltaPpl, calRows[i].deltaPplSd), pm(r.meanKl, r.meanKlSd, 5)])], [0, 1])) console.log(`  ${line}`);
    const isUniform = (r) => ['rtn', 'gptq', 'awq'].includes(r.family);
    const lvm = ladderVerdicts(plainRows.filter((r) => r.family === 'ladder'), plainRows.filter(isUniform));
    const lvmCal = ladderVerdicts(calRows.filter((r) => r.family === 'ladder'), calRows.filter(isUniform));
    for (const [i, v] of lvm.entries()) {
      const c = lvmCal[i];
      if (v.bestUniformByPpl) console.log(`  ${v.id}: mean Δppl ${v.deltaPpl.toFixed(3)} vs ${v.bestUniformByPpl.id} ${v.bestUniformByPpl.deltaPpl.toFixed(3)} → ${verdictWord(v.passPpl)}; calibrated ${c.deltaPpl.toFixed(3)} vs ${c.bestUniformByPpl.id} ${c.bestUniformByPpl.deltaPpl.toFixed(3)} → ${verdictWord(c.passPpl)}; KL ${verdictWord(v.passKl)}`);
    }
    acrossSeeds = { seeds, rows: plainRows.map((r, i) => ({ id: r.id, seeds: r.seeds, deltaPplValues: r.deltaPplValues, deltaPpl: r.deltaPpl, deltaPplSd: r.deltaPplSd, calibratedDeltaPpl: calRows[i].deltaPpl, calibratedDeltaPplSd: calRows[i].deltaPplSd, meanKl: r.meanKl, meanKlSd: r.meanKlSd, bpw: r.bpw })), ladderVerdicts: lvm, calibratedLadderVerdicts: lvmCal };
  }

  let core;
  if (checkRun?.core) {
    const rel = Math.abs(checkRun.core.ppl - checkRun.ppl) / checkRun.ppl;
    core = { id: checkRun.id, corePpl: checkRun.core.ppl, dequantizedPpl: checkRun.ppl, relDiff: rel, tolerance: CORE_TOLERANCE, pass: rel <= CORE_TOLERANCE, coreMeanKlVsFp16: checkRun.core.meanKl };
    console.log(`\ncore vs dequantized reference, ${checkRun.id} (${checkRun.lowRankLinears} low-rank linears, packed int${checkRun.factorBits} factors): ppl ${core.corePpl.toFixed(4)} vs ${core.dequantizedPpl.toFixed(4)} → ${(100 * rel).toFixed(4)} % (≤ ${100 * CORE_TOLERANCE} %) ${verdictWord(core.pass)}`);
  }
  if (failures.length) console.log(`\nFAILED runs (not in the table):\n${failures.map((f) => `  ${f.id}: ${f.error.split('\n').filter(Boolean).slice(-1)[0]}\n    ${f.error.split('\n')[0]}`).join('\n')}`);

  const svgFile = writePlot(runs, evalWindows, baselinePpl);
  console.log(`\nplot: ${svgFile}`);
  if (keep) console.log(`checkpoints kept in ${outRoot}`);
  const clean = runs.map(({ dir, windowNll: _w, windowNllAtT: _wt, ...r }) => ({ ...r, dir: keep ? dir : undefined }));
  console.log(
    `BENCH_JSON ${JSON.stringify({ bench: 'ladder', model: 'brown-llama-7m', text: textId, ctx: 256, windows: evalWindows, scoredTokens, eval: 'dequantized-fp32 reference', baselinePpl, baselineEntropy, baselinePplAtTemperature, fp16Bytes, calibration: { name: 'brown', ...calib }, sensitivity: sens, quick, minutes: (Date.now() - t00) / 60000, rows: clean, ladderVerdicts: lv, svdVerdicts: sv, calibrated: { baseline: baseCal, ladderVerdicts: lvCal, svdVerdicts: svCal }, acrossSeeds, coreCheck: core, failures, plot: path.relative(root, svgFile) })}`,
  );
} finally {
  if (!keep) fs.rmSync(outRoot, { recursive: true, force: true });
}

/** The SVG Pareto plot of the rows (Δppl and mean KL, log y, vs linear bpw, log x) → bench-results/ladder-pareto.svg. */
function writePlot(runs, evalWindows, baselinePpl) {
  const SERIES = [
    { id: 'rtn', label: 'RTN', color: '#d73027', shape: 'circle' },
    { id: 'gptq', label: 'GPTQ', color: '#4575b4', shape: 'square' },
    { id: 'awq', label: 'AWQ', color: '#fdae61', shape: 'circle' },
    { id: 'extra', label: 'other (--extra)', color: '#888888', shape: 'circle' },
    { id: 'ladder', label: 'ladder (GPTQ, wasm)', color: '#1a9850', shape: 'diamond' },
    { id: 'ladder-awq', label: 'ladder (AWQ, wasm)', color: '#a6d96a', shape: 'diamond' },
    { id: 'ladder-rtn', label: 'ladder (RTN, wasm)', color: '#006837', shape: 'diamond' },
    { id: 'svd-plain', label: 'SVD plain', color: '#bbbbbb', shape: 'triangle' },
    { id: 'svd-svdllm', label: 'SVD-LLM', color: '#7b3294', shape: 'triangle' },
    { id: 'svd-asvd', label: 'ASVD', color: '#c2a5cf', shape: 'triangle' },
    { id: 'svd-plain+sensitivity', label: 'SVD plain, ranks by sensitivity', color: '#666666', shape: 'square' },
    { id: 'svd-svdllm+sensitivity', label: 'SVD-LLM, ranks by sensitivity', color: '#40004b', shape: 'square' },
    { id: 'svd-asvd+sensitivity', label: 'ASVD, ranks by sensitivity', color: '#9970ab', shape: 'square' },
  ];
  const seriesOf = (r) => (r.family === 'svd' ? `svd-${r.variant ?? r.whitening}` : r.family === 'ladder' && (r.quantizer ?? 'gptq') !== 'gptq' ? `ladder-${r.quantizer}` : r.family);
  const pts = (key) => runs.map((r) => ({ series: seriesOf(r), label: r.label, x: r.linearBpw, y: r[key] }));
  const used = new Set(runs.map(seriesOf));
  const svg = paretoPlotSvg({
    title: `brown-llama-7m: quality vs linear bits per weight (${evalText.name} ctx 256, ${evalWindows} windows, FP16 ppl ${baselinePpl.toFixed(2)})`,
    xLabel: 'bits per weight (block linears)',
    xLog: true,
    series: SERIES.filter((s) => used.has(s.id)),
    panels: [
      { id: 'dppl', title: 'Δppl vs FP16 (log)', yLabel: 'Δppl', yLog: true, points: pts('deltaPpl') },
      { id: 'kl', title: 'mean KL vs FP16 (log)', yLabel: 'mean KL (nats)', yLog: true, points: pts('meanKl') },
    ],
  });
  const svgFile = path.join(root, textId === 'wikitext2' ? 'bench-results/ladder-pareto.svg' : `bench-results/ladder-pareto-${textId}.svg`);
  fs.mkdirSync(path.dirname(svgFile), { recursive: true });
  fs.writeFileSync(svgFile, svg);
  return svgFile;
}
