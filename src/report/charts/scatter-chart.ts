/**
 * Scatter chart with the Pareto front highlighted: data → SVG string (pure). Each point is one
 * `<circle class="pt">` carrying data-run, data-x, data-y and data-front; the front is joined by a
 * polyline in x order; an optional horizontal reference line (e.g. the baseline at Δ = 0).
 */
import { paretoFront } from '../pareto.js';
import { linearScale, niceDomain, type LinearScale } from '../svg/scale.js';
import { attrs, escapeXml, fmtNum, px } from '../svg/svg-text.js';

export interface ScatterPoint {
  id: string;
  label: string;
  x: number;
  y: number;
  /** Tooltip text (SVG <title>). */
  title?: string;
}

export interface ScatterSpec {
  chartId: string;
  title: string;
  xLabel: string;
  yLabel: string;
  points: readonly ScatterPoint[];
  /** A horizontal reference line, also kept inside the y domain. */
  refY?: { value: number; label: string };
  width?: number;
  height?: number;
}

export interface ScatterGeometry {
  width: number;
  height: number;
  plot: { left: number; top: number; right: number; bottom: number };
  x: LinearScale;
  y: LinearScale;
  xTicks: number[];
  yTicks: number[];
  front: boolean[];
}

export const SCATTER_MARGIN = { left: 64, right: 24, top: 28, bottom: 48 };

/** Scales, ticks and front of a scatter spec (what the SVG is drawn from). */
export function scatterGeometry(spec: ScatterSpec): ScatterGeometry {
  const width = spec.width ?? 640;
  const height = spec.height ?? 380;
  const xs = spec.points.map((p) => p.x);
  const ys = spec.points.map((p) => p.y);
  if (spec.refY) ys.push(spec.refY.value);
  const xd = niceDomain(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1);
  const yd = niceDomain(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1);
  const plot = { left: SCATTER_MARGIN.left, top: SCATTER_MARGIN.top, right: width - SCATTER_MARGIN.right, bottom: height - SCATTER_MARGIN.bottom };
  return {
    width,
    height,
    plot,
    x: linearScale(xd.domain, [plot.left, plot.right]),
    y: linearScale(yd.domain, [plot.bottom, plot.top]),
    xTicks: xd.ticks,
    yTicks: yd.ticks,
    front: paretoFront(spec.points),
  };
}

export function scatterChartSvg(spec: ScatterSpec): string {
  const g = scatterGeometry(spec);
  const { plot } = g;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" ${attrs({ class: 'chart scatter', 'data-chart': spec.chartId, viewBox: `0 0 ${g.width} ${g.height}`, width: g.width, height: g.height, role: 'img', 'aria-label': spec.title })}>`,
    `<title>${escapeXml(spec.title)}</title>`,
  );
  // grid and axes
  out.push('<g class="axis x-axis">');
  for (const t of g.xTicks) {
    const x = px(g.x(t));
    out.push(
      `<g class="tick" data-value="${t}"><line class="grid" x1="${x}" x2="${x}" y1="${px(plot.top)}" y2="${px(plot.bottom)}"/>` +
        `<text x="${x}" y="${px(plot.bottom + 16)}" text-anchor="middle">${escapeXml(fmtNum(t, 4))}</text></g>`,
    );
  }
  out.push(`<line class="axis-line" x1="${px(plot.left)}" x2="${px(plot.right)}" y1="${px(plot.bottom)}" y2="${px(plot.bottom)}"/>`);
  out.push(`<text class="axis-label" x="${px((plot.left + plot.right) / 2)}" y="${px(g.height - 8)}" text-anchor="middle">${escapeXml(spec.xLabel)}</text></g>`);
  out.push('<g class="axis y-axis">');
  for (const t of g.yTicks) {
    const y = px(g.y(t));
    out.push(
      `<g class="tick" data-value="${t}"><line class="grid" x1="${px(plot.left)}" x2="${px(plot.right)}" y1="${y}" y2="${y}"/>` +
        `<text x="${px(plot.left - 6)}" y="${y}" dy="0.32em" text-anchor="end">${escapeXml(fmtNum(t, 4))}</text></g>`,
    );
  }
  out.push(`<line class="axis-line" x1="${px(plot.left)}" x2="${px(plot.left)}" y1="${px(plot.top)}" y2="${px(plot.bottom)}"/>`);
  out.push(
    `<text class="axis-label" transform="translate(14 ${px((plot.top + plot.bottom) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text></g>`,
  );
  if (spec.refY) {
    const y = px(g.y(spec.refY.value));
    out.push(
      `<g class="ref"><line x1="${px(plot.left)}" x2="${px(plot.right)}" y1="${y}" y2="${y}"/>` +
        `<text x="${px(plot.left + 4)}" y="${y}" dy="-0.4em">${escapeXml(spec.refY.label)}</text></g>`,
    );
  }
  // the front, in x order
  const front = spec.points
    .map((p, i) => ({ p, i }))
    .filter(({ i }) => g.front[i])
    .sort((a, b) => a.p.x - b.p.x || a.p.y - b.p.y);
  if (front.length > 1) {
    out.push(`<polyline class="front-line" points="${front.map(({ p }) => `${px(g.x(p.x))},${px(g.y(p.y))}`).join(' ')}"/>`);
  }
  spec.points.forEach((p, i) => {
    const cx = px(g.x(p.x));
    const cy = px(g.y(p.y));
    const onFront = g.front[i];
    const title = p.title ?? `${p.label}: ${spec.xLabel} ${fmtNum(p.x, 4)}, ${spec.yLabel} ${fmtNum(p.y, 4)}`;
    out.push(
      `<circle ${attrs({ class: onFront ? 'pt on-front' : 'pt dominated', 'data-run': p.id, 'data-x': p.x, 'data-y': p.y, 'data-front': String(onFront), cx, cy, r: onFront ? 6 : 5 })}><title>${escapeXml(title)}${onFront ? ' (Pareto front)' : ''}</title></circle>`,
      `<text class="pt-label" x="${px(g.x(p.x) + 8)}" y="${px(g.y(p.y) - 8)}">${escapeXml(p.label)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}
