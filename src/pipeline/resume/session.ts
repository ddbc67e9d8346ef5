/**
 * One quantization run's side of resuming (journal format: journal.ts): on start, validate an earlier
 * run's journal against this request (--resume) or refuse a leftover partial output (without it); hand
 * the checkpoint writer where to continue; after each finished block flush the data file and journal the
 * activations entering the next block and the reports so far; on resume, give back that state. A lock
 * file (`edgeq-resume.lock`, the writer's pid) keeps a second process from resuming or discarding a
 * partial output that a live one is still writing.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../core/errors.js';
import { partialDirFor, partialExists, nothingToResume, RESUME_FILE_PREFIX } from '../../formats/edgeq/atomic-dir.js';
import type { PartialFileOptions } from '../../formats/edgeq/stream-writer.js';
import { MODEL_FILE } from '../../formats/edgeq/folder-writer.js';
import type { CalibActivations } from '../activations.js';
import type { CheckpointSink } from '../checkpoint-sink.js';
import type { QuantPlan } from '../plan.js';
import type { LayerReport, QuantizeReport, QuantizeRequest } from '../quantize-model.js';
import { fingerprintMismatch, hashModelFiles, sha256Json, type RequestFingerprint } from './fingerprint.js';
import { JOURNAL_KIND, JOURNAL_VERSION, loadActivations, readJournal, removeStaleActivations, saveActivations, writeJournal, type ResumeJournal } from './journal.js';

type AwqReport = QuantizeReport['awq'][number];

export const LOCK_FILE = `${RESUME_FILE_PREFIX}.lock`;

/** Refuse a partial folder whose lock names another live process. */
async function checkNotBusy(dir: string): Promise<void> {
  const lock = path.join(dir, LOCK_FILE);
  let pid: unknown;
  try {
    pid = (JSON.parse(await fsp.readFile(lock, 'utf8')) as { pid?: unknown }).pid;
  } catch {
    return; // no lock (or a torn one): nobody is writing
  }
  if (!Number.isSafeInteger(pid) || (pid as number) <= 0 || pid === process.pid) return;
  try {
    process.kill(pid as number, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return; // the writer is gone (killed, crashed)
  }
  throw new UsageError(
    'E_PARTIAL_BUSY',
    `${dir} is being written by another edgeq process (pid ${String(pid)})`,
    `wait for it to finish, or stop it (Ctrl-C) and pass --resume; if no such edgeq is running, delete ${lock}`,
  );
}

/** What a resumed run continues from. */
export interface RestoredState {
  acts: CalibActivations | null;
  layers: LayerReport[];
  awq: AwqReport[];
}

/** The request's fingerprint (hashes every file of the model folder). */
export async function requestFingerprint(req: QuantizeRequest, plan: QuantPlan): Promise<RequestFingerprint> {
  const cal = req.calibration;
  return {
    edgeqVersion: req.edgeqVersion,
    format: plan.format,
    method: req.method,
    bits: req.grid.bits,
    groupSize: req.grid.groupSize,
    sym: req.grid.sym,
    actOrder: !!req.actOrder,
    damp: req.damp ?? 0.01,
    imatrix: !!req.imatrix,
    fallback: req.fallback,
    denseDtype: req.denseDtype,
    calibration: cal ? { name: cal.source.name, sha256: cal.source.sha256, samples: cal.n, seqlen: cal.seqLen, seed: cal.seed } : null,
    plan: sha256Json(plan.entries),
    model: await hashModelFiles(req.modelDir),
  };
}

export class ResumeSession {
  private journaled: number;

  private constructor(
    readonly partialDir: string,
    private readonly fingerprint: RequestFingerprint,
    private readonly blocks: number,
    private readonly journal: ResumeJournal<LayerReport, AwqReport> | null,
    private readonly onJournaled?: (done: number, total: number) => void,
  ) {
    this.journaled = journal?.blocks.done ?? 0;
  }

  /**
   * Check the partial output against the request before anything is written: without `resume` an
   * existing one is refused (unless overwrite: the writer discards it); with `resume` its journal must
   * match the fingerprint field for field. A partial folder without a journal (killed before its first
   * block was journaled) is started over.
   */
  static async open(o: {
    outDir: string;
    resume: boolean;
    overwrite: boolean;
    blocks: number;
    fingerprint: RequestFingerprint;
    onJournaled?: (done: number, total: number) => void;
  }): Promise<ResumeSession> {
    const dir = partialDirFor(o.outDir);
    const exists = (await fsp.lstat(dir).catch(() => undefined)) !== undefined;
    if (exists) await checkNotBusy(dir);
    if (!o.resume) {
      if (exists && !o.overwrite) throw partialExists(o.outDir);
      return new ResumeSession(dir, o.fingerprint, o.blocks, null, o.onJournaled);
    }
    if (!exists) throw nothingToResume(o.outDir);
    const journal = (await readJournal(dir)) as ResumeJournal<LayerReport, AwqReport> | null;
    if (!journal) {
      await fsp.rm(dir, { recursive: true, force: true }); // no finished block: nothing to keep
      return new ResumeSession(dir, o.fingerprint, o.blocks, null, o.onJournaled);
    }
    const m = fingerprintMismatch(journal.fingerprint, o.fingerprint);
    if (m) {
      throw new UsageError(
        'E_RESUME_MISMATCH',
        `cannot resume ${dir}: the interrupted run had ${m.label} ${m.saved}, this run has ${m.now}`,
        `rerun with the interrupted run's options (${m.label} ${m.saved}), or pass --overwrite instead of --resume to discard the partial output and start over`,
      );
    }
    if (journal.blocks.total !== o.blocks) throw new UsageError('E_RESUME_MISMATCH', `cannot resume ${dir}: it has ${journal.blocks.total} blocks, the model ${o.blocks}`, 'pass --overwrite to start over');
    await removeStaleActivations(dir, journal.activations?.file ?? null);
    return new ResumeSession(dir, o.fingerprint, o.blocks, journal, o.onJournaled);
  }

  /** For the checkpoint writer: a new partial output, or the journaled point to continue from. */
  get partialOptions(): PartialFileOptions {
    return this.journal ? { resumeFrom: { headerBytes: this.journal.data.headerBytes, dataBytes: this.journal.data.dataBytes, sha256: this.journal.data.sha256 } } : {};
  }

  /** First block to quantize (the journaled ones are skipped). */
  get startBlock(): number {
    return this.journal?.blocks.done ?? 0;
  }

  /** Blocks finished and journaled so far (earlier runs included). */
  get blocksDone(): number {
    return this.journaled;
  }

  /**
   * Call once the checkpoint writer has opened the partial folder: takes the lock and returns the journaled
   * state (activations entering startBlock, reports so far), or null for a fresh run.
   */
  async begin(): Promise<RestoredState | null> {
    await fsp.writeFile(path.join(this.partialDir, LOCK_FILE), `${JSON.stringify({ pid: process.pid })}\n`);
    if (!this.journal) return null;
    const acts = this.journal.activations ? await loadActivations(this.partialDir, this.journal.activations) : null;
    return { acts, layers: this.journal.layers, awq: this.journal.awq };
  }

  /**
   * Block `block` is written and (if calibrated) its activations propagated: flush the data file, save
   * the activations entering the next block, replace the journal, delete the previous activations.
   */
  async blockDone(block: number, sink: CheckpointSink, acts: CalibActivations | null, layers: readonly LayerReport[], awq: readonly AwqReport[]): Promise<void> {
    const data = await sink.checkpoint();
    const activations = acts ? await saveActivations(this.partialDir, block + 1, acts) : null;
    await writeJournal(this.partialDir, {
      kind: JOURNAL_KIND,
      version: JOURNAL_VERSION,
      fingerprint: this.fingerprint,
      blocks: { done: block + 1, total: this.blocks },
      data: { file: MODEL_FILE, ...data },
      activations,
      layers: [...layers],
      awq: [...awq],
    });
    await removeStaleActivations(this.partialDir, activations?.file ?? null);
    this.journaled = block + 1;
    this.onJournaled?.(block + 1, this.blocks);
  }
}
