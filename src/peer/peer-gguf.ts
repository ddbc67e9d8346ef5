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

export interface PeerGguf {
  file: string;
  dir: string;
  type: WritableType;
  lossless: boolean;
  note?: string;
}

const NEAREST: Record<number, WritableType> = { 2: 'q2_k', 3: 'q3_k', 4: 'q4_0', 8: 'q8_0' };

async function chooseType(dir: string): Promise<{ type: WritableType; requantize: boolean; note?: string }> {
  if (!(await isEdgeqCheckpoint(dir))) return { type: 'f16', requantize: false };
  const plan = await planForModel(dir);
  if (!plan.entries.some((e) => e.action === 'requantize')) return { type: plan.fileType, requantize: false };
  const ck = await EdgeqCheckpoint.open(dir);
  let bits = 4;
  try {
    bits = Math.max(...[...ck.qtypes.values()].map((q) => q.bits));
  } finally {
    await ck.close();
  }
  const type = NEAREST[bits] ?? 'q8_0';
  return { type, requantize: true, note: `the checkpoint's grid is not a GGUF block type: llama.cpp runs it requantized to ${type.toUpperCase()}` };
}

export async function exportPeerGguf(modelDir: string, requested: WritableType | 'auto'): Promise<PeerGguf> {
  const choice = requested === 'auto' ? await chooseType(modelDir) : { type: requested, requantize: true };
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
