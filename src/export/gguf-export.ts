/**
 * HF or edgeq checkpoint → GGUF file, streamed tensor by tensor (one tensor in memory at a time):
 * plan (gguf-plan.ts), metadata (llama-layout.ts, tokenizer-metadata.ts), then for each tensor read →
 * permute q/k rows → encode / repack / requantize → write (a low-rank linear is read as its product Û·V̂ and
 * requantized, see gguf-plan.ts). Requantization is refused unless allowed, and
 * measured: relative RMS error of the exported weights against the checkpoint's own (dequantized) weights,
 * and — when the original float model is given — against the original before and after.
 */
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { EdgeqCheckpoint } from '../formats/edgeq/index.js';
import { llama3RopeFactors, llamaMetadata, permuteRows, qkRowPermutation } from '../formats/gguf/llama-layout.js';
import { gv } from '../formats/gguf/metadata-values.js';
import { tokenizerMetadata } from '../formats/gguf/tokenizer-metadata.js';
import { ggmlCodec, type WritableType } from '../formats/gguf/tensor-types.js';
import { GgufWriter } from '../formats/gguf/writer.js';
import { readJsonFile, readModelConfig, readOptionalJson } from '../model/model-dir.js';
import { openWeightSource, type WeightSource } from '../model/weight-source.js';
import { dequantize } from '../qtypes/registry.js';
import { planGgufExport, type GgufAction, type GgufPlan, type SourceTensorInfo } from './gguf-plan.js';
import { repackQ4_0, repackQ8_0 } from './gguf-repack.js';

export interface GgufExportOptions {
  /** Model folder (HF or edgeq checkpoint). */
  modelDir: string;
  out: string;
  type?: WritableType;
  /** Allow lossy requantization of edgeq linears whose grid is not the GGUF type's. */
  allowRequantize?: boolean;
  /** Original float model, to state requantization error growth against the original weights. */
  originalDir?: string;
  name?: string;
  onProgress?: (done: number, total: number, tensor: string) => void;
}

export interface GgufTensorReport {
  name: string;
  type: string;
  action: GgufAction;
  note?: string;
  /** ‖exported − source‖ / ‖source‖ (source = the checkpoint's float or dequantized weights). */
  relRms: number;
}

export interface RequantizeReport {
  tensors: number;
  /** Relative RMS error of the requantized tensors vs the checkpoint's dequantized weights. */
  vsCheckpoint: number;
  /** vs the original float weights: the checkpoint's error before, the GGUF's after (when originalDir is given). */
  vsOriginal: { before: number; after: number } | null;
}

export interface GgufExportResult {
  path: string;
  bytes: number;
  fileType: WritableType;
  source: 'hf' | 'edgeq';
  tensors: GgufTensorReport[];
  counts: Record<GgufAction, number>;
  requantize: RequantizeReport | null;
  warnings: string[];
}

async function sourceInfos(dir: string, src: WeightSource): Promise<Map<string, SourceTensorInfo>> {
  const out = new Map<string, SourceTensorInfo>();
  for (const [name, t] of src.tensors) out.set(name, { quantized: null, dtype: t.dtype, ...(t.lowRank ? { lowRank: { rank: t.lowRank.rank } } : {}) });
  if (src.kind === 'edgeq') {
    const ck = await EdgeqCheckpoint.open(dir);
    try {
      for (const [name, t] of ck.qtypes) out.set(name, { quantized: { grid: { bits: t.bits, groupSize: t.groupSize, sym: t.sym }, actOrder: t.actOrder } });
    } finally {
      await ck.close();
    }
  }
  return out;
}

function sumSq(a: Float32Array, b?: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = b ? a[i]! - b[i]! : a[i]!;
    s += d * d;
  }
  return s;
}

export async function planForModel(modelDir: string, type?: WritableType): Promise<GgufPlan> {
  const { config } = readModelConfig(modelDir);
  const src = await openWeightSource(modelDir, { checkFinite: false });
  try {
    return planGgufExport(config, await sourceInfos(modelDir, src), type);
  } finally {
    await src.close();
  }
}

export async function exportGguf(opts: GgufExportOptions): Promise<GgufExportResult> {
  const { config } = readModelConfig(opts.modelDir);
  const src = await openWeightSource(opts.modelDir, { checkFinite: true });
  const original = opts.originalDir ? await openWeightSource(opts.originalDir, { checkFinite: true }) : null;
  const warnings: string[] = [];
  const writer = new GgufWriter(opts.out);
  try {
    const plan = planGgufExport(config, await sourceInfos(opts.modelDir, src), opts.type);
    const requant = plan.entries.filter((e) => e.action === 'requantize');
    const lowRank = requant.filter((e) => e.lowRankRank !== undefined);
    if (lowRank.length && !opts.allowRequantize)
      throw new UsageError(
        'E_GGUF_LOWRANK',
        `${lowRank.length} linears (e.g. ${lowRank[0]!.hf}, rank ${lowRank[0]!.lowRankRank}) are stored as low-rank factors U·V, which GGUF cannot hold`,
        `pass --allow-requantize to expand each to the dense U·V and quantize it to ${lowRank[0]!.type.name} (lossy; the error is reported), or quantize without low-rank for a GGUF export`,
      );
    if (requant.length && !opts.allowRequantize)
      throw new UsageError(
        'E_REQUANTIZE',
        `${requant.length} quantized linears (e.g. ${requant[0]!.hf}) are not on the ${plan.fileType} grid and would be requantized (lossy)`,
        `pass --allow-requantize to accept the extra error, or quantize with the target grid (${plan.fileType === 'q8_0' ? '--bits 8' : '--bits 4'} --group-size 32 --sym) for a lossless export`,
      );

    for (const [k, v] of llamaMetadata(config, opts.name ?? path.basename(path.resolve(opts.modelDir)))) writer.setMetadata(k, v);
    writer.setMetadata('general.file_type', gv.u32(plan.fileTypeId));
    if (plan.quantized) writer.setMetadata('general.quantization_version', gv.u32(2));
    const tok = tokenizerMetadata({
      tokenizer: readJsonFile(path.join(opts.modelDir, 'tokenizer.json')) as Record<string, unknown>,
      tokenizerConfig: readOptionalJson(path.join(opts.modelDir, 'tokenizer_config.json')),
      vocabSize: config.vocabSize,
      bosId: config.bosTokenId,
      eosId: config.eosTokenIds[0] ?? null,
    });
    warnings.push(...tok.warnings);
    for (const [k, v] of tok.kv) writer.setMetadata(k, v);
    for (const e of plan.entries) writer.addTensor(e.gguf, e.dims, e.type);
    await writer.beginData();

    const reports: GgufTensorReport[] = [];
    const rq = { err: 0, ref: 0, origBefore: 0, origAfter: 0, orig: 0 };
    for (let i = 0; i < plan.entries.length; i++) {
      const e = plan.entries[i]!;
      opts.onProgress?.(i, plan.entries.length, e.gguf);
      const rows = e.shape[0]!;
      const perm = e.permuteHeads ? qkRowPermutation(rows, e.permuteHeads) : null;
      let bytes: Uint8Array;
      let relRms = 0;
      if (e.role === 'rope') {
        bytes = ggmlCodec(e.type).quantize(llama3RopeFactors(config));
      } else if (e.action === 'repack') {
        const q = (await src.readQuantized(e.hf!))!;
        bytes = e.type.name === 'Q4_0' ? repackQ4_0(q, e.hf!, perm) : repackQ8_0(q, e.hf!, perm);
      } else {
        let w = await src.readF32(e.hf!);
        if (perm) w = permuteRows(w, rows, perm);
        const codec = ggmlCodec(e.type);
        bytes = codec.quantize(w);
        if (e.type.blockSize > 1 || e.type.name === 'F16') {
          const back = codec.dequantize(bytes, new Float32Array(w.length));
          const err = sumSq(back, w);
          const ref = sumSq(w);
          relRms = ref > 0 ? Math.sqrt(err / ref) : 0;
          if (e.action === 'requantize') {
            rq.err += err;
            rq.ref += ref;
            if (original) {
              let o = await original.readF32(e.hf!);
              if (perm) o = permuteRows(o, rows, perm);
              rq.origBefore += sumSq(w, o);
              rq.origAfter += sumSq(back, o);
              rq.orig += sumSq(o);
            }
          }
        }
      }
      await writer.writeTensor(e.gguf, bytes);
      reports.push({ name: e.gguf, type: e.type.name, action: e.action, relRms, ...(e.note ? { note: e.note } : {}) });
    }
    const done = await writer.finish();
    opts.onProgress?.(plan.entries.length, plan.entries.length, '');
    const counts: Record<GgufAction, number> = { encode: 0, repack: 0, requantize: 0 };
    for (const r of reports) counts[r.action]++;
    let requantize: RequantizeReport | null = null;
    if (requant.length) {
      requantize = {
        tensors: requant.length,
        vsCheckpoint: Math.sqrt(rq.err / rq.ref),
        vsOriginal: original ? { before: Math.sqrt(rq.origBefore / rq.orig), after: Math.sqrt(rq.origAfter / rq.orig) } : null,
      };
      warnings.push(
        `requantized ${requant.length} linears to ${plan.fileType}${lowRank.length ? ` (${lowRank.length} low-rank linears expanded to U·V first)` : ''}: relative RMS error vs the checkpoint's weights ${requantize.vsCheckpoint.toExponential(3)}` +
          (requantize.vsOriginal
            ? `; vs the original weights ${requantize.vsOriginal.before.toExponential(3)} before → ${requantize.vsOriginal.after.toExponential(3)} after (×${(requantize.vsOriginal.after / requantize.vsOriginal.before).toFixed(2)})`
            : ' (pass --original <float model> to compare with the original weights)'),
      );
    }
    return { path: done.path, bytes: done.bytes, fileType: plan.fileType, source: src.kind, tensors: reports, counts, requantize, warnings };
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    await src.close();
    await original?.close();
  }
}
