/**
 * The GGUF export plan (pure; no tensor data): for every GGUF tensor, its GGML type and how it is
 * produced —
 *   'encode'      float weights (HF source, or a dense tensor of an edgeq checkpoint) through the type's
 *                 reference codec;
 *   'repack'      an edgeq quantized linear whose grid IS the GGUF block type (symmetric 4-bit g32 → Q4_0,
 *                 symmetric 8-bit g32 → Q8_0, no act-order): the same integers and fp16 scales, bit-exact;
 *   'requantize'  an edgeq quantized linear on another grid: dequantized, then quantized again (lossy;
 *                 only with allowRequantize); an edgeq low-rank linear (W ≈ U·V has no GGUF form): expanded
 *                 to the dense product Û·V̂, then quantized to the tensor's type like any float weight (also
 *                 only with allowRequantize; refused otherwise, naming the tensor).
 *
 * Type choice for a requested file type T (documented in README "GGUF export"):
 *   - 1-D tensors (norms, biases, rope_freqs): F32 always (llama.cpp does the same).
 *   - f32 / f16: every 2-D tensor in that type.
 *   - quantized T: block linears and token_embd in T; the output projection (output.weight, or token_embd
 *     when embeddings are tied and it doubles as the output) in Q6_K as llama-quantize does, except for
 *     T = q8_0 (everything Q8_0) and T = f16/f32.
 *   - a tensor whose row length is not a multiple of the type's block size falls back:
 *     q2_k, q3_k, q4_k → q4_0;  q6_k → q8_0;  q4_0, q8_0 → f16.
 * Without an explicit type, an edgeq checkpoint whose quantized linears each map onto a GGUF block type
 * exports every one of them to its own type (no loss; per-tensor mixed Q4_0 / Q8_0 is fine) and the file
 * type (`general.file_type`, informational in llama.cpp) is the type most of them use (ties: Q4_0); an HF
 * checkpoint exports to f16. With an explicit type, every quantized linear goes to that type (repacked
 * where its grid is the type's, requantized otherwise). The 2-D tensors an edgeq checkpoint keeps dense
 * (embeddings, LM head) stay dense — F16 when stored F16, else F32 — so the GGUF holds exactly the
 * checkpoint's model.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { UsageError } from '../core/errors.js';
import { ggufDims, llamaTensorMappings, type GgufTensorMapping } from '../formats/gguf/llama-layout.js';
import { ggmlType, type GgmlTypeInfo, type WritableType } from '../formats/gguf/tensor-types.js';
import type { GridSpec } from '../qtypes/types.js';

export type GgufAction = 'encode' | 'repack' | 'requantize';

export interface GgufPlanEntry extends GgufTensorMapping {
  dims: number[];
  type: GgmlTypeInfo;
  action: GgufAction;
  /** Why the type differs from the requested one, when it does. */
  note?: string;
  /** Rank of a low-rank source linear (expanded to U·V before quantization). */
  lowRankRank?: number;
}

export interface GgufPlan {
  fileType: WritableType;
  /** llama.cpp's `general.file_type` (LLAMA_FTYPE_*). */
  fileTypeId: number;
  entries: GgufPlanEntry[];
  /** True when any tensor is block-quantized (general.quantization_version is then written). */
  quantized: boolean;
}

/** LLAMA_FTYPE ids of the file types edgeq writes (ALL_F32 0, MOSTLY_F16 1, Q4_0 2, Q8_0 7, Q2_K 10, Q3_K_S 11, Q4_K_S 14, Q6_K 18: one type for every linear, output Q6_K). */
const FILE_TYPE_IDS: Record<WritableType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q2_k: 10, q3_k: 11, q4_k: 14, q6_k: 18 };

const FALLBACK: Partial<Record<WritableType, WritableType>> = { q2_k: 'q4_0', q3_k: 'q4_0', q4_k: 'q4_0', q6_k: 'q8_0', q4_0: 'f16', q8_0: 'f16' };

/** The GGUF block type an edgeq grid is identical to, or null. */
export function nativeGgufTypeOfGrid(grid: GridSpec, actOrder: boolean): WritableType | null {
  if (actOrder || !grid.sym || grid.groupSize !== 32) return null;
  if (grid.bits === 4) return 'q4_0';
  if (grid.bits === 8) return 'q8_0';
  return null;
}

export interface SourceTensorInfo {
  /** Grid of a quantized linear (edgeq checkpoints), with act-order; null = dense. */
  quantized: { grid: GridSpec; actOrder: boolean } | null;
  /** Storage dtype of a dense tensor ('F16', 'F32', 'BF16', …), when known. */
  dtype?: string;
  /** An edgeq low-rank linear (exported only expanded to U·V, with allowRequantize). */
  lowRank?: { rank: number };
}

/** A type that fits a row length, following the fallback chain. */
function fitType(want: WritableType, rowLength: number): { type: WritableType; note?: string } {
  let t = want;
  while (rowLength % ggmlType(t).blockSize !== 0) {
    const next = FALLBACK[t];
    if (!next) break;
    t = next;
  }
  return t === want ? { type: t } : { type: t, note: `row length ${rowLength} is not a multiple of ${ggmlType(want).name}'s block of ${ggmlType(want).blockSize}: ${ggmlType(t).name}` };
}

export function defaultGgufType(sources: ReadonlyMap<string, SourceTensorInfo>): WritableType {
  const natives = new Map<WritableType | null, number>();
  for (const s of sources.values()) {
    if (!s.quantized) continue;
    const t = nativeGgufTypeOfGrid(s.quantized.grid, s.quantized.actOrder);
    natives.set(t, (natives.get(t) ?? 0) + 1);
  }
  if (natives.size === 0) return 'f16';
  if (!natives.has(null)) {
    // every quantized linear has a native type: the file type is the most used one (ties: Q4_0)
    let best: WritableType | null = null;
    for (const t of ['q4_0', 'q8_0'] as const) if ((natives.get(t) ?? 0) > (best ? natives.get(best)! : 0)) best = t;
    return best!;
  }
  throw new UsageError(
    'E_GGUF_TYPE_REQUIRED',
    'the checkpoint\'s quantized linears do not all map onto one GGUF block type',
    'name the GGUF type with --type (e.g. --type q4_k) and pass --allow-requantize; quantize with --bits 4 --group-size 32 --sym for a lossless Q4_0 export',
  );
}

export function planGgufExport(config: LlamaConfig, sources: ReadonlyMap<string, SourceTensorInfo>, requested?: WritableType): GgufPlan {
  const fileType = requested ?? defaultGgufType(sources);
  const edgeqSource = [...sources.values()].some((s) => s.quantized || s.lowRank);
  const entries: GgufPlanEntry[] = [];
  for (const m of llamaTensorMappings(config)) {
    const dims = ggufDims(m.shape);
    const q = m.hf ? (sources.get(m.hf)?.quantized ?? null) : null;
    const lowRank = m.hf ? sources.get(m.hf)?.lowRank : undefined;
    if (m.shape.length === 1) {
      entries.push({ ...m, dims, type: ggmlType('f32'), action: 'encode' });
      continue;
    }
    if (lowRank) {
      const fit = fitType(fileType, dims[0]!);
      const note = `low-rank (rank ${lowRank.rank}) in the edgeq checkpoint: U·V expanded, then ${ggmlType(fit.type).name}${fit.note ? ` (${fit.note})` : ''}`;
      entries.push({ ...m, dims, type: ggmlType(fit.type), action: 'requantize', note, lowRankRank: lowRank.rank });
      continue;
    }
    if (!requested && q) {
      // no type asked for: a linear whose grid is a GGUF block type keeps it (lossless, per tensor)
      const native = nativeGgufTypeOfGrid(q.grid, q.actOrder);
      if (native && dims[0]! % ggmlType(native).blockSize === 0) {
        entries.push({ ...m, dims, type: ggmlType(native), action: 'repack', ...(native !== fileType ? { note: `grid is ${ggmlType(native).name}'s: kept ${ggmlType(native).name} (file type ${fileType})` } : {}) });
        continue;
      }
    }
    if (edgeqSource && !q) {
      // the checkpoint kept this tensor dense: keep it dense (bit-exact for F16/F32 storage)
      const t: WritableType = sources.get(m.hf!)?.dtype === 'F16' ? 'f16' : 'f32';
      entries.push({ ...m, dims, type: ggmlType(t), action: 'encode', note: `dense in the edgeq checkpoint: kept ${t.toUpperCase()}` });
      continue;
    }
    const isOutput = m.role === 'output' || (m.role === 'embedding' && config.tieWordEmbeddings);
    let want: WritableType = fileType;
    if (isOutput && fileType !== 'f32' && fileType !== 'f16' && fileType !== 'q8_0') want = 'q6_k';
    const fit = fitType(want, dims[0]!);
    const type = ggmlType(fit.type);
    let action: GgufAction = 'encode';
    if (q) action = nativeGgufTypeOfGrid(q.grid, q.actOrder) === fit.type ? 'repack' : 'requantize';
    entries.push({ ...m, dims, type, action, ...(fit.note ? { note: fit.note } : {}) });
  }
  return { fileType, fileTypeId: FILE_TYPE_IDS[fileType], entries, quantized: entries.some((e) => e.type.blockSize > 1) };
}
