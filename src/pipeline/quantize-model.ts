/**
 * The streaming quantization pipeline. Embed the calibration tokens, then for each decoder block: load only
 * that block, (AWQ: transform it on its real module outputs), quantize its linears group by group in
 * dependency order — q/k/v, o, gate/up, down — re-collecting each group's inputs through the already
 * quantized groups ("true sequential"), propagate the calibration activations through the quantized block,
 * write the block, free it. Peak memory ≈ one block + activations + one group's statistics, at any depth.
 * The output format (edgeq, AutoGPTQ, AutoAWQ) only changes the sink the tensors go to (checkpoint-sink.ts)
 * and, for GPTQ v1, the smallest zero point the quantizer may produce.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { GLOBAL_TENSORS, LLAMA_LINEARS, linearBiasName, linearWeightName, normName, type LinearRole } from '../arch/llama-tensors.js';
import type { CalibrationSample } from '../calib/sample.js';
import type { EdgeqProvenance } from '../formats/edgeq/index.js';
import { SafetensorsCheckpoint } from '../formats/safetensors/checkpoint.js';
import { UsageError } from '../core/errors.js';
import type { TapPoint } from '../infer/llama-block.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { dequantize, quantizeRtnFake } from './fake-quant.js';
import { createWasmLinalg64 } from '../quantizers/linalg64-wasm.js';
import { awqTransformBlock, type AwqMappingReport } from '../quantizers/awq.js';
import type { GridSpec } from '../qtypes/types.js';
import { BlockRunner, streamEmbedding, type CalibActivations } from './activations.js';
import { logMemory } from './memory-log.js';
import { linearWeightF32, PackedBlock, readBlockF32, type BlockF32 } from './block-weights.js';
import { buildQuantPlan, LINEAR_GROUPS, solveOrder, type PeakMemoryEstimate, type PlanRequest, type QuantPlan } from './plan.js';
import { createCheckpointSink, minZeroFor, type CheckpointFormat, type CheckpointSink } from './checkpoint-sink.js';
import { createStats, quantizeLinear, statsFor, type LayerStats } from './linear-quantizer.js';
import { QuantizeInterrupted } from './resume/interrupted.js';
import { createExtraStats, groupNeeds, solveUnquantized, type ExtraStats } from './linear-treatment.js';
import { requestFingerprint, ResumeSession } from './resume/session.js';

export interface QuantizeRequest extends PlanRequest {
  modelDir: string;
  config: LlamaConfig;
  outDir: string;
  overwrite?: boolean;
  imatrix?: boolean;
  damp?: number;
  /** Needed by every method but plain RTN. */
  calibration: CalibrationSample | null;
  backend: MatmulBackend;
  edgeqVersion: string;
  onProgress?: (e: { block: number; blocks: number; step: string }) => void | Promise<void>;
  /** Continue the partial output `<outDir>.partial` of an interrupted run (see pipeline/resume/). */
  resume?: boolean;
  /** Asked after each journaled block but the last: true stops the run there (QuantizeInterrupted). */
  shouldStop?: () => boolean;
  /** A recipe that sets per-tensor treatments (`--method svd|ladder`): recorded in provenance with its plan. */
  recipe?: { method: 'svd' | 'ladder'; details: Record<string, unknown> };
  /** Called when a finished block is journaled (blocks done so far, total). */
  onJournaled?: (done: number, total: number) => void;
}

export interface LayerReport {
  name: string;
  qtype: string;
  /** ‖W − Ŵ‖² / ‖W‖² on the weights the quantizer saw (after AWQ scaling, if any). */
  relWeightError: number;
  /** GPTQ's Hessian-weighted loss (GPTQ only). */
  gptqLoss?: number;
  /** Groups moved to a zero ≥ 1 grid because the format cannot store zero point 0 (AutoGPTQ only). */
  regriddedGroups?: number;
  seconds: number;
}

export interface QuantizeReport {
  plan: QuantPlan;
  layers: LayerReport[];
  awq: { block: number; mappings: AwqMappingReport[] }[];
  seconds: number;
  outDir: string;
  format: CheckpointFormat;
  /** Peak resident set size of this process at the end of the run (getrusage maxRSS), bytes. */
  peakRssBytes: number;
  /** The plan's estimate of the pipeline's peak memory, for comparison with peakRssBytes. */
  peakMemory: PeakMemoryEstimate;
  /** The resumable partial output; skippedBlocks > 0 when this run resumed an interrupted one. */
  resume: { partialDir: string; skippedBlocks: number; blocks: number };
}


function relError(w: Float32Array, wq: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < w.length; i++) {
    const d = w[i] - wq[i];
    num += d * d;
    den += w[i] * w[i];
  }
  return den > 0 ? num / den : 0;
}

/** relError(original, wq) with the original read back from the checkpoint a band of rows at a time. */
async function relErrorFromSource(ckpt: SafetensorsCheckpoint, name: string, k: number, wq: Float32Array): Promise<number> {
  const rows = Math.max(1, Math.floor((4 << 20) / Math.max(1, k)));
  let num = 0;
  let den = 0;
  for (let off = 0; off < wq.length; off += rows * k) {
    const count = Math.min(rows * k, wq.length - off);
    const w = await ckpt.readF32Range(name, off, count);
    for (let i = 0; i < count; i++) {
      const d = w[i]! - wq[off + i]!;
      num += d * d;
      den += w[i]! * w[i]!;
    }
  }
  return den > 0 ? num / den : 0;
}

export async function quantizeModel(req: QuantizeRequest): Promise<QuantizeReport> {
  const t0 = performance.now();
  const c = req.config;
  const plan = buildQuantPlan(c, req);
  const gridOf = new Map(plan.entries.filter((e) => e.kind === 'quantized').map((e) => [e.name, (e as { grid: GridSpec }).grid]));
  const entryOf = new Map(plan.entries.map((e) => [e.name, e]));
  const cal = req.calibration;
  const provenance: EdgeqProvenance = {
    method: req.recipe?.method ?? req.method,
    ...(req.recipe ? { quantizer: req.method, [req.recipe.method]: req.recipe.details } : {}),
    bits: req.grid.bits,
    groupSize: req.grid.groupSize,
    sym: req.grid.sym,
    calibration: !cal ? null : { name: cal.source.name, sha256: cal.source.sha256, samples: cal.n, seqlen: cal.seqLen, seed: cal.seed },
    edgeqVersion: req.edgeqVersion,
    options: { imatrix: !!req.imatrix, damp: req.damp ?? 0.01, actOrder: !!req.actOrder, fallback: req.fallback },
    layerErrors: {},
  };
  const format = plan.format;
  const minZero = req.grid.sym ? 0 : minZeroFor(format);
  if (minZero) (provenance.options as Record<string, unknown>).minZeroPoint = minZero;
  // resume: refuse or validate a partial output before anything is written (pipeline/resume/)
  const session = await ResumeSession.open({ outDir: req.outDir, resume: !!req.resume, overwrite: !!req.overwrite, blocks: c.numLayers, fingerprint: await requestFingerprint(req, plan), onJournaled: req.onJournaled });
  const ckpt = await SafetensorsCheckpoint.open(req.modelDir);
  let writer: CheckpointSink;
  try {
    writer = await createCheckpointSink(format, req.outDir, {
      plan: plan.entries,
      sourceDir: req.modelDir,
      overwrite: req.overwrite,
      provenance,
      gptqMeta: { damp_percent: req.damp ?? 0.01, true_sequential: true, static_groups: false, quantizer_method: req.method },
      partial: session.partialOptions,
    });
  } catch (err) {
    await ckpt.close();
    throw err;
  }
  const linalg = req.method === 'gptq' ? await createWasmLinalg64({ threads: req.backend.threads }) : undefined;
  const layers: LayerReport[] = [];
  const awqReports: QuantizeReport['awq'] = [];
  try {
    const needsCalibration = req.method !== 'rtn' || !!req.imatrix || [...(req.treatments?.values() ?? [])].some((t) => t.kind === 'lowrank' && t.whitening !== 'plain');
    if (needsCalibration && !cal) throw new UsageError('E_NO_CALIBRATION', `--method ${req.method}${req.imatrix ? ' --imatrix' : ''} needs calibration data`);
    logMemory('start');
    if (linalg) linalg.matrix(Math.max(...LLAMA_LINEARS.map((s) => s.shape(c)[1]))); // the one Hessian buffer, at its largest
    // --resume: the journaled state after the last finished block (the data file already holds the embedding)
    const restored = await session.begin();
    if (restored) {
      layers.push(...restored.layers);
      awqReports.push(...restored.awq);
      for (const r of restored.layers) (provenance.layerErrors as Record<string, number>)[r.name] = r.relWeightError;
    }
    // the embedding streams by bands of rows: calibration rows gathered, every band copied to the output
    const acts: CalibActivations | null = restored ? restored.acts : await streamEmbedding(
      ckpt,
      GLOBAL_TENSORS.embed,
      c.hiddenSize,
      needsCalibration && cal ? { ids: cal.ids, n: cal.n, T: cal.seqLen } : null,
      (band) => writer.writeDense(GLOBAL_TENSORS.embed, band),
    );
    logMemory('embedding');
    const runner = acts ? new BlockRunner(c, req.backend, acts.T) : null;
    for (let l = session.startBlock; l < c.numLayers; l++) {
      const step = (s: string) => req.onProgress?.({ block: l, blocks: c.numLayers, step: s });
      await step('load');
      // AWQ rewrites the block's fp32 weights, so it holds them; otherwise each weight is read when it is
      // needed and the block's only full copy is the packed one on the backend
      const block: BlockF32 = await readBlockF32(ckpt, c, l, { weights: req.method === 'awq' });
      logMemory(`block ${l} loaded`);
      if (req.method === 'awq' && acts) {
        await step('awq search');
        awqReports.push({ block: l, mappings: awqTransformBlock(c, block, acts, { gridFor: (role) => gridOf.get(linearWeightName(l, LLAMA_LINEARS.find((s) => s.role === role)!)) ?? null, fakeQuant: quantizeRtnFake, backend: req.backend }) });
      }
      await writer.writeDense(normName(l, 'input_layernorm'), block.inputNorm);
      await writer.writeDense(normName(l, 'post_attention_layernorm'), block.postNorm);
      const packed = acts && runner ? await PackedBlock.create(req.backend, ckpt, block) : null;
      try {
        if (packed) logMemory(`block ${l} packed`);
        for (const g of LINEAR_GROUPS) {
          await step(`quantize ${g.roles.join('/')}`);
          const k = block.linears[g.roles[0]].k;
          const names = g.roles.map((role) => linearWeightName(l, LLAMA_LINEARS.find((s) => s.role === role)!));
          const needs = groupNeeds(names.map((n) => entryOf.get(n)!), req.treatments);
          let stats: LayerStats | null = null;
          let extra: ExtraStats | null = null;
          const kind = needs.quantized ? statsFor(req.method, !!req.imatrix) : null;
          if ((kind || needs.xtx || needs.meanAbs) && acts && runner && packed) {
            const acc = kind ? createStats(kind, k, req.backend, kind === 'hessian' && linalg ? linalg.matrix(k) : undefined) : null;
            stats = acc;
            extra = createExtraStats(needs, k, req.backend, acc);
            runner.run(packed.weights, acts, { propagate: false, stopAfter: g.point, tap: (p, x, T) => p === g.point && (acc?.add(x, T), extra!.add(x, T)) });
            logMemory(`block ${l} ${g.point} statistics`);
          }
          // in the plan's order (plan.ts solveOrder): low-rank and dense linears before the quantized ones
          const order = solveOrder(l, req.treatments).filter((s) => g.roles.includes(s.role)).map((s) => ({ role: s.role, name: linearWeightName(l, s) }));
          for (const { role, name } of order) {
            const lin = block.linears[role];
            const spec = LLAMA_LINEARS.find((s) => s.role === role)!;
            const entry = entryOf.get(name)!;
            const w = await linearWeightF32(ckpt, block, role);
            const fresh = lin.w.length === 0; // read just now: the solver may overwrite it, the checkpoint keeps the original
            const t1 = performance.now();
            let wq: Float32Array;
            let report: Omit<LayerReport, 'relWeightError' | 'seconds'>;
            if (entry.kind === 'quantized') {
              const res = quantizeLinear(req.method, w, lin.n, lin.k, entry.grid, stats, { name, damp: req.damp, actOrder: req.actOrder, backend: req.backend, linalg, minZero, inPlace: fresh });
              wq = res.dequantized ?? dequantize(res.q);
              report = { name, qtype: res.q.qtype, gptqLoss: res.loss, regriddedGroups: res.regriddedGroups };
              await writer.writeQuantized(name, res.q);
            } else {
              // a weight read for its solve may live in the backend's memory (PackedBlock.readForSolve), which a
              // backend call during a randomized SVD can grow: keep a JS copy for these (dense / low-rank) linears
              const own = fresh ? Float32Array.from(w) : w;
              const r = await solveUnquantized(entry, req.treatments?.get(name), own, extra, req.backend, writer);
              wq = r.wq;
              report = { name, qtype: r.qtype };
            }
            const rel = fresh ? await relErrorFromSource(ckpt, name, lin.k, wq) : relError(w, wq);
            if (lin.w.length > 0) lin.w = wq; // later groups see the quantized weights
            packed?.replace(role, wq);
            layers.push({ ...report, relWeightError: rel, seconds: (performance.now() - t1) / 1000 });
            (provenance.layerErrors as Record<string, number>)[name] = rel;
            logMemory(`block ${l} ${role} quantized`);
            if (lin.bias) await writer.writeDense(linearBiasName(l, spec), lin.bias);
          }
        }
        if (acts && runner && packed) {
          await step('propagate');
          runner.run(packed.weights, acts, { propagate: true });
          logMemory(`block ${l} propagated`);
        }
      } finally {
        packed?.free();
      }
      await step('journal');
      await session.blockDone(l, writer, acts, layers, awqReports);
      if (l + 1 < c.numLayers && req.shouldStop?.()) throw new QuantizeInterrupted(l + 1, c.numLayers, session.partialDir);
    }
    await writer.writeDense(GLOBAL_TENSORS.finalNorm, await ckpt.readF32(GLOBAL_TENSORS.finalNorm, { checkFinite: true }));
    if (!c.tieWordEmbeddings) await streamEmbedding(ckpt, GLOBAL_TENSORS.lmHead, c.hiddenSize, null, (band) => writer.writeDense(GLOBAL_TENSORS.lmHead, band));
    await writer.finish(provenance);
    logMemory('finish');
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    linalg?.dispose();
    await ckpt.close();
  }
  return {
    plan,
    layers,
    awq: awqReports,
    seconds: (performance.now() - t0) / 1000,
    outDir: req.outDir,
    format,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    peakMemory: plan.peakMemory,
    resume: { partialDir: session.partialDir, skippedBlocks: session.startBlock, blocks: c.numLayers },
  };
}
