/**
 * The GGUF a peer comparison runs in llama.cpp: exported on the fly (into a temporary folder the caller
 * deletes) from the very checkpoint edgeq runs. 'auto' picks the lossless type when the checkpoint's grid
 * is a GGUF block type (e.g. int4 g32 sym → Q4_0), otherwise the nearest type by bit width (requantized,
 * said in `note`); a Hugging Face model goes as F16.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportGguf, planForModel } from '../export/gguf-export.js';
import type { WritableType } from '../formats/gguf/tensor-types.js';
import { isEdgeqCheckpoint, EdgeqCheckpoint } from '../formats/edgeq/reader.js';
import { factorQType, type EdgeqLowRankType } from '../formats/edgeq/lowrank-meta.js';
import type { EdgeqTensorQType } from '../formats/edgeq/metadata.js';

export interface PeerGguf {
  file: string;
  dir: string;
  type: WritableType;
  lossless: boolean;
  note?: string;
}

const NEAREST: Record<number, WritableType> = { 2: 'q2_k', 3: 'q3_k', 4: 'q4_0', 8: 'q8_0' };

/**
 * The widest code width among a checkpoint's stored linears: each quantized weight's bits, and for each
 * low-rank linear its factors' bits (an F16 factor counts 16); 16 when there is neither (dense linears only).
 */
export function maxLinearBits(qtypes: Iterable<EdgeqTensorQType>, lowRank: Iterable<EdgeqLowRankType>): number {
  let bits = -Infinity;
  for (const q of qtypes) bits = Math.max(bits, q.bits);
  for (const t of lowRank) for (const which of ['u', 'v'] as const) bits = Math.max(bits, factorQType(t, which)?.bits ?? 16);
  return Number.isFinite(bits) ? bits : 16;
}

/** The GGUF type a checkpoint goes to for llama.cpp ('auto'): lossless when its grid is a GGUF type, else the nearest. */
export async function choosePeerType(dir: string): Promise<{ type: WritableType; requantize: boolean; note?: string }> {
  if (!(await isEdgeqCheckpoint(dir))) return { type: 'f16', requantize: false };
  const plan = await planForModel(dir);
  if (!plan.entries.some((e) => e.action === 'requantize')) return { type: plan.fileType, requantize: false };
  const ck = await EdgeqCheckpoint.open(dir);
  let bits = 4;
  let lowRank = 0;
  try {
    bits = maxLinearBits(ck.qtypes.values(), ck.lowRank.values());
    lowRank = ck.lowRank.size;
  } finally {
    await ck.close();
  }
  const type = NEAREST[bits] ?? 'q8_0';
  const expanded = lowRank ? ` (${lowRank} low-rank linears expanded to U·V first)` : '';
  return { type, requantize: true, note: `the checkpoint's grid is not a GGUF block type: llama.cpp runs it requantized to ${type.toUpperCase()}${expanded}` };
}

export async function exportPeerGguf(modelDir: string, requested: WritableType | 'auto'): Promise<PeerGguf> {
  const choice = requested === 'auto' ? await choosePeerType(modelDir) : { type: requested, requantize: true };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-peer-'));
  const file = path.join(dir, `model-${choice.type}.gguf`);
  try {
    const res = await exportGguf({ modelDir, out: file, type: choice.type, allowRequantize: choice.requantize });
    const lossless = res.counts.requantize === 0;
    return { file, dir, type: choice.type, lossless, note: choice.note ?? (lossless ? undefined : `requantized to ${choice.type.toUpperCase()} for llama.cpp`) };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
