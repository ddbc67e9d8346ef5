/** Colour scales for the charts: a sequential ramp for errors, fixed colours for bit widths and series. */

/** Viridis-like stops, low (light yellow-green... dark) reversed so that small errors are light. */
const SEQUENTIAL = ['#fde725', '#5ec962', '#21918c', '#3b528b', '#440154'];

function hexToRgb(h: string): [number, number, number] {
  const n = parseInt(h.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function rgbToHex([r, g, b]: number[]): string {
  return `#${[r, g, b].map((c) => Math.round(c).toString(16).padStart(2, '0')).join('')}`;
}

/** t in [0, 1] (clamped) → a colour on the sequential ramp. */
export function sequentialColor(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (SEQUENTIAL.length - 1);
  const i = Math.min(SEQUENTIAL.length - 2, Math.floor(x));
  const f = x - i;
  const a = hexToRgb(SEQUENTIAL[i]);
  const b = hexToRgb(SEQUENTIAL[i + 1]);
  return rgbToHex(a.map((c, k) => c + (b[k] - c) * f));
}

/** Black or white text, whichever reads better on `fill`. */
export function textColorOn(fill: string): string {
  const [r, g, b] = hexToRgb(fill);
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? '#111' : '#fff';
}

const BITS_COLORS: Record<number, string> = { 2: '#d73027', 3: '#fc8d59', 4: '#91bfdb', 5: '#74add1', 6: '#4575b4', 8: '#313695', 16: '#999999' };

/** A fixed colour per bit width (2 red … 8 dark blue); unknown widths grey. */
export function bitsColor(bits: number): string {
  return BITS_COLORS[bits] ?? '#bbbbbb';
}

/** Series colours: ours and the peer's. */
export const SERIES_COLORS = ['#2b6cb0', '#dd6b20', '#38a169', '#805ad5'];
