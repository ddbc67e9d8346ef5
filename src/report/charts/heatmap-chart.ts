/**
 * Heat map of rows × columns (decoder block × linear role): data → SVG string (pure). Each cell is one
 * `<rect class="cell">` with data-row, data-col and data-value, its fill chosen by the caller, an
 * optional short text inside and a tooltip; a legend of swatches below. Row labels name themselves
 * ("block 3"), so only the columns get an axis label.
 */
import { textColorOn } from '../svg/color.js';
import { attrs, escapeXml, px } from '../svg/svg-text.js';

export interface HeatCell {
  row: string;
  col: string;
  value: number;
  fill: string;
  /** Short text drawn in the cell (e.g. the bit width). */
  text?: string;
  title?: string;
}

export interface HeatmapSpec {
  chartId: string;
  title: string;
  rows: readonly string[];
  cols: readonly string[];
  cells: readonly HeatCell[];
  /** Label above the column labels. */
  colAxis: string;
  legend: readonly { fill: string; label: string }[];
  cellWidth?: number;
  cellHeight?: number;
}

export const HEATMAP_MARGIN = { left: 72, top: 40, right: 12 };

export interface HeatmapGeometry {
  width: number;
  height: number;
  cellWidth: number;
  cellHeight: number;
  /** Top-left corner of the cell at (row, col). */
  cellAt(row: string, col: string): { x: number; y: number } | null;
  legendTop: number;
}

export function heatmapGeometry(spec: HeatmapSpec): HeatmapGeometry {
  const cw = spec.cellWidth ?? 46;
  const ch = spec.cellHeight ?? 20;
  const rowIndex = new Map(spec.rows.map((r, i) => [r, i]));
  const colIndex = new Map(spec.cols.map((c, i) => [c, i]));
  const gridBottom = HEATMAP_MARGIN.top + spec.rows.length * ch;
  const legendTop = gridBottom + 14;
  const legendRows = Math.ceil(spec.legend.length / 3);
  return {
    width: Math.max(HEATMAP_MARGIN.left + spec.cols.length * cw + HEATMAP_MARGIN.right, 360),
    height: legendTop + legendRows * 18 + 8,
    cellWidth: cw,
    cellHeight: ch,
    cellAt(row, col) {
      const r = rowIndex.get(row);
      const c = colIndex.get(col);
      if (r === undefined || c === undefined) return null;
      return { x: HEATMAP_MARGIN.left + c * cw, y: HEATMAP_MARGIN.top + r * ch };
    },
    legendTop,
  };
}

export function heatmapChartSvg(spec: HeatmapSpec): string {
  const g = heatmapGeometry(spec);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" ${attrs({ class: 'chart heatmap', 'data-chart': spec.chartId, viewBox: `0 0 ${g.width} ${g.height}`, width: g.width, height: g.height, role: 'img', 'aria-label': spec.title })}>`,
    `<title>${escapeXml(spec.title)}</title>`,
    `<text class="axis-label" x="${HEATMAP_MARGIN.left}" y="12">${escapeXml(spec.colAxis)} →</text>`,
  ];
  spec.cols.forEach((c, i) => {
    out.push(`<text class="col-label" x="${px(HEATMAP_MARGIN.left + (i + 0.5) * g.cellWidth)}" y="${HEATMAP_MARGIN.top - 8}" text-anchor="middle">${escapeXml(c)}</text>`);
  });
  spec.rows.forEach((r, i) => {
    out.push(`<text class="row-label" x="${HEATMAP_MARGIN.left - 6}" y="${px(HEATMAP_MARGIN.top + (i + 0.5) * g.cellHeight)}" dy="0.32em" text-anchor="end">${escapeXml(r)}</text>`);
  });
  out.push(
    `<rect class="grid-bg" x="${HEATMAP_MARGIN.left}" y="${HEATMAP_MARGIN.top}" width="${spec.cols.length * g.cellWidth}" height="${spec.rows.length * g.cellHeight}"/>`,
  );
  for (const cell of spec.cells) {
    const at = g.cellAt(cell.row, cell.col);
    if (!at) continue;
    out.push(
      `<rect ${attrs({ class: 'cell', 'data-row': cell.row, 'data-col': cell.col, 'data-value': cell.value, x: px(at.x), y: px(at.y), width: g.cellWidth - 1, height: g.cellHeight - 1, fill: cell.fill })}><title>${escapeXml(cell.title ?? `${cell.row} ${cell.col}: ${cell.value}`)}</title></rect>`,
    );
    if (cell.text !== undefined) {
      out.push(
        `<text class="cell-text" x="${px(at.x + g.cellWidth / 2 - 0.5)}" y="${px(at.y + g.cellHeight / 2 - 0.5)}" dy="0.32em" text-anchor="middle" style="fill:${textColorOn(cell.fill)}">${escapeXml(cell.text)}</text>`,
      );
    }
  }
  spec.legend.forEach((l, i) => {
    const x = HEATMAP_MARGIN.left + (i % 3) * 110;
    const y = g.legendTop + Math.floor(i / 3) * 18;
    out.push(`<g class="legend-item"><rect x="${x}" y="${y}" width="12" height="12" fill="${escapeXml(l.fill)}"/><text x="${x + 16}" y="${y + 6}" dy="0.32em">${escapeXml(l.label)}</text></g>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
