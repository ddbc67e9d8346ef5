/**
 * The `__metadata__` of an edgeq checkpoint's model.safetensors (all values are strings):
 *
 *   format               "pt"  (transformers refuses safetensors files without it)
 *   edgeq.format_version "1", or "2" when the file holds low-rank linears (see below)
 *   edgeq.qtypes         JSON {"<weight name>": {qtype, bits, groupSize, sym, n, k, actOrder}}
 *                        groupSize is the grid's (-1 = per channel)
 *   edgeq.lowrank        (version 2 only) JSON {"<weight name>": {n, k, rank, u, v}}, u / v = "F16" or a
 *                        registry quant type id (lowrank-meta.ts)
 *   edgeq.provenance     JSON object supplied by the caller (EdgeqProvenance)
 *
 * For a quantized weight `<m>.weight` the file holds `<m>.qweight` (U8 [n, ceil(k·bits/8)], codes
 * bit-packed LSB-first per row, see bitpack.ts), `<m>.scales` (F16 [n, numGroups]), `<m>.qzeros`
 * (U8 [n, numGroups], asymmetric grids only; symmetric zeros are 2^(bits−1)) and `<m>.g_idx`
 * (I32 [k], act-order only). Dense tensors keep their HF names (F16 or F32); a linear kept in fp16 (the
 * ladder's fp16 rung) is simply a dense F16 `<m>.weight`.
 *
 * A low-rank linear W (n, k) ≈ U (n, r) · V (r, k) listed in edgeq.lowrank stores no `<m>.weight`; its
 * factors are ordinary entries under `<m>.lowrank_u` / `<m>.lowrank_v`: dense F16 `<m>.lowrank_u.weight`
 * [n, r] / `<m>.lowrank_v.weight` [r, k], or quantized with the usual `.qweight` / `.scales` / `.qzeros`
 * (never `.g_idx`; U's rows are r wide, V's k wide, and the grid's group size divides that width). U is
 * written before V. Factors are not listed in edgeq.qtypes and are not dense tensors of the model.
 *
 * Versions: a checkpoint without low-rank linears is written as version 1, byte-for-byte what older edgeq
 * builds read. One with low-rank linears is version 2, which version-1 readers refuse with "upgrade edgeq"
 * instead of failing later on a missing `<m>.weight`. This reader refuses edgeq.lowrank in a version-1
 * file, unknown quant types, ranks outside [1, min(n, k)], and factor tensors that are missing, mis-shaped
 * or of the wrong dtype (FormatError E_EDGEQ_LOWRANK / E_EDGEQ_LAYOUT).
 */
import { FormatError, UnsupportedError } from '../../core/errors.js';
import type { Bits } from '../../qtypes/types.js';
import { isPackableBits, packedRowBytes } from '../bitpack.js';

/** Newest format version this build reads and writes (2 only when the file holds low-rank linears). */
export const EDGEQ_FORMAT_VERSION = 2;
/** Version written for checkpoints without low-rank linears (readable by every edgeq build). */
export const EDGEQ_FORMAT_VERSION_BASE = 1;
/** Version written when `edgeq.lowrank` is present: a version-1 reader refuses it instead of misloading. */
export const EDGEQ_FORMAT_VERSION_LOWRANK = 2;
export const META_FORMAT_VERSION = 'edgeq.format_version';
export const META_QTYPES = 'edgeq.qtypes';
export const META_PROVENANCE = 'edgeq.provenance';
export const META_LOWRANK = 'edgeq.lowrank';
/** Storage tag of a dense (F16) low-rank factor in `edgeq.lowrank`. */
export const LOWRANK_DENSE_TAG = 'F16';

export interface EdgeqTensorQType {
  qtype: string;
  bits: Bits;
  /** The grid's group size; -1 = per channel. */
  groupSize: number;
  sym: boolean;
  n: number;
  k: number;
  actOrder: boolean;
}

export interface EdgeqCalibrationInfo {
  name: string;
  sha256: string;
  samples: number;
  seqlen: number;
  seed: number;
}

/** How the checkpoint was made. Callers may add fields; they are kept as JSON. */
export interface EdgeqProvenance {
  /** 'rtn' | 'gptq' | 'awq' | ... */
  method: string;
  bits?: number;
  groupSize?: number;
  calibration?: EdgeqCalibrationInfo | null;
  edgeqVersion?: string;
  /** Per quantized tensor: the quantizer's error measure (e.g. relative output MSE). */
  layerErrors?: Record<string, number>;
  [key: string]: unknown;
}

/** Names of the stored tensors for quantized weight `<prefix>.weight`. */
export function edgeqTensorNames(prefix: string): { qweight: string; scales: string; qzeros: string; gIdx: string } {
  return { qweight: `${prefix}.qweight`, scales: `${prefix}.scales`, qzeros: `${prefix}.qzeros`, gIdx: `${prefix}.g_idx` };
}

/** Shapes of the stored tensors of one quantized weight. */
export function edgeqTensorShapes(t: EdgeqTensorQType): {
  qweight: [number, number];
  scales: [number, number];
  qzeros: [number, number] | null;
  gIdx: [number] | null;
} {
  const g = Math.ceil(t.k / (t.groupSize === -1 ? t.k : t.groupSize));
  return {
    qweight: [t.n, packedRowBytes(t.k, t.bits)],
    scales: [t.n, g],
    qzeros: t.sym ? null : [t.n, g],
    gIdx: t.actOrder ? [t.k] : null,
  };
}

/** Parse and validate `edgeq.qtypes`. */
export function parseQtypes(text: string | undefined, file: string): Map<string, EdgeqTensorQType> {
  if (text === undefined) throw new FormatError('E_EDGEQ_META', `no '${META_QTYPES}' in __metadata__`, file);
  const root = parseJsonObject(text, META_QTYPES, file);
  const out = new Map<string, EdgeqTensorQType>();
  for (const [name, v] of Object.entries(root)) {
    const bad = (why: string): never => {
      throw new FormatError('E_EDGEQ_META', `${META_QTYPES}['${name}']: ${why}`, file);
    };
    if (!isObject(v)) bad('not an object');
    const e = v as Record<string, unknown>;
    const { qtype, bits, groupSize, sym, n, k, actOrder } = e;
    if (typeof qtype !== 'string') bad('qtype is not a string');
    if (!isPackableBits(bits)) bad(`bits ${String(bits)} is not 2, 3, 4 or 8`);
    if (!isPosInt(n) || !isPosInt(k)) bad('n and k must be positive integers');
    if (groupSize !== -1 && !isPosInt(groupSize)) bad('groupSize must be a positive integer or -1');
    if (typeof sym !== 'boolean' || typeof actOrder !== 'boolean') bad('sym and actOrder must be booleans');
    if (!name.endsWith('.weight')) bad("quantized tensor names end in '.weight'");
    out.set(name, { qtype, bits, groupSize, sym, n, k, actOrder } as EdgeqTensorQType);
  }
  return out;
}

/** Check the format version is one this build reads. */
export function checkFormatVersion(text: string | undefined, file: string): number {
  if (text === undefined) throw new FormatError('E_EDGEQ_META', `no '${META_FORMAT_VERSION}' in __metadata__ (not an edgeq checkpoint)`, file);
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < 1) throw new FormatError('E_EDGEQ_META', `${META_FORMAT_VERSION} '${text}' is not a positive integer`, file);
  if (v > EDGEQ_FORMAT_VERSION) {
    throw new UnsupportedError(
      'E_EDGEQ_VERSION',
      `${file}: edgeq format version ${v} is newer than this build reads (${EDGEQ_FORMAT_VERSION})`,
      'upgrade edgeq to read this checkpoint',
    );
  }
  return v;
}

export function parseProvenance(text: string | undefined, file: string): EdgeqProvenance | null {
  if (text === undefined) return null;
  const obj = parseJsonObject(text, META_PROVENANCE, file);
  if (typeof obj['method'] !== 'string') throw new FormatError('E_EDGEQ_META', `${META_PROVENANCE} has no string 'method'`, file);
  return obj as EdgeqProvenance;
}

function parseJsonObject(text: string, key: string, file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new FormatError('E_EDGEQ_META', `${key} is not valid JSON`, file);
  }
  if (!isObject(v)) throw new FormatError('E_EDGEQ_META', `${key} is not a JSON object`, file);
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPosInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}
