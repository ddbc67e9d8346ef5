/** writeReport: collect the runs of a folder, render the HTML page, write it atomically. */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';
import { UsageError } from '../core/errors.js';
import { edgeqPackageVersion } from '../formats/edgeq/export-writer.js';
import { collectRuns, type RunData } from './collect-runs.js';
import { missingNotes, renderReportHtml } from './report-html.js';
import { runBitsPerWeight, runSizeBytes } from './report-charts.js';

/** The report's default file name, inside RUN_DIR. */
export const REPORT_FILE = 'edgeq-report.html';

export interface ReportRunSummary {
  id: string;
  dir: string;
  checkpoint: boolean;
  evaluated: boolean;
  method?: string;
  bits?: number;
  groupSize?: number;
  sizeBytes?: number;
  bitsPerWeight?: number;
  ppl?: number;
  deltaPpl?: number;
  meanKl?: number;
  prefillTokPerSec?: number;
  decodeTokPerSec?: number;
  peer?: { name: string; prefillTokPerSec?: number; decodeTokPerSec?: number };
  /** What the run lacks (also listed in the page's "Missing data" section). */
  missing: string[];
}

export interface WriteReportResult {
  /** Absolute path of the written HTML file. */
  file: string;
  runs: ReportRunSummary[];
  /** Folders skipped as not edgeq checkpoints (e.g. the baseline). */
  skipped: string[];
}

export interface WriteReportOptions {
  /** The page's "generated" time (default: now). */
  now?: Date;
}

function summarize(r: RunData): ReportRunSummary {
  const p = r.checkpoint?.provenance;
  const s: ReportRunSummary = {
    id: r.id,
    dir: r.dir,
    checkpoint: r.checkpoint !== null,
    evaluated: r.eval !== null,
    method: p?.method,
    bits: typeof p?.bits === 'number' ? p.bits : undefined,
    groupSize: typeof p?.groupSize === 'number' ? p.groupSize : undefined,
    sizeBytes: runSizeBytes(r),
    bitsPerWeight: runBitsPerWeight(r),
    ppl: r.eval?.ppl,
    deltaPpl: r.eval?.deltaPpl,
    meanKl: r.eval?.meanKl,
    prefillTokPerSec: r.eval?.prefillTokPerSec,
    decodeTokPerSec: r.eval?.decodeTokPerSec,
    peer: r.eval?.peer,
    missing: missingNotes(r),
  };
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as unknown as ReportRunSummary;
}

/**
 * Write the HTML report of every run in `runDir` to `outFile` (default `<runDir>/edgeq-report.html`;
 * parent folders are created). Throws UsageError when the folder has nothing to report.
 */
export async function writeReport(runDir: string, outFile?: string, opts: WriteReportOptions = {}): Promise<WriteReportResult> {
  const collected = await collectRuns(runDir);
  const file = path.resolve(outFile ?? path.join(runDir, REPORT_FILE));
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
    throw new UsageError('E_REPORT_OUT', `${outFile ?? file} is a folder`, `give a file name, e.g. -o ${path.join(outFile ?? file, REPORT_FILE)}`);
  }
  const html = renderReportHtml(collected, { generatedAt: opts.now ?? new Date(), edgeqVersion: edgeqPackageVersion() });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, html);
  return { file, runs: collected.runs.map(summarize), skipped: collected.skipped };
}
