/** Hand-built safetensors bytes for parser tests (valid or deliberately broken). */

/**
 * `[u64 LE header length][header][data]`. `header` is JSON-stringified unless it is already a string
 * (or raw bytes); `data` is raw bytes or a length of zero bytes; `headerLength` overrides the prefix.
 */
export function rawSafetensors(
  header: unknown,
  data: Uint8Array | number = 0,
  opts: { headerLength?: bigint; pad?: number } = {},
): Uint8Array {
  let h: Uint8Array =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  if (opts.pad) {
    const padded = new Uint8Array(h.length + opts.pad).fill(0x20);
    padded.set(h);
    h = padded;
  }
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + body.length);
  new DataView(out.buffer).setBigUint64(0, opts.headerLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(body, 8 + h.length);
  return out;
}

/** Deterministic PRNG (mulberry32) returning uint32. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
