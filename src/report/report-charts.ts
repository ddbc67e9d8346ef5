/**
 * The report's charts built from the collected runs (pure: RunData → chart specs → SVG): the size vs
 * quality Pareto, throughput next to the peer, and per checkpoint the per-layer error and bit
 * allocation heat maps (block × linear role).
 */
import type { RunData } from './collect-runs.js';
import { barChartSvg, type BarChartSpec } from './charts/bar-chart.js';
import { heatmapChartSvg, type HeatCell, type HeatmapSpec } from './charts/heatmap-chart.js';
import { scatterChartSvg, type ScatterPoint, type ScatterSpec } from './charts/scatter-chart.js';
import { blockLabel, parseLinearName, sortRoles } from './layer-names.js';
import { bitsColor, SERIES_COLORS, sequentialColor } from './svg/color.js';
import { fmtNum } from './svg/svg-text.js';

export interface Omitted {
  id: string;
  why: string;
}

export type QualityMetric = 'deltaPpl' | 'meanKl';

const METRIC_LABEL: Record<QualityMetric, string> = { deltaPpl: 'Δppl vs baseline', meanKl: 'mean KL vs baseline (nats/token)' };

/** Bits per weight of a run: the eval record's (whole model), else the checkpoint's stored bytes. */
export function runBitsPerWeight(run: RunData): number | undefined {
  return run.eval?.bitsPerWeight ?? run.checkpoint?.bitsPerWeight;
}

export function runSizeBytes(run: RunData): number | undefined {
  return run.eval?.sizeBytes ?? run.checkpoint?.storedBytes;
}

/**
 * Runs grouped by the baseline they were compared with (Δppl against different models do not share an
 * axis). One group (baseline null) when at most one baseline occurs; runs without one go with it.
 */
export function baselineGroups(runs: readonly RunData[]): { baseline: string | null; runs: RunData[] }[] {
  const baselines = [...new Set(runs.map((r) => r.eval?.baselineModel).filter((b): b is string => b !== undefined))];
  if (baselines.length <= 1) return [{ baseline: null, runs: [...runs] }];
  return baselines.map((b) => ({ baseline: b, runs: runs.filter((r) => r.eval?.baselineModel === b) }));
}

/** Size vs quality scatter: one point per run that has both a size and the metric. */
export function qualitySpec(runs: readonly RunData[], metric: QualityMetric, baseline: string | null = null): { spec: ScatterSpec; omitted: Omitted[] } {
  const points: ScatterPoint[] = [];
  const omitted: Omitted[] = [];
  for (const run of runs) {
    const y = run.eval?.[metric];
    const x = runBitsPerWeight(run);
    if (y === undefined) {
      omitted.push({ id: run.id, why: run.eval ? `no ${metric} (evaluated without --baseline)` : 'no eval record' });
      continue;
    }
    if (x === undefined) {
      omitted.push({ id: run.id, why: 'no size' });
      continue;
    }
    const bytes = runSizeBytes(run);
    points.push({
      id: run.id,
      label: run.id,
      x,
      y,
      title: `${run.id}: ${fmtNum(x, 4)} bits/weight${bytes !== undefined ? ` (${fmtNum(bytes / 1e6, 4)} MB)` : ''}, ${METRIC_LABEL[metric]} ${fmtNum(y, 4)}`,
    });
  }
  return {
    spec: {
      chartId: `pareto-${metric}${baseline === null ? '' : `-${baseline.split(/[\\/]/).pop()}`}`,
      title: `Size vs ${METRIC_LABEL[metric]}${baseline === null ? '' : ` (baseline ${baseline})`}: Pareto front highlighted`,
      xLabel: 'bits per weight (whole checkpoint)',
      yLabel: METRIC_LABEL[metric],
      points,
      refY: { value: 0, label: 'baseline' },
    },
    omitted,
  };
}

/** Prefill and decode tok/s per run: edgeq's bar, and the peer's next to it when recorded. */
export function throughputSpecs(runs: readonly RunData[]): { specs: BarChartSpec[]; omitted: Omitted[]; peerName: string | null } {
  const measured = runs.filter((r) => r.eval?.prefillTokPerSec !== undefined || r.eval?.decodeTokPerSec !== undefined || r.eval?.peer);
  const omitted = runs.filter((r) => !measured.includes(r)).map((r) => ({ id: r.id, why: r.eval ? 'no throughput (evaluated with --no-speed)' : 'no eval record' }));
  const peerNames = [...new Set(measured.map((r) => r.eval?.peer?.name).filter((n): n is string => n !== undefined))];
  const peerName = peerNames.length === 0 ? null : peerNames.length === 1 ? peerNames[0] : 'peer';
  const specs = (['prefill', 'decode'] as const).map((phase): BarChartSpec => {
    const key = phase === 'prefill' ? 'prefillTokPerSec' : 'decodeTokPerSec';
    const series = [{ name: 'edgeq', color: SERIES_COLORS[0], values: measured.map((r) => r.eval?.[key] ?? null) }];
    if (peerName) series.push({ name: peerName, color: SERIES_COLORS[1], values: measured.map((r) => r.eval?.peer?.[key] ?? null) });
    return {
      chartId: `throughput-${phase}`,
      title: `${phase === 'prefill' ? 'Prefill' : 'Decode'} throughput (tokens/s, higher is better)`,
      categories: measured.map((r) => r.id),
      series,
      xLabel: `${phase} tokens/s`,
    };
  });
  return { specs, omitted, peerName };
}

export interface ErrorScale {
  color(v: number): string;
  legend: { fill: string; label: string }[];
  log: boolean;
}

/** One colour scale for every run's layer errors (log when they span more than a decade). */
export function layerErrorScale(runs: readonly RunData[]): ErrorScale {
  const values = runs.flatMap((r) => Object.values(r.checkpoint?.provenance?.layerErrors ?? {})).filter((v) => typeof v === 'number' && Number.isFinite(v));
  const max = values.length ? Math.max(...values) : 1;
  const positive = values.filter((v) => v > 0);
  const min = positive.length ? Math.min(...positive) : 0;
  const log = positive.length === values.length && min > 0 && max / min > 10;
  const t = (v: number): number =>
    log ? (Math.log(v) - Math.log(min)) / (Math.log(max) - Math.log(min)) : max > 0 ? Math.max(0, v) / max : 0.5;
  const legend = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = log ? Math.exp(Math.log(min) + f * (Math.log(max) - Math.log(min))) : f * max;
    return { fill: sequentialColor(f), label: fmtNum(v, 3) };
  });
  return { color: (v) => sequentialColor(t(v)), legend, log };
}

function gridOf(names: readonly string[]): { rows: string[]; cols: string[] } {
  const parsed = names.map(parseLinearName);
  const blocks = [...new Set(parsed.map((p) => p.block))].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
  return { rows: blocks.map(blockLabel), cols: sortRoles(parsed.map((p) => p.role)) };
}

/** Per-layer quantization error of one checkpoint (null when its provenance has no layerErrors). */
export function layerErrorSpec(run: RunData, scale: ErrorScale): HeatmapSpec | null {
  const errors = run.checkpoint?.provenance?.layerErrors;
  if (!errors || Object.keys(errors).length === 0) return null;
  const entries = Object.entries(errors).filter(([, v]) => typeof v === 'number' && Number.isFinite(v));
  const { rows, cols } = gridOf(entries.map(([n]) => n));
  const cells: HeatCell[] = entries.map(([name, value]) => {
    const p = parseLinearName(name);
    return { row: blockLabel(p.block), col: p.role, value, fill: scale.color(value), title: `${name}: error ${fmtNum(value, 4)}` };
  });
  return {
    chartId: `layer-error-${run.id}`,
    title: `${run.id}: quantization error per layer`,
    rows,
    cols,
    cells,
    colAxis: 'linear',
    legend: scale.legend,
  };
}

/** Bits (and group size) of every quantized linear of one checkpoint, from edgeq.qtypes. */
export function bitAllocationSpec(run: RunData): HeatmapSpec | null {
  const tensors = run.checkpoint?.tensors;
  if (!tensors || tensors.length === 0) return null;
  const { rows, cols } = gridOf(tensors.map((t) => t.name));
  const cells: HeatCell[] = tensors.map((t) => {
    const p = parseLinearName(t.name);
    const g = t.groupSize === -1 ? 'pc' : String(t.groupSize);
    return {
      row: blockLabel(p.block),
      col: p.role,
      value: t.bits,
      fill: bitsColor(t.bits),
      text: `${t.bits}·${g}`,
      title: `${t.name}: ${t.qtype} · ${t.bits} bits · group ${t.groupSize === -1 ? 'per channel' : t.groupSize} · ${t.sym ? 'sym' : 'asym'}${t.actOrder ? ' · act-order' : ''} · [${t.n}, ${t.k}]`,
    };
  });
  const bitsUsed = [...new Set(tensors.map((t) => t.bits))].sort((a, b) => a - b);
  return {
    chartId: `bits-${run.id}`,
    title: `${run.id}: bits per linear (cell text: bits·group size, pc = per channel)`,
    rows,
    cols,
    cells,
    colAxis: 'linear',
    legend: bitsUsed.map((b) => ({ fill: bitsColor(b), label: `${b}-bit` })),
  };
}

/** Mean bits of the quantized linears weighted by their n·k (the grid's code bits, without scales). */
export function meanLinearBits(run: RunData): number | undefined {
  const t = run.checkpoint?.tensors;
  if (!t || t.length === 0) return undefined;
  const w = t.reduce((a, x) => a + x.n * x.k, 0);
  return t.reduce((a, x) => a + x.bits * x.n * x.k, 0) / w;
}

export { barChartSvg, heatmapChartSvg, scatterChartSvg };
