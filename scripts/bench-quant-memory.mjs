#!/usr/bin/env node
// Peak memory and wall time of `edgeq quantize --method gptq` on a Llama-3.2-1B-width synthetic model at 2 and
// 4 decoder blocks (`npm run build` first; this uses dist/ and bin/edgeq.js). Prints a table, a verdict and one
// JSON line (prefix "BENCH_JSON ").
//
// Target (the streaming pipeline's memory claim):
//   peak RSS ≤ 1.5 × bound, bound = one block's fp32 weights (Σ n·k·4 over q,k,v,o,gate,up,down)
//                                 + calibration activations (samples·seqlen·hidden·4)
//                                 + the largest GPTQ Hessian (max k² · 8; k = intermediate for down_proj)
//   and peak RSS(4 layers) ≤ 1.05 × peak RSS(2 layers).
// The bound deliberately excludes the embedding matrix (vocab·hidden·4, read once at the start): it is not
// "one block". Its size is printed next to the bound; if RSS exceeds the bound because of it, the ratio says so.
//
// Peak RSS: the report's `peakRssBytes` when the CLI prints one; otherwise the child's VmHWM (Linux
// /proc/<pid>/status, polled) together with its getrusage maxRSS taken at exit by a tiny --import hook.
//
// Options:
//   --layers=2,4            layer counts (default 2,4)
//   --preset=llama-3.2-1b   synthetic preset (smaller ones are handy for a smoke test)
//   --calib-samples=32 --calib-seqlen=512 --bits=4 --group-size=128 --threads=N
//   --profile               run the child with EDGEQ_DEBUG_MEMORY=1 and print its EDGEQ_MEM lines
//                           (src/pipeline/memory-log.ts: RSS, V8 heap, each wasm memory's capacity/in use),
//                           with the largest RSS step between consecutive marks
//   --keep                  keep the quantized outputs (default: deleted)
//   --poll-ms=50            VmHWM polling interval
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const a = argv.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (!a) return def;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : true;
};
const PRESET = opt('preset', 'llama-3.2-1b');
const LAYERS = String(opt('layers', '2,4')).split(',').map(Number);
const SAMPLES = Number(opt('calib-samples', 32));
const SEQLEN = Number(opt('calib-seqlen', 512));
const BITS = Number(opt('bits', 4));
const GROUP = Number(opt('group-size', 128));
const THREADS = opt('threads', undefined);
const PROFILE = !!opt('profile', false);
const KEEP = !!opt('keep', false);
const POLL_MS = Number(opt('poll-ms', 50));
const RATIO_MAX = 1.5;
const GROWTH_MAX = 1.05;

let dist;
try {
  dist = {
    ...(await import(path.join(root, 'dist/model/synthetic.js'))),
    ...(await import(path.join(root, 'dist/arch/registry.js'))),
    ...(await import(path.join(root, 'dist/arch/llama-tensors.js'))),
  };
} catch (err) {
  console.error('bench-quant-memory: cannot import dist/ — run `npm run build` first.');
  console.error(String(err));
  process.exit(1);
}

const MB = (b) /* MiB */ => (b == null || !Number.isFinite(b) ? '-' : (b / 2 ** 20).toFixed(0));
const fx = (v, d = 2) => (v == null || !Number.isFinite(v) ? '-' : v.toFixed(d));

function table(rows) {
  const cells = rows.map((r) => r.map(String));
  const w = cells[0].map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n');
}

// ---------------------------------------------------------------------------------------------------
// The reference bound, computed here from the config (independently of src/pipeline/plan.ts).

function referenceBound(c) {
  let blockWeights = 0;
  let blockParams = 0;
  let maxK = 0;
  for (const spec of dist.LLAMA_LINEARS) {
    const [n, k] = spec.shape(c);
    blockParams += n * k;
    blockWeights += n * k * 4;
    maxK = Math.max(maxK, k); // GPTQ's Hessian is k×k per group; down_proj's k = intermediate_size
  }
  const activations = SAMPLES * SEQLEN * c.hiddenSize * 4;
  const hessian = maxK * maxK * 8;
  return { blockParams, blockWeights, activations, hessian, hessianK: maxK, total: blockWeights + activations + hessian };
}

// ---------------------------------------------------------------------------------------------------
// Synthetic models, cached under .cache/synthetic/<preset>-<L>l (README.md is written last: completion marker).

async function ensureModel(layers) {
  const dir = path.join(root, '.cache/synthetic', `${PRESET}-${layers}l`);
  if (fs.existsSync(path.join(dir, 'README.md')) && fs.existsSync(path.join(dir, 'model.safetensors'))) return dir;
  process.stderr.write(`bench-quant-memory: writing synthetic ${PRESET} with ${layers} layers to ${path.relative(root, dir)} …\n`);
  const t0 = performance.now();
  await dist.writeSyntheticModel(PRESET, dir, { layers });
  process.stderr.write(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return dir;
}

// ---------------------------------------------------------------------------------------------------
// One child run: wall time, peak RSS (JSON field, else VmHWM polling + exit hook), the JSON report.

// Runs in the child's main thread at exit: its own peak RSS (getrusage, and VmHWM on Linux) on stderr.
const EXIT_HOOK =
  'data:text/javascript,' +
  encodeURIComponent(
    `import { isMainThread } from 'node:worker_threads'; import fs from 'node:fs';
if (isMainThread) process.on('exit', () => {
  let hwm = 0; try { hwm = Number(/^VmHWM:\\s+(\\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024; } catch {}
  fs.writeSync(2, 'BENCH_CHILD_PEAK ' + JSON.stringify({ maxRss: process.resourceUsage().maxRSS * 1024, hwm }) + '\\n');
});`,
  );

function readHwm(pid) {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function runQuantize(modelDir, outDir, { dryRun = false } = {}) {
  const args = [
    '--import', EXIT_HOOK,
    path.join(root, 'bin/edgeq.js'), 'quantize', '-m', modelDir, '--method', 'gptq', '--bits', String(BITS), '-g', String(GROUP),
    '--calib-samples', String(SAMPLES), '--calib-seqlen', String(SEQLEN), '--json',
    ...(dryRun ? ['--dry-run'] : ['-o', outDir, '--overwrite']),
    ...(THREADS ? ['--threads', String(THREADS)] : []),
  ];
  const env = { ...process.env, ...(PROFILE ? { EDGEQ_DEBUG_MEMORY: '1' } : {}) };
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let polled = null;
    const memLines = [];
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    let pending = '';
    child.stderr.setEncoding('utf8').on('data', (d) => {
      pending += d;
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        if (line.startsWith('EDGEQ_MEM ')) {
          try {
            memLines.push({ t: (performance.now() - t0) / 1000, ...JSON.parse(line.slice(10)) });
          } catch {
            stderr += `${line}\n`;
          }
        } else stderr += `${line}\n`;
      }
    });
    const poll = () => {
      const v = readHwm(child.pid);
      if (v != null) polled = Math.max(polled ?? 0, v);
    };
    const timer = setInterval(poll, POLL_MS);
    child.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearInterval(timer);
      const wall = (performance.now() - t0) / 1000;
      stderr += pending;
      let exitPeak = null;
      const m = /^BENCH_CHILD_PEAK (.*)$/m.exec(stderr);
      if (m) {
        exitPeak = JSON.parse(m[1]);
        stderr = stderr.replace(m[0] + '\n', '');
      }
      if (code !== 0) {
        reject(new Error(`edgeq quantize exited with ${code ?? signal}\n${stderr.trim()}`));
        return;
      }
      let report;
      try {
        report = JSON.parse(stdout);
      } catch (e) {
        reject(new Error(`cannot parse the --json report: ${e}\n${stdout.slice(0, 500)}`));
        return;
      }
      resolve({ wall, report, polled, exitPeak, memLines, stderr: stderr.trim() });
    });
  });
}

// ---------------------------------------------------------------------------------------------------

const presetConfig = dist.syntheticPresets()[PRESET]?.config;
if (!presetConfig) {
  console.error(`bench-quant-memory: unknown preset ${PRESET} (have ${Object.keys(dist.syntheticPresets()).join(', ')})`);
  process.exit(2);
}
const c0 = dist.parseModelConfig(presetConfig);
const bound = referenceBound(c0);
const embedF32 = c0.vocabSize * c0.hiddenSize * 4;

console.log(
  `bench:quant-memory — edgeq quantize --method gptq --bits ${BITS} -g ${GROUP} --calib-samples ${SAMPLES} --calib-seqlen ${SEQLEN}` +
    ` on synthetic ${PRESET} (hidden ${c0.hiddenSize}, ffn ${c0.intermediateSize}, ${c0.numHeads}/${c0.numKvHeads} heads, head_dim ${c0.headDim}, vocab ${c0.vocabSize})` +
    `; ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM${THREADS ? `, --threads ${THREADS}` : ''}`,
);
console.log(
  `reference bound = block fp32 weights ${MB(bound.blockWeights)} MiB + calibration activations ${MB(bound.activations)} MiB` +
    ` + Hessian ${bound.hessianK}² f64 ${MB(bound.hessian)} MiB = ${MB(bound.total)} MiB; target peak RSS ≤ ${RATIO_MAX} × bound = ${MB(RATIO_MAX * bound.total)} MiB`,
);
console.log(
  `not in the bound: the embedding matrix ${c0.vocabSize}×${c0.hiddenSize} fp32 = ${MB(embedF32)} MiB (read once at the start)` +
    `; bound + embedding = ${MB(bound.total + embedF32)} MiB (ratio against it shown as "ratio+emb")`,
);

const results = [];
let floorBytes = null;
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-bench-qmem-'));
try {
  for (const L of LAYERS) {
    const dir = await ensureModel(L);
    if (floorBytes == null) {
      // the process floor: node + the CLI's modules + config/plan, no weights (quantize --dry-run)
      const f = await runQuantize(dir, null, { dryRun: true });
      floorBytes = Math.max(f.polled ?? 0, f.exitPeak?.hwm ?? 0, f.exitPeak?.maxRss ?? 0) || null;
    }
    const out = path.join(tmpRoot, `out-${L}l`);
    process.stderr.write(`bench-quant-memory: quantizing ${PRESET} ${L} layers (GPTQ) …\n`);
    const r = await runQuantize(dir, out);
    const rep = r.report;
    const c = dist.parseModelConfig(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')));
    const linearParams = referenceBound(c).blockParams * c.numLayers;
    const field = rep.peakRssBytes ?? rep.report?.peakRssBytes ?? null;
    const measured = Math.max(r.polled ?? 0, r.exitPeak?.hwm ?? 0, r.exitPeak?.maxRss ?? 0) || null;
    const peak = field ?? measured;
    const solveSeconds = (rep.layers ?? []).reduce((s, x) => s + (x.seconds ?? 0), 0);
    const row = {
      layers: L,
      params: rep.plan?.params ?? null,
      linearParams,
      wallSeconds: r.wall,
      pipelineSeconds: rep.seconds ?? null,
      gptqSolveSeconds: solveSeconds,
      secondsPerBillionParams: r.wall / (linearParams / 1e9),
      peakRssBytes: peak,
      peakRssSource: field != null ? 'json peakRssBytes' : 'VmHWM poll + exit getrusage',
      peakRssJson: field,
      peakRssPolled: r.polled,
      peakRssAtExit: r.exitPeak?.maxRss ?? null,
      boundBytes: bound.total,
      ratio: peak / bound.total,
      ratioWithEmbedding: peak / (bound.total + embedF32),
      planPeakBytes: (rep.peakMemory ?? rep.plan?.peakMemory)?.total ?? null,
      planPeak: rep.peakMemory ?? rep.plan?.peakMemory ?? null,
      outputBytes: rep.plan?.bytes ?? null,
      memLog: r.memLines,
    };
    results.push(row);
    if (r.stderr) process.stderr.write(`${r.stderr}\n`);
    process.stderr.write(`  ${L} layers: ${r.wall.toFixed(1)} s, peak RSS ${MB(peak)} MiB\n`);
    if (!KEEP) fs.rmSync(out, { recursive: true, force: true });
    else console.log(`kept ${out}`);
  }
} finally {
  if (!KEEP) fs.rmSync(tmpRoot, { recursive: true, force: true });
}

console.log('');
console.log(
  table([
    ['layers', 'params', 'linear params', 'wall s', 's/B linear params', 'GPTQ solve s', 'peak RSS MiB', 'bound MiB', 'ratio', 'ratio+emb', 'plan estimate MiB'],
    ...results.map((r) => [
      r.layers,
      r.params?.toLocaleString('en-US') ?? '-',
      r.linearParams.toLocaleString('en-US'),
      fx(r.wallSeconds, 1),
      fx(r.secondsPerBillionParams, 0),
      fx(r.gptqSolveSeconds, 1),
      MB(r.peakRssBytes),
      MB(r.boundBytes),
      fx(r.ratio, 2),
      fx(r.ratioWithEmbedding, 2),
      MB(r.planPeakBytes),
    ]),
  ]),
);
console.log(
  `wall s = whole child process (start-up, embedding, calibration forward passes, GPTQ, writing); s/B = wall s per 1e9` +
    ` quantized linear params (the embedding is copied, not quantized); GPTQ solve s = the per-tensor solve times of the report.` +
    ` peak RSS from ${[...new Set(results.map((r) => r.peakRssSource))].join(' / ')}.`,
);
const p = results.find((r) => r.planPeak)?.planPeak;
console.log(`process floor (quantize --dry-run: node, CLI modules, config, plan; no weights): peak RSS ${MB(floorBytes)} MiB`);
if (p)
  console.log(
    `plan estimate (src/pipeline/plan.ts): block weights ${MB(p.blockWeights)} + activations ${MB(p.activations)} + statistics ${MB(p.statistics)} = ${MB(p.total)} MiB (no embedding either)`,
  );

if (PROFILE) {
  for (const r of results) {
    console.log(`\nmemory log, ${r.layers} layers (EDGEQ_MEM; MiB; other = rss − heapTotal − external ≈ wasm memories):`);
    if (!r.memLog.length) {
      console.log('  (no EDGEQ_MEM lines: the pipeline does not call logMemory() from src/pipeline/memory-log.ts yet)');
      continue;
    }
    // wasm memories by label (src/kernels/wasm-memory.ts wasmHeapStats): capacity / in use
    const labels = [...new Set(r.memLog.flatMap((m) => (m.wasm ?? []).map((w) => w.label)))];
    const wasmCell = (m, l) => {
      const ws = (m.wasm ?? []).filter((w) => w.label === l);
      return ws.length ? `${MB(ws.reduce((s, w) => s + w.capacity, 0))}/${MB(ws.reduce((s, w) => s + w.inUse, 0))}` : '-';
    };
    console.log(
      table([
        ['t s', 'label', 'rss', 'hwm', 'heapUsed', 'external', 'arrayBuffers', 'other', ...labels.map((l) => `${l} cap/use`)],
        ...r.memLog.map((m) => [fx(m.t, 1), m.label, MB(m.rss), MB(m.hwm), MB(m.heapUsed), MB(m.external), MB(m.arrayBuffers), MB(m.other), ...labels.map((l) => wasmCell(m, l))]),
      ]),
    );
    // where the high-water mark was set, and the largest steps of it between consecutive marks
    const steps = r.memLog.slice(1).map((m, i) => ({ d: m.hwm - r.memLog[i].hwm, from: r.memLog[i].label, to: m.label }));
    const top = steps.filter((x) => x.d > 0).sort((x, y) => y.d - x.d).slice(0, 4);
    const last = r.memLog[r.memLog.length - 1];
    const at = r.memLog.find((m) => m.hwm >= last.hwm);
    console.log(`peak ${MB(last.hwm)} MiB first reached at "${at.label}"; largest high-water steps: ${top.map((x) => `+${MB(x.d)} MiB "${x.from}" → "${x.to}"`).join('; ')}`);
  }
}

const ok = (r) => r.peakRssBytes != null && r.ratio <= RATIO_MAX;
const byL = Object.fromEntries(results.map((r) => [r.layers, r]));
const lo = byL[Math.min(...LAYERS)];
const hi = byL[Math.max(...LAYERS)];
const growth = lo && hi && lo !== hi ? hi.peakRssBytes / lo.peakRssBytes : null;
const ratioPass = results.every(ok);
const growthPass = growth == null ? null : growth <= GROWTH_MAX;
const pass = ratioPass && growthPass !== false;

console.log('');
console.log(
  `verdict: ${pass ? 'PASS' : 'FAIL'} — ratio ≤ ${RATIO_MAX}: ${results.map((r) => `${r.layers}l ${fx(r.ratio)}`).join(', ')} ${ratioPass ? 'ok' : 'FAIL'}` +
    (growth == null ? '' : `; RSS(${hi.layers}l)/RSS(${lo.layers}l) = ${fx(growth, 3)} ≤ ${GROWTH_MAX}: ${growthPass ? 'ok' : 'FAIL'}`),
);
if (!ratioPass) {
  const worst = Math.max(...results.map((r) => r.peakRssBytes));
  console.log(
    `  peak RSS ${MB(worst)} MiB vs bound ${MB(bound.total)} MiB: over by ${MB(worst - bound.total)} MiB` +
      (worst > bound.total + embedF32
        ? `, more than the embedding (${MB(embedF32)} MiB) alone explains (bound + embedding = ${MB(bound.total + embedF32)} MiB)`
        : `, within what the fp32 embedding (${MB(embedF32)} MiB) could explain`) +
      (PROFILE ? '' : '; rerun with --profile (and logMemory() calls in the pipeline) to see where'),
  );
}

console.log(
  'BENCH_JSON ' +
    JSON.stringify({
      bench: 'quant-memory',
      preset: PRESET,
      method: 'gptq',
      bits: BITS,
      groupSize: GROUP,
      calib: { samples: SAMPLES, seqLen: SEQLEN },
      threads: THREADS ? Number(THREADS) : os.availableParallelism(),
      bound: { ...bound, embeddingF32: embedF32 },
      processFloorBytes: floorBytes,
      ratioMax: RATIO_MAX,
      growthMax: GROWTH_MAX,
      results: results.map(({ memLog, ...r }) => (PROFILE ? { ...r, memLog } : r)),
      growth,
      pass,
    }),
);
process.exitCode = pass ? 0 : 1;
