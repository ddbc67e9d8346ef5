/**
 * `edgeq export --target gptq|awq`: an edgeq checkpoint rewritten in the AutoGPTQ (v1) or AutoAWQ GEMM
 * safetensors layout that transformers / vLLM / AutoGPTQ / GPTQModel / AutoAWQ load, with the matching
 * `quantization_config` in config.json — the same writers as `edgeq quantize --format autogptq|autoawq`,
 * fed with the checkpoint's own integers and scales (nothing is requantized: a grid the layout cannot hold
 * is refused with the reason). Dense tensors are stored in fp16, as those loaders expect. Low-rank linears
 * are refused (checkFormatPlan: the loaders replace every block linear with one packed module), as are
 * fp16 block linears for AutoGPTQ; AutoAWQ keeps a linear fp16 only when it is fp16 in every layer
 * (modules_to_not_convert).
 */
import { EdgeqError, UsageError } from '../core/errors.js';
import { factorGrid } from '../formats/edgeq/lowrank-meta.js';
import { EdgeqCheckpoint, isEdgeqCheckpoint } from '../formats/edgeq/reader.js';
import type { TensorPlanEntry } from '../formats/edgeq/plan.js';
import { createCheckpointSink, type CheckpointFormat } from '../pipeline/checkpoint-sink.js';
import { readModelConfig } from '../model/model-dir.js';
import { expectedTensors } from '../arch/llama-tensors.js';

export interface HfQuantExportResult {
  format: 'autogptq' | 'autoawq';
  outDir: string;
  quantized: number;
  dense: number;
}

export async function exportHfQuant(format: 'autogptq' | 'autoawq', modelDir: string, outDir: string, opts: { overwrite?: boolean; onProgress?: (done: number, total: number, tensor: string) => void } = {}): Promise<HfQuantExportResult> {
  if (!(await isEdgeqCheckpoint(modelDir)))
    throw new UsageError('E_NOT_QUANTIZED', `${modelDir} is not an edgeq quantized checkpoint`, `quantize it first (edgeq quantize --method gptq|awq -o DIR), or quantize straight to this layout with --format ${format}`);
  const { config } = readModelConfig(modelDir);
  const ck = await EdgeqCheckpoint.open(modelDir);
  try {
    // plan in the order of the HF tensor list (every tensor the config implies)
    const plan: TensorPlanEntry[] = expectedTensors(config).map((t): TensorPlanEntry => {
      const q = ck.qtypes.get(t.name);
      const lr = ck.lowRank.get(t.name);
      if (lr) return { kind: 'lowrank', name: t.name, shape: [lr.n, lr.k], rank: lr.rank, uGrid: factorGrid(lr, 'u'), vGrid: factorGrid(lr, 'v') };
      if (!q) return { kind: 'dense', name: t.name, shape: t.shape, dtype: 'F16' };
      return { kind: 'quantized', name: t.name, shape: [q.n, q.k], qtype: q.qtype, grid: { bits: q.bits, groupSize: q.groupSize, sym: q.sym }, actOrder: q.actOrder };
    });
    const lowRank = plan.filter((e) => e.kind === 'lowrank');
    if (lowRank.length > 0) {
      const target = format === 'autogptq' ? 'gptq' : 'awq';
      throw new UsageError(
        'E_EXPORT_LOWRANK',
        `--target ${target}: ${lowRank.length} linears (e.g. ${lowRank[0]!.name}) are stored as low-rank factors U·V, which the ${format === 'autogptq' ? 'AutoGPTQ' : 'AutoAWQ'} layout cannot hold (its loaders replace every block linear with one packed module)`,
        'export --target gguf or onnx with --allow-requantize (expands U·V and quantizes it), or quantize without low-rank for this layout',
      );
    }
    if (!plan.some((e) => e.kind === 'quantized')) throw new UsageError('E_NOT_QUANTIZED', `${modelDir} has no quantized linears`);
    const prov = ck.provenance ?? { method: 'unknown' };
    const sink = await createCheckpointSink(format as CheckpointFormat, outDir, {
      plan,
      sourceDir: modelDir,
      overwrite: opts.overwrite,
      provenance: { ...prov, exportedFrom: 'edgeq' },
      gptqMeta: { quantizer_method: prov.method, exported_from: 'edgeq' },
    });
    try {
      let i = 0;
      for (const e of plan) {
        opts.onProgress?.(i++, plan.length, e.name);
        if (e.kind === 'quantized') await sink.writeQuantized(e.name, await ck.readQuantized(e.name));
        else if (e.kind === 'lowrank') await sink.writeLowRank(e.name, await ck.readLowRank(e.name)); // refused by the sink's plan check first
        else await sink.writeDense(e.name, await ck.readDense(e.name));
      }
      await sink.finish(prov);
    } catch (err) {
      await sink.abort();
      if (err instanceof EdgeqError) throw err;
      throw err;
    }
    const quantized = plan.filter((e) => e.kind === 'quantized').length;
    return { format, outDir, quantized, dense: plan.length - quantized };
  } finally {
    await ck.close();
  }
}
