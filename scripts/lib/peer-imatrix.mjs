// The imatrix handed to llama.cpp's quantizer in scripts/bench-quality.mjs: mean x² per input channel of every
// block linear, from edgeq's FP16 forward over the calibration sample, written in the format
// scripts/llama-quantize/quantize.cpp reads ("EQIM", u32 count, then per tensor: u32 name length, name, u32 n,
// n float32). output.weight gets none (llama-imatrix's default).
import fs from 'node:fs';
import { dist } from './bench-common.mjs';

const GGUF_OF_TAP = { qkv: ['attn_q', 'attn_k', 'attn_v'], o: ['attn_output'], gate_up: ['ffn_gate', 'ffn_up'], down: ['ffn_down'] };

/** Computes the imatrix of `baseline` (an edgeq LlamaModel) and writes it to `file`; returns the tensor count. */
export async function writePeerImatrix({ baseline, tok, samples, seqLen, file }) {
  const { sampleCalibration, loadCalibrationText } = await dist('calib/calibration.js');
  const { llamaBlockForward } = await dist('infer/llama-block.js');
  const cal = sampleCalibration(tok, loadCalibrationText('brown'), { samples, seqLen, seed: 0 });
  const c = baseline.config;
  const T = cal.seqLen;
  const rope = baseline.ropeFor(T);
  const cache = baseline.createCache(T);
  const sums = new Map(); // `${layer}:${tap}` → Float64Array(k)
  for (let r = 0; r < cal.n; r++) {
    const x = baseline.embed(cal.ids.subarray(r * T, (r + 1) * T));
    cache.reset();
    for (let l = 0; l < c.numLayers; l++) {
      llamaBlockForward(c, baseline.weights.blocks[l], baseline.backend, rope, cache, l, x, T, (p, h, n) => {
        const k = h.length / n;
        const key = `${l}:${p}`;
        let acc = sums.get(key);
        if (!acc) sums.set(key, (acc = new Float64Array(k)));
        for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) acc[j] += h[i * k + j] * h[i * k + j];
      });
    }
  }
  const parts = [];
  let count = 0;
  const u32 = (v) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  for (const [key, acc] of sums) {
    const [l, p] = key.split(':');
    const mean = new Float32Array(acc.length);
    for (let j = 0; j < acc.length; j++) mean[j] = acc[j] / (cal.n * T);
    for (const g of GGUF_OF_TAP[p]) {
      const name = Buffer.from(`blk.${l}.${g}.weight`);
      parts.push(u32(name.length), name, u32(mean.length), Buffer.from(mean.buffer.slice(0)));
      count++;
    }
  }
  fs.writeFileSync(file, Buffer.concat([Buffer.from('EQIM'), u32(count), ...parts]));
  return { count, sequences: cal.n, seqLen: T };
}
