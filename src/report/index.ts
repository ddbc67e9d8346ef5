/**
 * `edgeq report`: one self-contained HTML file (inline CSS and SVG, no script, no network) about the
 * runs in a folder — size vs Δppl / KL Pareto, throughput next to the peer, per-layer error and bit
 * allocation, provenance. Input layout: see README.md in this folder.
 *
 *   import { writeReport } from '../report/index.js';
 *   const { file, runs } = await writeReport('out/');              // → out/edgeq-report.html
 *   await writeReport('out/', 'out/brown.html', { now: new Date(0) });
 */
export { writeReport, REPORT_FILE, type ReportRunSummary, type WriteReportOptions, type WriteReportResult } from './write-report.js';
export { collectRuns, type CheckpointInfo, type CollectedRuns, type RunData } from './collect-runs.js';
export { EVAL_RECORD_FILE, parseEvalRecord, type EvalRecord, type PeerThroughput } from './eval-record.js';
export { renderReportHtml } from './report-html.js';
