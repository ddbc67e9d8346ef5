/**
 * Finds the runs in a RUN_DIR and reads what each one has: the edgeq checkpoint's per-tensor types and
 * provenance (header only, no weights), and the eval record. A run is a folder that is an edgeq
 * checkpoint or holds an eval record: RUN_DIR itself, else its subfolders, else theirs (two levels;
 * hidden folders and node_modules skipped). A run whose files are unreadable is kept, with the error.
 */
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { EdgeqCheckpoint, isEdgeqCheckpoint, type EdgeqProvenance, type EdgeqTensorQType } from '../formats/edgeq/index.js';
import { EVAL_RECORD_FILE, parseEvalRecord, type EvalRecord } from './eval-record.js';

export interface QuantizedTensorInfo extends EdgeqTensorQType {
  name: string;
}

export interface CheckpointInfo {
  /** Quantized weights in file order, with their types. */
  tensors: QuantizedTensorInfo[];
  provenance: EdgeqProvenance | null;
  /** Bytes of all stored tensors (packed codes, scales, zeros, low-rank factors, dense tensors). */
  storedBytes: number;
  /**
   * Logical parameters: n·k per quantized weight and per low-rank linear (the weight its factors stand
   * for), plus the dense tensors' elements.
   */
  params: number;
  /** 8 · storedBytes / params. */
  bitsPerWeight: number;
  /** When it was made: provenance.date / createdAt, else model.safetensors' modification time (ISO). */
  date: string;
  dateSource: 'provenance' | 'file time';
}

export interface RunData {
  /** Path relative to RUN_DIR, '/'-separated (RUN_DIR's own name when RUN_DIR is the run). */
  id: string;
  dir: string;
  checkpoint: CheckpointInfo | null;
  checkpointError?: string;
  eval: EvalRecord | null;
  evalError?: string;
}

export interface CollectedRuns {
  runDir: string;
  runs: RunData[];
  /** Folders with a config.json that are not edgeq checkpoints (e.g. the FP16 baseline). */
  skipped: string[];
}

const MAX_DEPTH = 2;

export async function collectRuns(runDir: string): Promise<CollectedRuns> {
  const root = path.resolve(runDir);
  const st = await fsp.stat(root).catch(() => null);
  if (!st) throw new UsageError('E_REPORT_DIR', `no such folder: ${runDir}`, 'name the folder holding your quantized checkpoints (e.g. the -o of edgeq quantize, or its parent)');
  if (!st.isDirectory()) throw new UsageError('E_REPORT_DIR', `${runDir} is a file, not a folder`, 'name the folder holding your quantized checkpoints');
  const found: string[] = [];
  const skipped: string[] = [];
  await scan(root, 0, found, skipped);
  const runs: RunData[] = [];
  for (const dir of found) runs.push(await readRun(root, dir));
  if (runs.length === 0) {
    throw new UsageError(
      'E_REPORT_EMPTY',
      `nothing to report in ${runDir}: looked for edgeq checkpoints (config.json + model.safetensors with edgeq metadata) and ${EVAL_RECORD_FILE} eval records in it and its subfolders (${MAX_DEPTH} levels)` +
        (skipped.length ? `; skipped non-edgeq models: ${skipped.join(', ')}` : ''),
      `quantize into it ('edgeq quantize --model M --method rtn --bits 4 -o ${path.join(runDir, 'rtn4')}') and evaluate ('edgeq eval --model ${path.join(runDir, 'rtn4')} --baseline M')`,
    );
  }
  return { runDir: root, runs, skipped };
}

async function isRun(dir: string): Promise<boolean> {
  return fs.existsSync(path.join(dir, EVAL_RECORD_FILE)) || (await isEdgeqCheckpoint(dir));
}

async function scan(dir: string, depth: number, found: string[], skipped: string[]): Promise<void> {
  if (await isRun(dir)) {
    found.push(dir);
    return;
  }
  if (depth > 0 && fs.existsSync(path.join(dir, 'config.json'))) skipped.push(dir);
  if (depth >= MAX_DEPTH) return;
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  const names = entries
    .filter((e) => !e.name.startsWith('.') && e.name !== 'node_modules' && (e.isDirectory() || e.isSymbolicLink()))
    .map((e) => e.name)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (const name of names) {
    const child = path.join(dir, name);
    const cst = await fsp.stat(child).catch(() => null);
    if (cst?.isDirectory()) await scan(child, depth + 1, found, skipped);
  }
}

async function readRun(root: string, dir: string): Promise<RunData> {
  const rel = path.relative(root, dir);
  const run: RunData = { id: rel === '' ? path.basename(dir) : rel.split(path.sep).join('/'), dir, checkpoint: null, eval: null };
  if (await isEdgeqCheckpoint(dir)) {
    try {
      run.checkpoint = await readCheckpointInfo(dir);
    } catch (err) {
      run.checkpointError = (err as Error).message;
    }
  }
  const recordFile = path.join(dir, EVAL_RECORD_FILE);
  if (fs.existsSync(recordFile)) {
    try {
      run.eval = parseEvalRecord(await fsp.readFile(recordFile, 'utf8'), recordFile);
    } catch (err) {
      run.evalError = (err as Error).message;
    }
  }
  return run;
}

async function readCheckpointInfo(dir: string): Promise<CheckpointInfo> {
  const ckpt = await EdgeqCheckpoint.open(dir);
  try {
    const tensors = [...ckpt.qtypes].map(([name, t]) => ({ name, ...t }));
    let storedBytes = 0;
    for (const t of ckpt.file.tensors.values()) storedBytes += t.byteLength;
    let params = tensors.reduce((a, t) => a + t.n * t.k, 0);
    // a low-rank linear's stored factors are counted in storedBytes; its parameters are the original n·k
    for (const t of ckpt.lowRank.values()) params += t.n * t.k;
    for (const name of ckpt.denseNames) params += ckpt.file.tensors.get(name)?.numel ?? 0;
    const prov = ckpt.provenance;
    const provDate = typeof prov?.['date'] === 'string' ? prov['date'] : typeof prov?.['createdAt'] === 'string' ? prov['createdAt'] : undefined;
    const mtime = (await fsp.stat(ckpt.file.path)).mtime.toISOString();
    return {
      tensors,
      provenance: prov,
      storedBytes,
      params,
      bitsPerWeight: params > 0 ? (8 * storedBytes) / params : NaN,
      date: provDate ?? mtime,
      dateSource: provDate ? 'provenance' : 'file time',
    };
  } finally {
    await ckpt.close();
  }
}
