/**
 * Grouped horizontal bar chart: one band per category (run), one bar per series (edgeq, the peer):
 * data → SVG string (pure). Each bar is `<rect class="bar">` with data-series, data-category and
 * data-value; a missing value draws the text "not measured" instead of a bar.
 */
import { linearScale, niceDomain, type LinearScale } from '../svg/scale.js';
import { attrs, escapeXml, fmtNum, px } from '../svg/svg-text.js';

export interface BarSeries {
  name: string;
  color: string;
  values: readonly (number | null)[];
}

export interface BarChartSpec {
  chartId: string;
  title: string;
  categories: readonly string[];
  series: readonly BarSeries[];
  xLabel: string;
  width?: number;
}

export const BAR_MARGIN = { left: 150, right: 64, top: 28, bottom: 44 };
export const BAR_HEIGHT = 16;
export const BAND_GAP = 12;

export interface BarGeometry {
  width: number;
  height: number;
  x: LinearScale;
  ticks: number[];
  /** y of the top of bar (category c, series s). */
  barTop(c: number, s: number): number;
}

export function barGeometry(spec: BarChartSpec): BarGeometry {
  const width = spec.width ?? 640;
  const values = spec.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const d = niceDomain(0, values.length ? Math.max(...values, 0) || 1 : 1);
  const band = spec.series.length * BAR_HEIGHT + BAND_GAP;
  return {
    width,
    height: BAR_MARGIN.top + spec.categories.length * band + BAR_MARGIN.bottom,
    x: linearScale(d.domain, [BAR_MARGIN.left, width - BAR_MARGIN.right]),
    ticks: d.ticks,
    barTop: (c, s) => BAR_MARGIN.top + c * band + BAND_GAP / 2 + s * BAR_HEIGHT,
  };
}

export function barChartSvg(spec: BarChartSpec): string {
  const g = barGeometry(spec);
  const bottom = g.height - BAR_MARGIN.bottom;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" ${attrs({ class: 'chart bars', 'data-chart': spec.chartId, viewBox: `0 0 ${g.width} ${g.height}`, width: g.width, height: g.height, role: 'img', 'aria-label': spec.title })}>`,
    `<title>${escapeXml(spec.title)}</title>`,
    '<g class="axis x-axis">',
  ];
  for (const t of g.ticks) {
    const x = px(g.x(t));
    out.push(
      `<g class="tick" data-value="${t}"><line class="grid" x1="${x}" x2="${x}" y1="${BAR_MARGIN.top}" y2="${px(bottom)}"/>` +
        `<text x="${x}" y="${px(bottom + 16)}" text-anchor="middle">${escapeXml(fmtNum(t, 4))}</text></g>`,
    );
  }
  out.push(
    `<text class="axis-label" x="${px((BAR_MARGIN.left + g.width - BAR_MARGIN.right) / 2)}" y="${px(g.height - 8)}" text-anchor="middle">${escapeXml(spec.xLabel)}</text></g>`,
  );
  spec.categories.forEach((cat, c) => {
    const mid = g.barTop(c, 0) + (spec.series.length * BAR_HEIGHT) / 2;
    out.push(`<text class="row-label" x="${BAR_MARGIN.left - 8}" y="${px(mid)}" dy="0.32em" text-anchor="end">${escapeXml(cat)}</text>`);
    spec.series.forEach((s, si) => {
      const v = s.values[c];
      const y = g.barTop(c, si);
      if (v === null || v === undefined || !Number.isFinite(v)) {
        out.push(
          `<text class="bar-missing" data-series="${escapeXml(s.name)}" data-category="${escapeXml(cat)}" x="${BAR_MARGIN.left + 4}" y="${px(y + BAR_HEIGHT / 2)}" dy="0.32em">${escapeXml(s.name)}: not measured</text>`,
        );
        return;
      }
      const x0 = g.x(0);
      const w = Math.max(1, g.x(v) - x0);
      out.push(
        `<rect ${attrs({ class: 'bar', 'data-series': s.name, 'data-category': cat, 'data-value': v, x: px(x0), y: px(y), width: px(w), height: BAR_HEIGHT - 2, fill: s.color })}><title>${escapeXml(`${cat} · ${s.name}: ${fmtNum(v, 4)} ${spec.xLabel}`)}</title></rect>`,
        `<text class="bar-value" x="${px(x0 + w + 4)}" y="${px(y + BAR_HEIGHT / 2 - 1)}" dy="0.32em">${escapeXml(fmtNum(v, 4))}</text>`,
      );
    });
  });
  out.push(`<line class="axis-line" x1="${px(g.x(0))}" x2="${px(g.x(0))}" y1="${BAR_MARGIN.top}" y2="${px(bottom)}"/>`);
  spec.series.forEach((s, i) => {
    const x = BAR_MARGIN.left + i * 130;
    out.push(`<g class="legend-item"><rect x="${x}" y="6" width="12" height="12" fill="${escapeXml(s.color)}"/><text x="${x + 16}" y="12" dy="0.32em">${escapeXml(s.name)}</text></g>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
