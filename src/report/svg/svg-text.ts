/** Text helpers shared by the SVG chart builders and the HTML page: escaping and number formatting. */

/** Escape text for XML/HTML content and attribute values (double-quoted). */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A coordinate rounded to 2 decimals (keeps the SVG short and deterministic). */
export function px(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/**
 * A number for people: `sig` significant digits, no exponent between 1e-3 and 1e6, thousands kept
 * plain ("1234.5" → "1235" with sig 4). Non-finite values print as "—".
 */
export function fmtNum(v: number, sig = 3): string {
  if (!Number.isFinite(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(Math.max(0, sig - 1)).replace(/\.?0+e/, 'e');
  const digits = Math.max(0, sig - 1 - Math.floor(Math.log10(a)));
  return String(Number(v.toFixed(Math.min(digits, 12))));
}

/** `name="value"` pairs; undefined values are dropped, values escaped. */
export function attrs(a: Record<string, string | number | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}="${escapeXml(String(v))}"`)
    .join(' ');
}
