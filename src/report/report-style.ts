/** The report page's inline stylesheet (no fonts, images or anything else fetched). */
export const REPORT_CSS = `
:root { color-scheme: light; --fg: #1a202c; --muted: #5a6472; --line: #d8dee6; --bg: #ffffff; --panel: #f6f8fa; --accent: #2b6cb0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 20px 28px 12px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: var(--muted); }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { margin-top: 28px; }
h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
p.note, li.note { color: var(--muted); }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.text, th.text { text-align: left; }
td.text { max-width: 340px; overflow-wrap: break-word; }
td.missing { color: #a0a8b3; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 0; padding: 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; max-width: 640px; }
svg.chart { display: block; font-size: 11px; }
svg.chart text { fill: #333; }
svg.chart .grid { stroke: #eceff3; }
svg.chart .axis-line { stroke: #7a8594; }
svg.chart .axis-label { font-weight: 600; fill: #444; }
svg.chart .grid-bg { fill: #f3f5f8; }
svg.chart .pt { fill: #a0aec0; stroke: #4a5568; stroke-width: 1; }
svg.chart .pt.on-front { fill: #dd6b20; stroke: #7b341e; }
svg.chart .front-line { fill: none; stroke: #dd6b20; stroke-width: 1.5; stroke-dasharray: 4 3; }
svg.chart .pt-label { font-size: 11px; }
svg.chart .ref line { stroke: #38a169; stroke-dasharray: 2 3; }
svg.chart .ref text { fill: #2f855a; }
svg.chart .bar-missing { fill: #a0a8b3; font-style: italic; }
svg.chart .cell-text { font-size: 10px; }
`;
