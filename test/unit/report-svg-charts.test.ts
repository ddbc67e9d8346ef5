/**
 * The SVG chart builders are pure (data → SVG string): scales and ticks for known inputs, marks at the
 * coordinates the axes say, one mark per datum, escaping of untrusted labels.
 */
import { describe, expect, it } from 'vitest';
import { BAR_HEIGHT, BAR_MARGIN, barChartSvg, barGeometry } from '../../src/report/charts/bar-chart.js';
import { HEATMAP_MARGIN, heatmapChartSvg, type HeatmapSpec } from '../../src/report/charts/heatmap-chart.js';
import { SCATTER_MARGIN, scatterChartSvg, scatterGeometry, type ScatterSpec } from '../../src/report/charts/scatter-chart.js';
import { linearScale, niceDomain } from '../../src/report/svg/scale.js';
import { escapeXml, fmtNum } from '../../src/report/svg/svg-text.js';

/** Every element `<tag …>` in the SVG with its attributes. */
function elements(svg: string, tag: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const m of svg.matchAll(new RegExp(`<${tag}\\s([^>]*?)/?>`, 'g'))) {
    const a: Record<string, string> = {};
    for (const [, k, v] of m[1].matchAll(/([\w:-]+)="([^"]*)"/g)) a[k] = v;
    out.push(a);
  }
  return out;
}

describe('scales and ticks', () => {
  it('niceDomain extends to 1/2/5 × 10^k steps', () => {
    expect(niceDomain(0.3, 9.7)).toEqual({ domain: [0, 10], ticks: [0, 2, 4, 6, 8, 10], step: 2 });
    expect(niceDomain(7.26, 11.61)).toEqual({ domain: [7, 12], ticks: [7, 8, 9, 10, 11, 12], step: 1 });
    expect(niceDomain(-3.04, 83.1).domain).toEqual([-20, 100]);
    expect(niceDomain(0, 0.6).ticks).toEqual([0, 0.2, 0.4, 0.6]); // no 0.6000000000000001
    expect(niceDomain(5, 5).domain[0]).toBeLessThan(5);
    expect(niceDomain(5, 5).domain[1]).toBeGreaterThan(5);
  });

  it('linearScale maps the domain onto the range (inverted ranges too)', () => {
    const s = linearScale([2, 8], [64, 616]);
    expect([s(2), s(4), s(8)]).toEqual([64, 248, 616]);
    const y = linearScale([0, 0.6], [332, 28]);
    expect(y(0)).toBe(332);
    expect(y(0.6)).toBeCloseTo(28, 10);
    expect(y(0.1)).toBeCloseTo(332 - 304 / 6, 10);
  });

  it('fmtNum and escapeXml', () => {
    expect(fmtNum(1234.5, 4)).toBe('1235');
    expect(fmtNum(0.0029741, 3)).toBe('0.00297');
    expect(fmtNum(1.5e-5, 3)).toBe('1.5e-5');
    expect(fmtNum(NaN)).toBe('—');
    expect(escapeXml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
  });
});

describe('scatterChartSvg (size vs error, Pareto front)', () => {
  const spec: ScatterSpec = {
    chartId: 'p',
    title: 'T',
    xLabel: 'bits per weight',
    yLabel: 'Δppl',
    width: 640,
    height: 380,
    refY: { value: 0, label: 'baseline' },
    points: [
      { id: 'a', label: 'a', x: 2, y: 0.5 },
      { id: 'b', label: 'b', x: 4, y: 0.1 },
      { id: 'c', label: 'c', x: 3, y: 0.6 },
      { id: 'd', label: '<d&>', x: 8, y: 0 },
    ],
  };
  const svg = scatterChartSvg(spec);
  const circles = elements(svg, 'circle');

  it('draws one circle per point, at the coordinates of the axes', () => {
    expect(circles.map((c) => c['data-run'])).toEqual(['a', 'b', 'c', 'd']);
    const left = SCATTER_MARGIN.left;
    const right = 640 - SCATTER_MARGIN.right;
    const top = SCATTER_MARGIN.top;
    const bottom = 380 - SCATTER_MARGIN.bottom;
    // x domain [2, 8], y domain [0, 0.6] (see niceDomain)
    const X = (x: number): number => left + ((x - 2) / 6) * (right - left);
    const Y = (y: number): number => bottom - (y / 0.6) * (bottom - top);
    for (const [i, p] of spec.points.entries()) {
      expect(Number(circles[i].cx)).toBeCloseTo(X(p.x), 1);
      expect(Number(circles[i].cy)).toBeCloseTo(Y(p.y), 1);
    }
    expect(Number(circles[0].cx)).toBe(left);
    expect(Number(circles[3].cx)).toBe(right);
    expect(Number(circles[3].cy)).toBe(bottom);
  });

  it('puts tick labels where the scale maps their value', () => {
    const g = scatterGeometry(spec);
    expect(g.xTicks).toEqual([2, 4, 6, 8]);
    expect(g.yTicks).toEqual([0, 0.2, 0.4, 0.6]);
    const xAxis = svg.slice(svg.indexOf('<g class="axis x-axis">'), svg.indexOf('<g class="axis y-axis">'));
    const xTickTexts = [...xAxis.matchAll(/<g class="tick" data-value="([^"]+)"><line class="grid" x1="([^"]+)" x2="[^"]+" y1="[^"]+" y2="[^"]+"\/><text x="([^"]+)"/g)];
    expect(xTickTexts.map((m) => Number(m[1]))).toEqual(g.xTicks);
    for (const m of xTickTexts) expect(Number(m[3])).toBeCloseTo(g.x(Number(m[1])), 1);
    const refLine = /<g class="ref"><line [^>]*y1="([^"]+)"/.exec(svg);
    expect(Number(refLine?.[1])).toBeCloseTo(g.y(0), 1);
  });

  it('marks the Pareto front and joins it in x order', () => {
    expect(circles.map((c) => c['data-front'])).toEqual(['true', 'true', 'false', 'true']);
    expect(circles.map((c) => c.class)).toEqual(['pt on-front', 'pt on-front', 'pt dominated', 'pt on-front']);
    const poly = elements(svg, 'polyline')[0].points.split(' ').map((p) => p.split(',').map(Number));
    expect(poly.map(([x]) => x)).toEqual([circles[0], circles[1], circles[3]].map((c) => Number(c.cx)));
  });

  it('escapes labels and has no script or external reference', () => {
    expect(svg).not.toContain('<d&>');
    expect(svg).toContain('&lt;d&amp;&gt;');
    expect(svg).not.toMatch(/<script|href=|src=/);
  });
});

describe('heatmapChartSvg (block × linear role)', () => {
  const spec: HeatmapSpec = {
    chartId: 'h',
    title: 'bits',
    rows: ['block 0', 'block 1'],
    cols: ['q', 'k', 'down'],
    colAxis: 'linear',
    cells: [
      { row: 'block 0', col: 'q', value: 4, fill: '#91bfdb', text: '4·32' },
      { row: 'block 1', col: 'k', value: 2, fill: '#313695', text: '2·32' },
      { row: 'block 1', col: 'down', value: 8, fill: '#ffffff' },
      { row: 'block 9', col: 'q', value: 3, fill: '#000000' }, // not in rows: not drawn
    ],
    legend: [{ fill: '#91bfdb', label: '4-bit' }],
    cellWidth: 40,
    cellHeight: 20,
  };
  const svg = heatmapChartSvg(spec);
  const cells = elements(svg, 'rect').filter((r) => r.class === 'cell');

  it('draws one rect per cell inside the grid, at (row, col)', () => {
    expect(cells).toHaveLength(3);
    const at = (r: number, c: number) => ({ x: String(HEATMAP_MARGIN.left + c * 40), y: String(HEATMAP_MARGIN.top + r * 20) });
    expect({ x: cells[0].x, y: cells[0].y }).toEqual(at(0, 0));
    expect({ x: cells[1].x, y: cells[1].y }).toEqual(at(1, 1));
    expect({ x: cells[2].x, y: cells[2].y }).toEqual(at(1, 2));
    expect(cells.map((c) => [c['data-row'], c['data-col'], c['data-value'], c.fill])).toEqual([
      ['block 0', 'q', '4', '#91bfdb'],
      ['block 1', 'k', '2', '#313695'],
      ['block 1', 'down', '8', '#ffffff'],
    ]);
  });

  it('writes cell text readable on the fill (white on dark, dark on light)', () => {
    expect(svg).toMatch(/style="fill:#111">4·32</);
    expect(svg).toMatch(/style="fill:#fff">2·32</);
  });
});

describe('barChartSvg (throughput, edgeq next to the peer)', () => {
  const spec = {
    chartId: 'b',
    title: 'decode',
    xLabel: 'tok/s',
    width: 600,
    categories: ['r1', 'r2'],
    series: [
      { name: 'edgeq', color: '#00f', values: [300, 450] },
      { name: 'llama.cpp', color: '#f80', values: [900, null] },
    ],
  };
  const svg = barChartSvg(spec);
  const bars = elements(svg, 'rect').filter((r) => r.class === 'bar');

  it('one bar per measured value, width proportional to the value from x = 0', () => {
    const g = barGeometry(spec);
    expect(g.ticks).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(bars.map((b) => [b['data-category'], b['data-series'], Number(b['data-value'])])).toEqual([
      ['r1', 'edgeq', 300],
      ['r1', 'llama.cpp', 900],
      ['r2', 'edgeq', 450],
    ]);
    const unit = (600 - BAR_MARGIN.right - BAR_MARGIN.left) / 1000;
    for (const b of bars) {
      expect(Number(b.x)).toBe(BAR_MARGIN.left);
      expect(Number(b.width)).toBeCloseTo(Number(b['data-value']) * unit, 1);
    }
    expect(Number(bars[1].y) - Number(bars[0].y)).toBe(BAR_HEIGHT);
  });

  it('says "not measured" where a value is missing', () => {
    expect(svg).toMatch(/class="bar-missing" data-series="llama.cpp" data-category="r2"[^>]*>llama.cpp: not measured</);
  });
});
