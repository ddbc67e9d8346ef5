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
import type { GridSpec, QuantizedWeight } from '../qtypes/types.js';
import { BlockRunner, streamEmbedding, type CalibActivations } from './activations.js';
import { logMemory } from './memory-log.js';
import { freeBlockWeights, readBlockF32, toBlockWeights, type BlockF32 } from './block-weights.js';
import { buildQuantPlan, type PeakMemoryEstimate, type PlanRequest, type QuantPlan } from './plan.js';
import { createCheckpointSink, minZeroFor, type CheckpointFormat, type CheckpointSink } from './checkpoint-sink.js';
import { createStats, quantizeLinear, statsFor, type LayerStats } from './linear-quantizer.js';

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
}

const GROUPS: { point: TapPoint; roles: LinearRole[] }[] = [
  { point: 'qkv', roles: ['q_proj', 'k_proj', 'v_proj'] },
  { point: 'o', roles: ['o_proj'] },
  { point: 'gate_up', roles: ['gate_proj', 'up_proj'] },
  { point: 'down', roles: ['down_proj'] },
];

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

export async function quantizeModel(req: QuantizeRequest): Promise<QuantizeReport> {
  const t0 = performance.now();
  const c = req.config;
  const plan = buildQuantPlan(c, req);
  const gridOf = new Map(plan.entries.filter((e) => e.kind === 'quantized').map((e) => [e.name, (e as { grid: GridSpec }).grid]));
  const cal = req.calibration;
  const provenance: EdgeqProvenance = {
    method: req.method,
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
  const ckpt = await SafetensorsCheckpoint.open(req.modelDir);
  let writer: CheckpointSink;
  try {
    writer = await createCheckpointSink(format, req.outDir, {
      plan: plan.entries,
      sourceDir: req.modelDir,
      overwrite: req.overwrite,
      provenance,
      gptqMeta: { damp_percent: req.damp ?? 0.01, true_sequential: true, static_groups: false, quantizer_method: req.method },
    });
  } catch (err) {
    await ckpt.close();
    throw err;
  }
  const linalg = req.method === 'gptq' ? await createWasmLinalg64({ threads: req.backend.threads }) : undefined;
  const layers: LayerReport[] = [];
  const awqReports: QuantizeReport['awq'] = [];
  try {
    const needsCalibration = req.method !== 'rtn' || !!req.imatrix;
    if (needsCalibration && !cal) throw new UsageError('E_NO_CALIBRATION', `--method ${req.method}${req.imatrix ? ' --imatrix' : ''} needs calibration data`);
    logMemory('start');
    if (linalg) linalg.matrix(Math.max(...LLAMA_LINEARS.map((s) => s.shape(c)[1]))); // the one Hessian buffer, at its largest
    // the embedding streams by bands of rows: calibration rows gathered, every band copied to the output
    const acts: CalibActivations | null = await streamEmbedding(
      ckpt,
      GLOBAL_TENSORS.embed,
      c.hiddenSize,
      needsCalibration && cal ? { ids: cal.ids, n: cal.n, T: cal.seqLen } : null,
      (band) => writer.writeDense(GLOBAL_TENSORS.embed, band),
    );
    logMemory('embedding');
    const runner = acts ? new BlockRunner(c, req.backend, acts.T) : null;
    for (let l = 0; l < c.numLayers; l++) {
      const step = (s: string) => req.onProgress?.({ block: l, blocks: c.numLayers, step: s });
      await step('load');
      const block: BlockF32 = await readBlockF32(ckpt, c, l);
      logMemory(`block ${l} loaded`);
      if (req.method === 'awq' && acts) {
        await step('awq search');
        awqReports.push({ block: l, mappings: awqTransformBlock(c, block, acts, { gridFor: (role) => gridOf.get(linearWeightName(l, LLAMA_LINEARS.find((s) => s.role === role)!))!, fakeQuant: quantizeRtnFake, backend: req.backend }) });
      }
      const quantized = new Map<LinearRole, QuantizedWeight>();
      for (const g of GROUPS) {
        await step(`quantize ${g.roles.join('/')}`);
        let stats: LayerStats | null = null;
        const kind = statsFor(req.method, !!req.imatrix);
        if (kind && acts && runner) {
          const k = block.linears[g.roles[0]].k;
          const acc = createStats(kind, k, req.backend, kind === 'hessian' && linalg ? linalg.matrix(k) : undefined);
          stats = acc;
          const w = toBlockWeights(req.backend, block);
          runner.run(w, acts, { propagate: false, stopAfter: g.point, tap: (p, x, T) => p === g.point && acc.add(x, T) });
          freeBlockWeights(w);
          logMemory(`block ${l} ${g.point} statistics`);
        }
        for (const role of g.roles) {
          const lin = block.linears[role];
          const name = linearWeightName(l, LLAMA_LINEARS.find((s) => s.role === role)!);
          const t1 = performance.now();
          const res = quantizeLinear(req.method, lin.w, lin.n, lin.k, gridOf.get(name)!, stats, { name, damp: req.damp, actOrder: req.actOrder, backend: req.backend, linalg, minZero });
          const wq = res.dequantized ?? dequantize(res.q);
          const rel = relError(lin.w, wq);
          lin.w = wq; // later groups see the quantized weights
          quantized.set(role, res.q);
          layers.push({ name, qtype: res.q.qtype, relWeightError: rel, gptqLoss: res.loss, regriddedGroups: res.regriddedGroups, seconds: (performance.now() - t1) / 1000 });
          (provenance.layerErrors as Record<string, number>)[name] = rel;
          logMemory(`block ${l} ${role} quantized`);
        }
      }
      if (acts && runner) {
        await step('propagate');
        const w = toBlockWeights(req.backend, block);
        runner.run(w, acts, { propagate: true });
        freeBlockWeights(w);
        logMemory(`block ${l} propagated`);
      }
      await step('write');
      await writer.writeDense(normName(l, 'input_layernorm'), block.inputNorm);
      await writer.writeDense(normName(l, 'post_attention_layernorm'), block.postNorm);
      for (const spec of LLAMA_LINEARS) {
        await writer.writeQuantized(linearWeightName(l, spec), quantized.get(spec.role)!);
        const bias = block.linears[spec.role].bias;
        if (bias) await writer.writeDense(linearBiasName(l, spec), bias);
      }
    }
    await writer.writeDense(GLOBAL_TENSORS.finalNorm, await ckpt.readF32(GLOBAL_TENSORS.finalNorm, { checkFinite: true }));
    if (!c.tieWordEmbeddings) await writer.writeDense(GLOBAL_TENSORS.lmHead, await ckpt.readF32(GLOBAL_TENSORS.lmHead, { checkFinite: true }));
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
  };
}
