/**
 * edgeq's MatMulNBits packing executed by onnxruntime-node: a one-node graph Y = MatMulNBits(A, B, scales,
 * zero_points, g_idx) built with edgeq's ONNX writer must equal A · Ŵᵀ, where Ŵ = scale·(code − zero) is
 * computed here from the unpacked QuantizedWeight (float64). Covers block sizes 16…128, a partial last
 * block (K = 172), per-channel grids written as replicated blocks, group 256 written as two 128 blocks,
 * asymmetric zero points (packed nibbles, odd block counts) and act-order g_idx; and the refusals.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { UnsupportedError } from '../../src/core/errors.js';
import { GraphBuilder, INLINE_SINK } from '../../src/formats/onnx/graph-builder.js';
import { packMatMulNBits } from '../../src/formats/onnx/matmul-nbits.js';
import { encodeModel } from '../../src/formats/onnx/onnx-model.js';
import type { Bits, QuantizedWeight } from '../../src/qtypes/types.js';
import { randomQuantized, seededRng } from '../helpers/upstream-unpack.js';

async function runMatMulNBits(q: QuantizedWeight, a: Float32Array, m: number): Promise<Float32Array> {
  const g = new GraphBuilder(INLINE_SINK);
  const x = g.input('A', 'FLOAT', [m, q.k]);
  const p = packMatMulNBits(q);
  const xa = p.inputPerm ? g.op('Gather', 'gather_perm', [x, await g.initializer('perm', 'INT32', [q.k], p.inputPerm)], { axis: -1 }) : x;
  const inputs = [xa, await g.initializer('B', 'UINT8', [q.n, p.kBlocks, p.blobSize], p.b), await g.initializer('scales', 'FLOAT', [q.n, p.kBlocks], p.scales)];
  if (p.zeroPoints || p.gIdx) inputs.push(p.zeroPoints ? await g.initializer('zp', p.zeroPoints.dtype, p.zeroPoints.dims, p.zeroPoints.data) : '');
  if (p.gIdx) inputs.push(await g.initializer('g_idx', 'INT32', [q.k], p.gIdx));
  g.node('MatMulNBits', 'mm', inputs, { attrs: { K: q.k, N: q.n, bits: p.bits, block_size: p.blockSize }, domain: 'com.microsoft', outputs: ['Y'] });
  g.output('Y', 'FLOAT', [m, q.n]);
  const bytes = encodeModel({
    irVersion: 8,
    opsets: [
      { domain: '', version: 17 },
      { domain: 'com.microsoft', version: 1 },
    ],
    producerName: 'edgeq-test',
    producerVersion: '0',
    graph: g.graph('mm'),
    metadata: {},
  });
  const sess = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const out = await sess.run({ A: new ort.Tensor('float32', a, [m, q.k]) });
    return out.Y.data as Float32Array;
  } finally {
    await sess.release();
  }
}

/** A · Ŵᵀ in float64 from the unpacked codes (the definition of the grid, independent of the packing). */
function reference(q: QuantizedWeight, a: Float32Array, m: number): Float64Array {
  const y = new Float64Array(m * q.n);
  for (let r = 0; r < q.n; r++) {
    for (let c = 0; c < q.k; c++) {
      const grp = q.gIdx ? q.gIdx[c] : Math.floor(c / q.groupSize);
      const w = q.scales[r * q.numGroups + grp] * (q.codes[r * q.k + c] - q.zeros[r * q.numGroups + grp]);
      for (let i = 0; i < m; i++) y[i * q.n + r] += a[i * q.k + c] * w;
    }
  }
  return y;
}

function activations(m: number, k: number, seed: number): Float32Array {
  const rnd = seededRng(seed);
  return Float32Array.from({ length: m * k }, () => rnd() * 2 - 1);
}

describe('MatMulNBits packing runs in onnxruntime with the grid edgeq defines', () => {
  const cases: { n: number; k: number; groupSize: number; sym: boolean; actOrder?: boolean; unevenGroups?: boolean; block: number; bits?: 4 | 8 }[] = [
    { n: 24, k: 256, groupSize: 32, sym: true, block: 32, bits: 8 },
    { n: 24, k: 384, groupSize: 128, sym: false, block: 128, bits: 8 },
    { n: 12, k: 172, groupSize: -1, sym: false, block: 128, bits: 8 },
    { n: 16, k: 256, groupSize: 64, sym: false, actOrder: true, block: 64, bits: 8 },
    { n: 24, k: 256, groupSize: 32, sym: true, block: 32 },
    { n: 24, k: 256, groupSize: 32, sym: false, block: 32 },
    { n: 20, k: 256, groupSize: 64, sym: false, block: 64 },
    { n: 20, k: 384, groupSize: 128, sym: false, block: 128 }, // 3 blocks: odd count, last zero nibble pair half used
    { n: 16, k: 512, groupSize: 256, sym: false, block: 128 }, // group 256 = two replicated 128-blocks
    { n: 16, k: 128, groupSize: 16, sym: false, block: 16 },
    { n: 12, k: 172, groupSize: 32, sym: false, block: 32 }, // partial last block (12 of 32)
    { n: 12, k: 172, groupSize: -1, sym: false, block: 128 }, // per channel, K not a power of two
    { n: 12, k: 172, groupSize: -1, sym: true, block: 128 },
    { n: 16, k: 256, groupSize: 32, sym: false, actOrder: true, block: 32 },
    { n: 16, k: 256, groupSize: 32, sym: true, actOrder: true, block: 32 },
    { n: 16, k: 256, groupSize: 128, sym: false, actOrder: true, block: 128 },
    { n: 16, k: 256, groupSize: 64, sym: false, actOrder: true, block: 64, unevenGroups: true }, // g_idx input + float zero points
    { n: 16, k: 256, groupSize: 64, sym: true, actOrder: true, block: 64, unevenGroups: true },
  ];
  for (const [i, cs] of cases.entries()) {
    const label = `${cs.bits ?? 4}-bit K=${cs.k} N=${cs.n} g${cs.groupSize} ${cs.sym ? 'sym' : 'asym'}${cs.actOrder ? ' act-order' : ''} → block ${cs.block}`;
    it(label, async () => {
      const q = randomQuantized({ n: cs.n, k: cs.k, bits: cs.bits ?? 4, groupSize: cs.groupSize, sym: cs.sym, actOrder: cs.actOrder, seed: 100 + i });
      if (cs.unevenGroups) {
        const rnd = seededRng(7 + i);
        q.gIdx = Int32Array.from({ length: q.k }, () => Math.floor(rnd() * q.numGroups)); // any column → any group
      }
      const packed = packMatMulNBits(q);
      expect(packed.blockSize).toBe(cs.block);
      // act-order: groups of equal size are made contiguous by permuting columns; uneven ones use g_idx
      expect(packed.inputPerm !== null).toBe(!!cs.actOrder && !cs.unevenGroups);
      expect(packed.gIdx !== null).toBe(!!cs.unevenGroups);
      const m = 5;
      const a = activations(m, cs.k, i);
      const y = await runMatMulNBits(q, a, m);
      const ref = reference(q, a, m);
      let maxErr = 0;
      let maxRef = 0;
      for (let j = 0; j < y.length; j++) {
        maxErr = Math.max(maxErr, Math.abs(y[j] - ref[j]));
        maxRef = Math.max(maxRef, Math.abs(ref[j]));
      }
      expect(maxRef).toBeGreaterThan(0.1);
      expect(maxErr / maxRef).toBeLessThan(1e-5);
    });
  }

  it('refuses 2- and 3-bit grids, group sizes that are no multiple of 16, and 8-bit uneven act-order, naming the weight', () => {
    for (const bits of [2, 3] as Bits[]) {
      const q = randomQuantized({ n: 4, k: 64, bits, groupSize: 32, sym: true, seed: 1 });
      expect(() => packMatMulNBits(q, 'model.layers.0.mlp.up_proj.weight')).toThrowError(UnsupportedError);
      expect(() => packMatMulNBits(q, 'model.layers.0.mlp.up_proj.weight')).toThrowError(/model\.layers\.0\.mlp\.up_proj\.weight.*bit/);
    }
    const odd = randomQuantized({ n: 4, k: 72, bits: 4, groupSize: 24, sym: true, seed: 2 });
    expect(() => packMatMulNBits(odd)).toThrowError(/group size 24/);
    const uneven = randomQuantized({ n: 4, k: 64, bits: 8, groupSize: 32, sym: true, actOrder: true, seed: 3 });
    uneven.gIdx = Int32Array.from({ length: 64 }, (_, c) => (c < 40 ? 0 : 1));
    expect(() => packMatMulNBits(uneven)).toThrowError(/g_idx/);
  });
});
