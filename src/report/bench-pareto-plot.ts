/**
 * A multi-series Pareto plot as one standalone SVG file (pure: data → string, no dependencies), written by
 * `npm run bench:ladder` (scripts/bench-ladder.mjs): side-by-side panels sharing the x axis (e.g. bits per
 * weight), each with its own y (e.g. Δppl, mean KL; linear or log10), one marker per point, coloured and
 * shaped by series, and the Pareto front (minimise x and y, src/report/pareto.ts) over all series joined by
 * a dashed line with its points ringed.
 *
 * Every marker is one element with class "pt" and data-series / data-x / data-y / data-front; on a log axis
 * a value ≤ 0 cannot be placed and is drawn on the axis floor with data-clamped="true".
 */
import { paretoFront } from './pareto.js';
import { niceDomain } from './svg/scale.js';
import { attrs, escapeXml, fmtNum, px } from './svg/svg-text.js';

export type MarkerShape = 'circle' | 'square' | 'diamond' | 'triangle';

export interface PlotSeries {
  id: string;
  label: string;
  color: string;
  shape?: MarkerShape;
}

export interface PlotPoint {
  series: string;
  label: string;
  x: number;
  y: number;
}

export interface PlotPanel {
  id: string;
  title: string;
  yLabel: string;
  /** log10 y axis (decade ticks). */
  yLog?: boolean;
  points: readonly PlotPoint[];
}

export interface ParetoPlotSpec {
  title: string;
  xLabel: string;
  /** log x axis (ticks 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k): spreads 2–4 bits apart from 8–16. */
  xLog?: boolean;
  series: readonly PlotSeries[];
  panels: readonly PlotPanel[];
  panelWidth?: number;
  panelHeight?: number;
}

export interface Axis {
  domain: [number, number];
  ticks: number[];
  log: boolean;
  /** Value → pixel. */
  map: (v: number) => number;
}

export interface PanelGeometry {
  left: number;
  top: number;
  right: number;
  bottom: number;
  x: Axis;
  y: Axis;
  /** Per point: on the Pareto front of this panel (all series together). */
  front: boolean[];
}

const MARGIN = { left: 70, right: 20, top: 34, bottom: 48 };
const LEGEND_H = 40;

/** A log10 domain covering the positive values in [min, max] out to whole decades, ticks at each decade. */
export function logDomain(min: number, max: number): { domain: [number, number]; ticks: number[] } {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) throw new RangeError(`logDomain: needs positive finite bounds, got ${min}, ${max}`);
  if (min > max) [min, max] = [max, min];
  let lo = Math.floor(Math.log10(min) + 1e-12);
  let hi = Math.ceil(Math.log10(max) - 1e-12);
  if (hi === lo) hi = lo + 1;
  const step = Math.max(1, Math.ceil((hi - lo) / 8));
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e += step) ticks.push(Number((10 ** e).toPrecision(12)));
  return { domain: [ticks[0]!, ticks[ticks.length - 1]!], ticks };
}

const X_LOG_MANTISSAS = [1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8];

/** A log domain padded 10 % beyond [min, max] (positive), ticks at 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k inside it. */
export function logDomainFine(min: number, max: number): { domain: [number, number]; ticks: number[] } {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) throw new RangeError(`logDomainFine: needs positive finite bounds, got ${min}, ${max}`);
  if (min > max) [min, max] = [max, min];
  const domain: [number, number] = [Number((min / 1.1).toPrecision(6)), Number((max * 1.1).toPrecision(6))];
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(domain[0])); e <= Math.ceil(Math.log10(domain[1])); e++) {
    for (const m of X_LOG_MANTISSAS) {
      const t = Number((m * 10 ** e).toPrecision(12));
      if (t >= domain[0] && t <= domain[1]) ticks.push(t);
    }
  }
  return { domain, ticks };
}

function axis(values: number[], log: boolean | 'fine', r0: number, r1: number): Axis {
  if (log) {
    const pos = values.filter((v) => v > 0 && Number.isFinite(v));
    const dom = log === 'fine' ? logDomainFine : logDomain;
    const { domain, ticks } = pos.length ? dom(Math.min(...pos), Math.max(...pos)) : { domain: [0.1, 1] as [number, number], ticks: [0.1, 1] };
    const [a, b] = [Math.log10(domain[0]), Math.log10(domain[1])];
    const map = (v: number): number => r0 + ((Math.log10(v > 0 ? Math.max(v, domain[0]) : domain[0]) - a) / (b - a)) * (r1 - r0);
    return { domain, ticks, log: true, map };
  }
  const fin = values.filter(Number.isFinite);
  const { domain, ticks } = niceDomain(fin.length ? Math.min(...fin) : 0, fin.length ? Math.max(...fin) : 1);
  const map = (v: number): number => (domain[1] === domain[0] ? (r0 + r1) / 2 : r0 + ((v - domain[0]) / (domain[1] - domain[0])) * (r1 - r0));
  return { domain, ticks, log, map };
}

/** Where panel `index` sits and how it maps values; the x domain is shared by all panels of the spec. */
export function panelGeometry(spec: ParetoPlotSpec, index: number): PanelGeometry {
  const w = spec.panelWidth ?? 520;
  const h = spec.panelHeight ?? 400;
  const panel = spec.panels[index]!;
  const left = index * w + MARGIN.left;
  const right = (index + 1) * w - MARGIN.right;
  const top = LEGEND_H + MARGIN.top;
  const bottom = LEGEND_H + h - MARGIN.bottom;
  const allX = spec.panels.flatMap((p) => p.points.map((q) => q.x));
  return {
    left,
    top,
    right,
    bottom,
    x: axis(allX, spec.xLog ? 'fine' : false, left, right),
    y: axis(panel.points.map((q) => q.y), !!panel.yLog, bottom, top),
    front: paretoFront(panel.points),
  };
}

function marker(shape: MarkerShape, cx: number, cy: number, r: number, a: Record<string, string | number | undefined>, title: string): string {
  const t = `<title>${escapeXml(title)}</title>`;
  if (shape === 'square') return `<rect ${attrs({ ...a, x: px(cx - r), y: px(cy - r), width: px(2 * r), height: px(2 * r) })}>${t}</rect>`;
  if (shape === 'diamond') {
    const d = r * 1.3;
    return `<path ${attrs({ ...a, d: `M${px(cx)} ${px(cy - d)}L${px(cx + d)} ${px(cy)}L${px(cx)} ${px(cy + d)}L${px(cx - d)} ${px(cy)}Z` })}>${t}</path>`;
  }
  if (shape === 'triangle') {
    const d = r * 1.3;
    return `<path ${attrs({ ...a, d: `M${px(cx)} ${px(cy - d)}L${px(cx + d)} ${px(cy + d * 0.8)}L${px(cx - d)} ${px(cy + d * 0.8)}Z` })}>${t}</path>`;
  }
  return `<circle ${attrs({ ...a, cx: px(cx), cy: px(cy), r })}>${t}</circle>`;
}

function panelSvg(spec: ParetoPlotSpec, index: number): string {
  const panel = spec.panels[index]!;
  const g = panelGeometry(spec, index);
  const series = new Map(spec.series.map((s) => [s.id, s]));
  const out: string[] = [`<g class="panel" data-panel="${escapeXml(panel.id)}">`];
  out.push(`<text class="panel-title" x="${px((g.left + g.right) / 2)}" y="${px(g.top - 12)}" text-anchor="middle">${escapeXml(panel.title)}</text>`);
  out.push(`<g class="axis x-axis" data-min="${g.x.domain[0]}" data-max="${g.x.domain[1]}" data-scale="${g.x.log ? 'log' : 'linear'}">`);
  for (const t of g.x.ticks) {
    const x = px(g.x.map(t));
    out.push(`<line class="grid" x1="${x}" x2="${x}" y1="${px(g.top)}" y2="${px(g.bottom)}"/><text x="${x}" y="${px(g.bottom + 16)}" text-anchor="middle">${escapeXml(fmtNum(t, 4))}</text>`);
  }
  out.push(`<line class="axis-line" x1="${px(g.left)}" x2="${px(g.right)}" y1="${px(g.bottom)}" y2="${px(g.bottom)}"/>`);
  out.push(`<text class="axis-label" x="${px((g.left + g.right) / 2)}" y="${px(g.bottom + 36)}" text-anchor="middle">${escapeXml(spec.xLabel)}</text></g>`);
  out.push(`<g class="axis y-axis" data-min="${g.y.domain[0]}" data-max="${g.y.domain[1]}" data-scale="${g.y.log ? 'log' : 'linear'}">`);
  for (const t of g.y.ticks) {
    const y = px(g.y.map(t));
    out.push(`<line class="grid" x1="${px(g.left)}" x2="${px(g.right)}" y1="${y}" y2="${y}"/><text x="${px(g.left - 6)}" y="${y}" dy="0.32em" text-anchor="end">${escapeXml(fmtNum(t, 3))}</text>`);
  }
  out.push(`<line class="axis-line" x1="${px(g.left)}" x2="${px(g.left)}" y1="${px(g.top)}" y2="${px(g.bottom)}"/>`);
  const ymid = px((g.top + g.bottom) / 2);
  out.push(`<text class="axis-label" transform="translate(${px(g.left - 52)} ${ymid}) rotate(-90)" text-anchor="middle">${escapeXml(panel.yLabel)}</text></g>`);
  const front = panel.points
    .map((p, i) => ({ p, i }))
    .filter(({ i }) => g.front[i])
    .sort((a, b) => a.p.x - b.p.x || a.p.y - b.p.y);
  if (front.length > 1) out.push(`<polyline class="front-line" points="${front.map(({ p }) => `${px(g.x.map(p.x))},${px(g.y.map(p.y))}`).join(' ')}"/>`);
  panel.points.forEach((p, i) => {
    const s = series.get(p.series);
    const cx = g.x.map(p.x);
    const cy = g.y.map(p.y);
    const clamped = g.y.log && !(p.y > 0);
    const onFront = g.front[i]!;
    if (onFront) out.push(`<circle class="front-ring" cx="${px(cx)}" cy="${px(cy)}" r="10"/>`);
    const title = `${s?.label ?? p.series} ${p.label}: ${spec.xLabel} ${fmtNum(p.x, 4)}, ${panel.yLabel} ${fmtNum(p.y, 4)}${clamped ? ' (≤ 0: drawn on the axis floor)' : ''}${onFront ? ' (Pareto front)' : ''}`;
    out.push(
      marker(
        s?.shape ?? 'circle',
        cx,
        cy,
        5,
        { class: `pt${onFront ? ' on-front' : ''}`, fill: s?.color ?? '#777', 'data-series': p.series, 'data-label': p.label, 'data-x': p.x, 'data-y': p.y, 'data-front': String(onFront), 'data-clamped': clamped ? 'true' : undefined },
        title,
      ),
    );
  });
  if (panel.points.some((p) => g.y.log && !(p.y > 0))) {
    out.push(`<text class="note" x="${px(g.left + 6)}" y="${px(g.top + 12)}">markers on the bottom axis: ${escapeXml(panel.yLabel)} ≤ 0</text>`);
  }
  out.push('</g>');
  return out.join('\n');
}

/** The whole plot as a standalone SVG document. */
export function paretoPlotSvg(spec: ParetoPlotSpec): string {
  const w = (spec.panelWidth ?? 520) * Math.max(1, spec.panels.length);
  const h = LEGEND_H + (spec.panelHeight ?? 400);
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" ${attrs({ viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: 'img', 'aria-label': spec.title })}>`,
    `<title>${escapeXml(spec.title)}</title>`,
    '<style>text{font:12px sans-serif;fill:#222}.panel-title{font-weight:bold;font-size:13px}.note{font-size:11px;fill:#666}.grid{stroke:#e5e5e5}.axis-line{stroke:#444}' +
      '.pt{stroke:#222;stroke-width:0.8}.front-ring{fill:none;stroke:#111;stroke-width:1.2}.front-line{fill:none;stroke:#111;stroke-width:1.2;stroke-dasharray:5 4}</style>',
    `<rect x="0" y="0" width="${w}" height="${h}" fill="#fff"/>`,
    `<text class="panel-title" x="10" y="16">${escapeXml(spec.title)}</text>`,
  ];
  // legend
  let lx = 10;
  const ly = 30;
  out.push('<g class="legend">');
  for (const s of spec.series) {
    out.push(`<g class="legend-item" data-series="${escapeXml(s.id)}">${marker(s.shape ?? 'circle', lx + 5, ly, 5, { class: 'legend-marker', fill: s.color, stroke: '#222' }, s.label)}<text x="${lx + 14}" y="${ly}" dy="0.32em">${escapeXml(s.label)}</text></g>`);
    lx += 34 + 7 * s.label.length;
  }
  out.push(`<line class="front-line" x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}"/><text x="${lx + 30}" y="${ly}" dy="0.32em">Pareto front (ringed)</text></g>`);
  spec.panels.forEach((_, i) => out.push(panelSvg(spec, i)));
  out.push('</svg>', '');
  return out.join('\n');
}
