/**
 * The bench:ladder Pareto plot (src/report/bench-pareto-plot.ts): well-formed XML (checked by a small
 * tokenizer here, independent of the writer), one marker per point per panel carrying its values, the
 * Pareto flags equal to a brute-force O(n²) dominance check, axis domains covering every point, log axes
 * with decade (y) or 1-1.25-1.5-2-2.5-3-4-5-6-8 (x) ticks, and values ≤ 0 clamped onto a log axis's floor.
 */
import { describe, expect, it } from 'vitest';
import { logDomain, logDomainFine, panelGeometry, paretoPlotSvg, type ParetoPlotSpec, type PlotPoint } from '../../src/report/bench-pareto-plot.js';

/** Throws unless `xml` is well-formed: balanced tags, quoted unique attributes, only the 5 named entities or numeric ones. */
function checkWellFormed(xml: string): { elements: { name: string; attrs: Record<string, string> }[] } {
  const elements: { name: string; attrs: Record<string, string> }[] = [];
  const stack: string[] = [];
  let i = 0;
  let roots = 0;
  const text = (s: string): void => {
    if (s.includes('<')) throw new Error(`raw < in text: ${s}`);
    for (const m of s.matchAll(/&([^;\s]*);?/g)) if (!/^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);$/i.test(m[0])) throw new Error(`bad entity ${m[0]}`);
  };
  if (xml.startsWith('<?xml')) i = xml.indexOf('?>') + 2;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) {
      text(xml.slice(i));
      break;
    }
    text(xml.slice(i, lt));
    const gt = xml.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = xml.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      if (stack.pop() !== name) throw new Error(`mismatched </${name}>`);
      continue;
    }
    const selfClose = tag.endsWith('/');
    const body = selfClose ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*$/.exec(body);
    if (!m) throw new Error(`malformed tag <${tag}>`);
    const attrs: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      text(a[2]!);
      attrs[a[1]!] = a[2]!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    }
    if (stack.length === 0) roots++;
    elements.push({ name: m[1]!, attrs });
    if (!selfClose) stack.push(m[1]!);
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return { elements };
}

/** Brute force: p is on the front when no other point is ≤ on both axes and < on one. */
function bruteFront(pts: readonly PlotPoint[]): boolean[] {
  return pts.map((p) => !pts.some((q) => q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y)));
}

const POINTS: PlotPoint[] = [
  { series: 'rtn', label: 'w4', x: 4.25, y: 12.5 },
  { series: 'rtn', label: 'w3', x: 3.25, y: 60 },
  { series: 'rtn', label: 'w2', x: 2.5, y: 900 },
  { series: 'gptq', label: 'w4', x: 4.25, y: 6 },
  { series: 'gptq', label: 'w3', x: 3.25, y: 30 },
  { series: 'ladder', label: '3.0', x: 3.0, y: 25 },
  { series: 'ladder', label: '3.5', x: 3.5, y: 8 },
  { series: 'svd', label: 'plain 0.8', x: 12.8, y: 400 },
  { series: 'svd', label: 'svdllm 0.9', x: 14.4, y: -0.5 }, // ≤ 0: clamped on a log axis
];

const SPEC: ParetoPlotSpec = {
  title: 'brown-llama-7m <Δppl & KL>',
  xLabel: 'bits per weight (linears)',
  xLog: true,
  series: [
    { id: 'rtn', label: 'RTN', color: '#d73027', shape: 'circle' },
    { id: 'gptq', label: 'GPTQ', color: '#4575b4', shape: 'square' },
    { id: 'ladder', label: 'ladder', color: '#1a9850', shape: 'diamond' },
    { id: 'svd', label: 'SVD', color: '#7b3294', shape: 'triangle' },
  ],
  panels: [
    { id: 'dppl', title: 'Δppl', yLabel: 'Δppl vs FP16', yLog: true, points: POINTS },
    { id: 'kl', title: 'mean KL', yLabel: 'mean KL', points: POINTS.map((p) => ({ ...p, y: Math.abs(p.y) / 1000 })) },
  ],
};

describe('paretoPlotSvg', () => {
  const svg = paretoPlotSvg(SPEC);
  const { elements } = checkWellFormed(svg);

  it('is a well-formed standalone SVG document with the title escaped', () => {
    expect(elements[0]!.name).toBe('svg');
    expect(elements[0]!.attrs['xmlns']).toBe('http://www.w3.org/2000/svg');
    expect(svg).toContain('brown-llama-7m &lt;Δppl &amp; KL&gt;');
  });

  it('draws one marker per point in each panel, with its values, series and front flag', () => {
    const markers = elements.filter((e) => (e.attrs['class'] ?? '').split(' ')[0] === 'pt');
    expect(markers).toHaveLength(2 * POINTS.length);
    SPEC.panels.forEach((panel, pi) => {
      const mine = markers.slice(pi * POINTS.length, (pi + 1) * POINTS.length);
      const front = bruteFront(panel.points);
      panel.points.forEach((p, i) => {
        expect(mine[i]!.attrs['data-series']).toBe(p.series);
        expect(Number(mine[i]!.attrs['data-x'])).toBe(p.x);
        expect(Number(mine[i]!.attrs['data-y'])).toBe(p.y);
        expect(mine[i]!.attrs['data-front']).toBe(String(front[i]));
      });
    });
    // the shapes follow the series
    expect(markers[0]!.name).toBe('circle');
    expect(markers[3]!.name).toBe('rect');
    expect(markers[5]!.name).toBe('path');
  });

  it('marks the Pareto front of the brute-force check, which is also the one worked out by hand', () => {
    const g = panelGeometry(SPEC, 0);
    expect(g.front).toEqual(bruteFront(POINTS));
    // by hand: rtn w2 has the smallest x; ladder 3.0 (25) beats everything at x ≤ 3.25; ladder 3.5 (8) beats
    // the w3 rows; gptq w4 stays (6 < 8 at a larger x); the svd point with Δppl ≤ 0 has the smallest y
    const onFront = POINTS.filter((_, i) => g.front[i]).map((p) => `${p.series} ${p.label}`);
    expect(onFront).toEqual(['rtn w2', 'gptq w4', 'ladder 3.0', 'ladder 3.5', 'svd svdllm 0.9']);
  });

  it('axis domains cover every point; log axes say so and clamp values ≤ 0 to the floor', () => {
    for (let pi = 0; pi < SPEC.panels.length; pi++) {
      const g = panelGeometry(SPEC, pi);
      const pts = SPEC.panels[pi]!.points;
      for (const p of pts) {
        expect(p.x).toBeGreaterThanOrEqual(g.x.domain[0]);
        expect(p.x).toBeLessThanOrEqual(g.x.domain[1]);
        if (!g.y.log || p.y > 0) {
          expect(p.y).toBeGreaterThanOrEqual(g.y.domain[0]);
          expect(p.y).toBeLessThanOrEqual(g.y.domain[1]);
        }
        const px = g.x.map(p.x);
        const py = g.y.map(p.y);
        expect(px).toBeGreaterThanOrEqual(g.left - 1e-9);
        expect(px).toBeLessThanOrEqual(g.right + 1e-9);
        expect(py).toBeGreaterThanOrEqual(g.top - 1e-9);
        expect(py).toBeLessThanOrEqual(g.bottom + 1e-9);
      }
    }
    const g0 = panelGeometry(SPEC, 0);
    expect(g0.y.log).toBe(true);
    expect(g0.y.map(-0.5)).toBeCloseTo(g0.bottom, 9);
    const clamped = elements.filter((e) => e.attrs['data-clamped'] === 'true');
    expect(clamped).toHaveLength(1);
    expect(svg).toContain('markers on the bottom axis: Δppl vs FP16 ≤ 0');
    expect(panelGeometry(SPEC, 1).y.log).toBe(false);
    const yAxes = elements.filter((e) => e.attrs['class'] === 'axis y-axis');
    expect(yAxes.map((e) => e.attrs['data-scale'])).toEqual(['log', 'linear']);
  });
});

describe('log domains', () => {
  it('logDomain: whole decades around [min, max], a tick per decade', () => {
    expect(logDomain(0.012, 850)).toEqual({ domain: [0.01, 1000], ticks: [0.01, 0.1, 1, 10, 100, 1000] });
    expect(logDomain(10, 10)).toEqual({ domain: [10, 100], ticks: [10, 100] });
    expect(() => logDomain(0, 1)).toThrow(RangeError);
  });

  it('logDomainFine: ±10 % around [min, max], ticks 1-1.25-1.5-2-2.5-3-4-5-6-8 × 10^k inside', () => {
    const d = logDomainFine(2.5, 14.4);
    expect(d.domain[0]).toBeCloseTo(2.5 / 1.1, 4);
    expect(d.domain[1]).toBeCloseTo(14.4 * 1.1, 4);
    expect(d.ticks).toEqual([2.5, 3, 4, 5, 6, 8, 10, 12.5, 15]);
  });
});
