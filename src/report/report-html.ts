/**
 * The report page: one self-contained HTML string (inline CSS and SVG, no script, a Content-Security-
 * Policy that forbids every fetch) built from the collected runs. Says what each run lacks instead of
 * failing on partial folders.
 */
import type { CollectedRuns, RunData } from './collect-runs.js';
import { EVAL_RECORD_FILE } from './eval-record.js';
import {
  barChartSvg,
  baselineGroups,
  bitAllocationSpec,
  heatmapChartSvg,
  layerErrorScale,
  layerErrorSpec,
  meanLinearBits,
  qualitySpec,
  runBitsPerWeight,
  runSizeBytes,
  scatterChartSvg,
  throughputSpecs,
  type Omitted,
} from './report-charts.js';
import { REPORT_CSS } from './report-style.js';
import { escapeXml as esc, fmtNum } from './svg/svg-text.js';

export interface ReportPageOptions {
  generatedAt: Date;
  edgeqVersion: string;
}

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const cell = (v: number | undefined, digits = 4, suffix = ''): string =>
  v === undefined || !Number.isFinite(v) ? '<td class="missing">—</td>' : `<td>${esc(fmtNum(v, digits))}${suffix}</td>`;
const textCell = (s: string | undefined, title?: string): string =>
  s === undefined || s === '' ? '<td class="text missing">—</td>' : `<td class="text"${title ? ` title="${esc(title)}"` : ''}>${esc(s)}</td>`;

function figure(svg: string, caption: string): string {
  return `<figure>${svg}<figcaption>${caption}</figcaption></figure>`;
}

function omittedNote(omitted: readonly Omitted[], what: string): string {
  if (omitted.length === 0) return '';
  return `<p class="note">Not in ${esc(what)}: ${omitted.map((o) => `<code>${esc(o.id)}</code> (${esc(o.why)})`).join(', ')}.</p>`;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

function summaryTable(runs: readonly RunData[]): string {
  const head = ['run', 'method', 'bits', 'group', 'size (MB)', 'bits/weight', 'ppl', 'baseline ppl', 'Δppl', 'mean KL', 'top-1 agree', 'prefill tok/s', 'decode tok/s'];
  const rows = runs.map((r) => {
    const p = r.checkpoint?.provenance;
    const e = r.eval;
    const bytes = runSizeBytes(r);
    return `<tr data-run="${esc(r.id)}">${textCell(r.id)}${textCell(str(p?.method))}${cell(typeof p?.bits === 'number' ? p.bits : undefined)}${textCell(
      p?.groupSize === -1 ? 'per channel' : str(p?.groupSize),
    )}${cell(bytes === undefined ? undefined : bytes / 1e6)}${cell(runBitsPerWeight(r))}${cell(e?.ppl)}${cell(e?.baselinePpl)}${cell(e?.deltaPpl)}${cell(e?.meanKl)}${cell(
      e?.top1Agreement === undefined ? undefined : 100 * e.top1Agreement,
      4,
      ' %',
    )}${cell(e?.prefillTokPerSec)}${cell(e?.decodeTokPerSec)}</tr>`;
  });
  return `<table class="summary"><thead><tr>${head.map((h, i) => `<th${i < 2 ? ' class="text"' : ''}>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function provenanceTable(runs: readonly RunData[]): string {
  const head = ['run', 'method', 'bits', 'group', 'grid', 'calibration', 'sha256', 'samples × seqlen', 'seed', 'edgeq', 'made', 'options', 'evaluated'];
  const rows = runs.map((r) => {
    const c = r.checkpoint;
    const p = c?.provenance;
    const cal = p?.calibration;
    const calName = cal === null ? 'none (data-free)' : str(cal?.name);
    const sym = typeof p?.['sym'] === 'boolean' ? (p['sym'] ? 'sym' : 'asym') : undefined;
    const o = p?.['options'];
    const opts = o && typeof o === 'object' ? Object.entries(o as Record<string, unknown>).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ') : undefined;
    const evaluated = r.eval
      ? [r.eval.date, r.eval.ctx !== undefined ? `ctx ${r.eval.ctx}` : undefined, r.eval.windows !== undefined ? `${r.eval.windows} windows` : undefined]
          .filter(Boolean)
          .join(' · ')
      : undefined;
    return `<tr data-run="${esc(r.id)}">${textCell(r.id, r.dir)}${textCell(str(p?.method))}${cell(typeof p?.bits === 'number' ? p.bits : undefined)}${textCell(
      p?.groupSize === -1 ? 'per channel' : str(p?.groupSize),
    )}${textCell(sym)}${textCell(calName)}${textCell(cal?.sha256 ? `${cal.sha256.slice(0, 12)}…` : undefined, cal?.sha256)}${textCell(
      cal ? `${cal.samples} × ${cal.seqlen}` : undefined,
    )}${textCell(cal ? str(cal.seed) : undefined)}${textCell(str(p?.edgeqVersion))}${textCell(c ? `${c.date}${c.dateSource === 'file time' ? ' (file time)' : ''}` : undefined)}${textCell(
      opts,
    )}${textCell(evaluated, r.eval?.baselineModel ? `baseline ${r.eval.baselineModel}` : undefined)}</tr>`;
  });
  return `<table class="provenance"><thead><tr>${head.map((h) => `<th class="text">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** What each run lacks, with the command that would fill it in. */
export function missingNotes(run: RunData): string[] {
  const notes: string[] = [];
  if (run.checkpointError) notes.push(`checkpoint unreadable: ${run.checkpointError}`);
  else if (!run.checkpoint) notes.push('not an edgeq checkpoint: no per-layer error, bit allocation or provenance');
  else {
    if (!run.checkpoint.provenance) notes.push('no edgeq.provenance in the checkpoint metadata');
    else if (!run.checkpoint.provenance.layerErrors) notes.push('no layerErrors in the provenance: no per-layer error chart');
  }
  if (run.evalError) notes.push(`eval record unreadable: ${run.evalError}`);
  else if (!run.eval) notes.push(`no ${EVAL_RECORD_FILE}: run 'edgeq eval --model ${run.dir} --baseline <original model>'`);
  else {
    if (run.eval.deltaPpl === undefined && run.eval.meanKl === undefined) notes.push('evaluated without --baseline: no Δppl or KL, not on the Pareto chart');
    if (run.eval.prefillTokPerSec === undefined && run.eval.decodeTokPerSec === undefined) notes.push('no throughput (evaluated with --no-speed)');
  }
  return notes;
}

export function renderReportHtml(collected: CollectedRuns, opts: ReportPageOptions): string {
  const { runs } = collected;
  const parts: string[] = [];
  const withEval = runs.filter((r) => r.eval).length;
  parts.push(
    `<header><h1>edgeq report</h1><p><code>${esc(collected.runDir)}</code> · ${runs.length} run${runs.length === 1 ? '' : 's'} (${withEval} evaluated) · generated ${esc(
      opts.generatedAt.toISOString(),
    )} by edgeq ${esc(opts.edgeqVersion)}</p>`,
    '<nav><a href="#summary">Summary</a><a href="#pareto">Size vs quality</a><a href="#throughput">Throughput</a><a href="#layer-error">Per-layer error</a><a href="#bits">Bit allocation</a><a href="#provenance">Provenance</a><a href="#missing">Missing data</a></nav></header><main>',
  );
  parts.push(`<section id="summary"><h2>Summary</h2>${summaryTable(runs)}</section>`);

  parts.push('<section id="pareto"><h2>Size vs quality</h2>');
  const groups = baselineGroups(runs);
  const charts: string[] = [];
  const cap = 'Lower-left is better. Orange points are on the Pareto front (no other run is both smaller and better); the dashed green line is the baseline.';
  for (const g of groups) {
    const dppl = qualitySpec(g.runs, 'deltaPpl', g.baseline);
    const kl = qualitySpec(g.runs, 'meanKl', g.baseline);
    if (dppl.spec.points.length) charts.push(figure(scatterChartSvg(dppl.spec), `${cap} Δppl = ppl − baseline ppl on the same windows (each run's ctx and windows: see Provenance).`));
    if (kl.spec.points.length) charts.push(figure(scatterChartSvg(kl.spec), `${cap} Mean KL divergence of the next-token distributions.`));
  }
  if (charts.length === 0) {
    parts.push(`<p class="note">No run has a baseline comparison: evaluate with <code>edgeq eval --model RUN --baseline ORIGINAL</code> to get Δppl and KL.</p>`);
  } else {
    if (groups.length > 1) parts.push(`<p class="note">The runs were compared with ${groups.length} different baselines: one chart per baseline.</p>`);
    parts.push(`<div class="charts">${charts.join('')}</div>`);
  }
  parts.push(omittedNote(qualitySpec(runs, 'deltaPpl').omitted, 'the Δppl chart'));
  parts.push('</section>');

  parts.push('<section id="throughput"><h2>Throughput</h2>');
  const tp = throughputSpecs(runs);
  if (tp.specs[0].categories.length === 0) parts.push('<p class="note">No run has throughput figures (eval with speed on, the default).</p>');
  else {
    const peerNote = tp.peerName
      ? `The ${esc(tp.peerName)} bars are the peer's figures recorded with the run (<code>peer</code> in ${EVAL_RECORD_FILE}).`
      : `No run records a peer (llama.cpp) figure: only edgeq's core is shown.`;
    const setups = [
      ...new Set(
        runs
          .filter((r) => r.eval?.promptTokens !== undefined || r.eval?.genTokens !== undefined)
          .map((r) => `pp${r.eval!.promptTokens ?? '?'}/tg${r.eval!.genTokens ?? '?'}${r.eval!.threads !== undefined ? `, ${r.eval!.threads} thread${r.eval!.threads === 1 ? '' : 's'}` : ''}`),
      ),
    ];
    const setup = setups.length ? ` (${setups.map(esc).join('; ')})` : '';
    parts.push(`<div class="charts">${tp.specs.map((s) => figure(barChartSvg(s), `edgeq's WebAssembly core${setup}. ${peerNote}`)).join('')}</div>`);
  }
  parts.push(omittedNote(tp.omitted, 'the throughput charts'), '</section>');

  parts.push('<section id="layer-error"><h2>Per-layer quantization error</h2>');
  const scale = layerErrorScale(runs);
  const errCharts: string[] = [];
  const errOmitted: Omitted[] = [];
  for (const r of runs) {
    const spec = layerErrorSpec(r, scale);
    if (spec) {
      const sorted = [...spec.cells].sort((a, b) => a.value - b.value);
      const lo = sorted[0];
      const hi = sorted[sorted.length - 1];
      const range = `Lowest ${esc(lo.row)} ${esc(lo.col)} (${esc(fmtNum(lo.value, 3))}), highest ${esc(hi.row)} ${esc(hi.col)} (${esc(fmtNum(hi.value, 3))}).`;
      errCharts.push(
        figure(
          heatmapChartSvg(spec),
          `<code>${esc(r.id)}</code>: the quantizer's error per linear (provenance <code>layerErrors</code>). ${range} One colour scale for all runs${scale.log ? ' (logarithmic: the errors span more than a decade)' : ''}.`,
        ),
      );
    }
    else errOmitted.push({ id: r.id, why: r.checkpoint ? 'no layerErrors in its provenance' : 'not an edgeq checkpoint' });
  }
  parts.push(errCharts.length ? `<div class="charts">${errCharts.join('')}</div>` : '<p class="note">No run has per-layer errors.</p>', omittedNote(errOmitted, 'this section'), '</section>');

  parts.push('<section id="bits"><h2>Bit allocation</h2>');
  const bitCharts: string[] = [];
  const bitOmitted: Omitted[] = [];
  for (const r of runs) {
    const spec = bitAllocationSpec(r);
    const mean = meanLinearBits(r);
    if (spec)
      bitCharts.push(
        figure(
          heatmapChartSvg(spec),
          `<code>${esc(r.id)}</code>: from <code>edgeq.qtypes</code>. Mean code bits over the linears ${esc(fmtNum(mean ?? NaN, 4))}; whole checkpoint ${esc(fmtNum(runBitsPerWeight(r) ?? NaN, 4))} bits/weight (scales, zeros and dense tensors included).`,
        ),
      );
    else bitOmitted.push({ id: r.id, why: r.checkpoint ? 'no quantized tensors' : 'not an edgeq checkpoint' });
  }
  parts.push(bitCharts.length ? `<div class="charts">${bitCharts.join('')}</div>` : '<p class="note">No edgeq checkpoint in the folder.</p>', omittedNote(bitOmitted, 'this section'), '</section>');

  parts.push(`<section id="provenance"><h2>Provenance</h2>${provenanceTable(runs)}</section>`);

  parts.push('<section id="missing"><h2>Missing data</h2>');
  const missing = runs.map((r) => ({ r, notes: missingNotes(r) })).filter((m) => m.notes.length);
  if (missing.length === 0) parts.push('<p class="note">Every run has a checkpoint, an eval record with a baseline comparison and throughput.</p>');
  else parts.push(`<ul>${missing.map(({ r, notes }) => `<li class="note"><code>${esc(r.id)}</code>: ${notes.map(esc).join('; ')}</li>`).join('')}</ul>`);
  if (collected.skipped.length) parts.push(`<p class="note">Skipped (models that are not edgeq checkpoints): ${collected.skipped.map((s) => `<code>${esc(s)}</code>`).join(', ')}.</p>`);
  parts.push('</section></main>');

  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${CSP}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<link rel="icon" href="data:,">',
    `<title>edgeq report · ${esc(collected.runDir)}</title>`,
    `<style>${REPORT_CSS}</style></head><body>`,
    ...parts,
    '</body></html>',
    '',
  ].join('\n');
}
