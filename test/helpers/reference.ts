/** Readers for the float64 PyTorch reference outputs bundled in fixtures/reference. */
import fs from 'node:fs';

export interface ReferencePrompt {
  text: string;
  ids_with_bos: number[];
  argmax_per_position: number[];
  last_top10: [number, number][];
  greedy_24: number[];
  logits_offset_floats: number;
  logits_shape: [number, number];
}

export interface ReferenceFile {
  model: string;
  prompts: ReferencePrompt[];
  eval: { ctx: number; windows: number; scored_tokens: number; mean_nll: number; ppl: number; window_mean_nll: number[] };
}

export function loadReference(base: string): { ref: ReferenceFile; logits: Float32Array } {
  const ref = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8')) as ReferenceFile;
  const buf = fs.readFileSync(`${base}.prompt_logits.f32`);
  const logits = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return { ref, logits };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
