/**
 * The resume journal of a partial quantization output, `OUT.partial/edgeq-resume.json`:
 *
 *   { kind: 'edgeq-resume-journal', version: 1,
 *     fingerprint,                           the request (fingerprint.ts)
 *     blocks: { done, total },               blocks 0..done-1 are in the data file
 *     data: { file, headerBytes, dataBytes, sha256 },   where model.safetensors stood, fsynced
 *     activations: { file, n, T, d, sha256 } | null,    the calibration activations entering block `done`
 *     layers: [...], awq: [...] }            the per-layer (and AWQ) reports so far
 *
 * Write order per block (kill -9 at any instant leaves a consistent state): the data file is fsynced,
 * the activations go to a new file named after the block (temp + fsync + rename), then the journal is
 * replaced (temp + fsync + rename), and only then the previous activation file is deleted. A resume
 * truncates the data file to `dataBytes` and ignores activation files the journal does not name.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { openAtomicFile, writeFileAtomicAsync } from '../../core/atomic-write.js';
import { FormatError } from '../../core/errors.js';
import { RESUME_FILE_PREFIX } from '../../formats/edgeq/atomic-dir.js';
import type { DataCheckpoint } from '../../formats/edgeq/stream-writer.js';
import { CalibActivations } from '../activations.js';
import type { RequestFingerprint } from './fingerprint.js';

export const JOURNAL_FILE = `${RESUME_FILE_PREFIX}.json`;
export const JOURNAL_KIND = 'edgeq-resume-journal';
export const JOURNAL_VERSION = 1;

export interface ActivationsRef {
  file: string;
  n: number;
  T: number;
  d: number;
  sha256: string;
}

export interface ResumeJournal<L = unknown, A = unknown> {
  kind: typeof JOURNAL_KIND;
  version: typeof JOURNAL_VERSION;
  fingerprint: RequestFingerprint;
  blocks: { done: number; total: number };
  data: DataCheckpoint & { file: string };
  activations: ActivationsRef | null;
  layers: L[];
  awq: A[];
}

/** Name of the activation file entering block `block`. */
export function activationsFileFor(block: number): string {
  return `${RESUME_FILE_PREFIX}-acts-${block}.f32`;
}

const HINT = 'the partial output cannot be resumed; pass --overwrite to discard it and start over';

function bad(file: string, why: string): FormatError {
  return new FormatError('E_RESUME_JOURNAL', `not a valid resume journal: ${why}`, file, HINT);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isHex = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isName = (v: unknown): v is string => typeof v === 'string' && v !== '' && !v.includes('/') && !v.includes('\\') && v !== '..' && v !== '.';

/** Parse and check a journal's text (throws FormatError E_RESUME_JOURNAL naming what is wrong). */
export function parseJournal(text: string, file: string): ResumeJournal {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (err) {
    throw bad(file, text.trim() === '' ? 'the file is empty' : `truncated or corrupt JSON (${(err as Error).message})`);
  }
  if (!isObj(j)) throw bad(file, 'not a JSON object');
  if (j.kind !== JOURNAL_KIND) throw bad(file, `kind is ${JSON.stringify(j.kind)}, expected '${JOURNAL_KIND}'`);
  if (j.version !== JOURNAL_VERSION) throw bad(file, `version ${JSON.stringify(j.version)}, this edgeq reads version ${JOURNAL_VERSION}`);
  if (!isObj(j.fingerprint) || !isObj(j.fingerprint.model) || typeof j.fingerprint.method !== 'string') throw bad(file, 'fingerprint missing or malformed');
  const b = j.blocks;
  if (!isObj(b) || !isCount(b.done) || !isCount(b.total) || b.done < 1 || b.done > b.total) throw bad(file, 'blocks.done / blocks.total missing or out of range');
  const d = j.data;
  if (!isObj(d) || !isName(d.file) || !isCount(d.headerBytes) || !isCount(d.dataBytes) || !isHex(d.sha256)) throw bad(file, 'data {file, headerBytes, dataBytes, sha256} missing or malformed');
  const a = j.activations;
  if (a !== null && (!isObj(a) || !isName(a.file) || !a.file.startsWith(RESUME_FILE_PREFIX) || !isCount(a.n) || !isCount(a.T) || !isCount(a.d) || !isHex(a.sha256)))
    throw bad(file, 'activations {file, n, T, d, sha256} malformed');
  if (!Array.isArray(j.layers) || !Array.isArray(j.awq)) throw bad(file, 'layers / awq reports missing');
  return j as unknown as ResumeJournal;
}

/** The journal in `partialDir`, or null when there is none (nothing was journaled yet). */
export async function readJournal(partialDir: string): Promise<ResumeJournal | null> {
  const file = path.join(partialDir, JOURNAL_FILE);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return parseJournal(text, file);
}

/** Replace the journal atomically (temp file, fsync, rename, folder fsync). */
export async function writeJournal(partialDir: string, j: ResumeJournal): Promise<void> {
  await writeFileAtomicAsync(path.join(partialDir, JOURNAL_FILE), `${JSON.stringify(j, null, 1)}\n`);
}

function bytesOf(acts: CalibActivations): Uint8Array {
  return new Uint8Array(acts.data.buffer, acts.data.byteOffset, acts.data.byteLength);
}

/** Save the activations entering block `block` into their own file, atomically; returns the journal's reference. */
export async function saveActivations(partialDir: string, block: number, acts: CalibActivations): Promise<ActivationsRef> {
  const file = activationsFileFor(block);
  const bytes = bytesOf(acts);
  const f = await openAtomicFile(path.join(partialDir, file));
  try {
    await f.write(bytes);
    await f.commit();
  } catch (err) {
    await f.abort();
    throw err;
  }
  return { file, n: acts.n, T: acts.T, d: acts.d, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Load journaled activations, checking their size and SHA-256. */
export async function loadActivations(partialDir: string, ref: ActivationsRef): Promise<CalibActivations> {
  const file = path.join(partialDir, ref.file);
  const acts = new CalibActivations(ref.n, ref.T, ref.d);
  const bytes = bytesOf(acts);
  let fh;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FormatError('E_RESUME_ACTIVATIONS', 'the journaled activation file is missing', file, HINT);
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    if (size !== bytes.length) throw new FormatError('E_RESUME_ACTIVATIONS', `holds ${size} bytes, the journal says ${bytes.length} (${ref.n}×${ref.T}×${ref.d} fp32)`, file, HINT);
    for (let done = 0; done < bytes.length; ) {
      const { bytesRead } = await fh.read(bytes, done, bytes.length - done, done);
      if (bytesRead <= 0) throw new FormatError('E_RESUME_ACTIVATIONS', 'short read', file, HINT);
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
  if (createHash('sha256').update(bytes).digest('hex') !== ref.sha256) throw new FormatError('E_RESUME_ACTIVATIONS', 'SHA-256 differs from the journal (corrupt)', file, HINT);
  return acts;
}

/** Delete activation files of `partialDir` other than `keep` (left by a kill between two steps). */
export async function removeStaleActivations(partialDir: string, keep: string | null): Promise<void> {
  const prefix = `${RESUME_FILE_PREFIX}-acts-`;
  for (const name of await fsp.readdir(partialDir)) {
    if (name.startsWith(prefix) && name !== keep) await fsp.rm(path.join(partialDir, name), { force: true });
  }
}
