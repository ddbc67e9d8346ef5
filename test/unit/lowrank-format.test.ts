/**
 * Low-rank linears in the edgeq format: a mixed stories260K checkpoint (fp16 linears, quantized linears on
 * five grids, low-rank linears with dense/quantized/mixed factors) written through the CheckpointSink reads
 * back bit-exactly; lowRankEntryBytes is the file's byte count; format_version is 2 only with low-rank
 * linears; the plan, the sinks of the other layouts and the reader refuse what they cannot hold (reader:
 * mutated headers → typed FormatError).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeqError, FormatError } from '../../src/core/errors.js';
import { BUNDLED } from '../../src/core/paths.js';
import { checkPlan, lowRankEntryBytes, type LowRankPlanEntry, type TensorPlanEntry } from '../../src/formats/edgeq/plan.js';
import { EdgeqCheckpoint } from '../../src/formats/edgeq/reader.js';
import { checkFormatPlan, createCheckpointSink } from '../../src/pipeline/checkpoint-sink.js';
import type { QuantizedWeight } from '../../src/qtypes/types.js';
import { rawSafetensors } from '../helpers/safetensors-bytes.js';
import { G, mixedWithLowRank, writeMixedCheckpoint, type WrittenCheckpoint } from './lowrank-checkpoint-fixture.js';

const STORIES = BUNDLED.models.stories260K!;
let tmp: string;
let dir: string;
let written: WrittenCheckpoint;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-lowrank-fmt-'));
  dir = path.join(tmp, 'mixed');
  written = await writeMixedCheckpoint(STORIES, dir, mixedWithLowRank);
}, 120_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function expectSameQuantized(a: QuantizedWeight, b: QuantizedWeight): void {
  expect(a.grid).toEqual(b.grid);
  expect([a.n, a.k, a.groupSize, a.numGroups]).toEqual([b.n, b.k, b.groupSize, b.numGroups]);
  expect(Buffer.from(a.codes).equals(Buffer.from(b.codes))).toBe(true);
  expect(Array.from(a.scales)).toEqual(Array.from(b.scales));
  expect(Array.from(a.zeros)).toEqual(Array.from(b.zeros));
  expect(a.gIdx).toBeNull();
}

describe('edgeq format: low-rank round trip', () => {
  it('reads every tensor of a mixed checkpoint back bit-exactly', async () => {
    const ck = await EdgeqCheckpoint.open(dir);
    try {
      expect(ck.formatVersion).toBe(2);
      expect((ck.config['quantization_config'] as Record<string, unknown>)['format_version']).toBe(2);
      expect(ck.lowRank.size).toBe(written.lowRank.size);
      expect(written.lowRank.size).toBe(3 * 4); // layers 0, 2, 4 × o/gate/up/down
      for (const [name, w] of written.lowRank) {
        expect(ck.isLowRank(name)).toBe(true);
        expect(ck.isQuantized(name)).toBe(false);
        const r = await ck.readLowRank(name);
        expect([r.n, r.k, r.r]).toEqual([w.n, w.k, w.r]);
        for (const which of ['u', 'v'] as const) {
          const got = r[which];
          const want = w[which];
          if (want instanceof Float32Array) {
            expect(got).toBeInstanceOf(Float32Array);
            expect(Array.from(got as Float32Array)).toEqual(Array.from(want));
          } else {
            expectSameQuantized(got as QuantizedWeight, want);
          }
        }
        await expect(ck.readDense(name)).rejects.toThrowError(expect.objectContaining({ code: 'E_LOWRANK' }));
        await expect(ck.readQuantized(name)).rejects.toThrowError(expect.objectContaining({ code: 'E_NOT_QUANTIZED' }));
      }
      for (const [name, q] of written.quantized) expectSameQuantized(await ck.readQuantized(name), q);
      for (const [name, d] of written.dense) expect(Array.from(await ck.readDense(name))).toEqual(Array.from(d));
      // the factor tensors are not dense tensors of the model
      expect(ck.denseNames.filter((n) => n.includes('lowrank_'))).toEqual([]);
      expect(new Set(ck.tensorNames)).toEqual(new Set([...written.quantized.keys(), ...written.lowRank.keys(), ...written.dense.keys()]));
    } finally {
      await ck.close();
    }
  });

  it('lowRankEntryBytes is what the file holds for each low-rank linear', async () => {
    const ck = await EdgeqCheckpoint.open(dir);
    try {
      for (const e of written.plan.filter((x): x is LowRankPlanEntry => x.kind === 'lowrank')) {
        const prefix = e.name.slice(0, -'.weight'.length);
        let stored = 0;
        for (const [n, t] of ck.file.tensors) if (n.startsWith(`${prefix}.lowrank_`)) stored += t.byteLength;
        expect(lowRankEntryBytes(e), e.name).toBe(stored);
      }
      // by hand for one entry: o_proj 64×64 rank 16, U int8 per channel sym (codes 64·16 + scales 64·2), V int4 g32 asym on 16×64
      const o: LowRankPlanEntry = { kind: 'lowrank', name: 'a.weight', shape: [64, 64], rank: 16, uGrid: G.int8pcs, vGrid: G.int4g32a };
      expect(lowRankEntryBytes(o)).toBe(64 * 16 + 64 * 2 + (16 * 32 + 16 * 2 * 2 + 16 * 2));
      expect(lowRankEntryBytes({ ...o, uGrid: null, vGrid: null })).toBe((64 * 16 + 16 * 64) * 2);
    } finally {
      await ck.close();
    }
  });

  it('writes format_version 1 when no linear is low-rank (fp16 and mixed quantized linears only)', async () => {
    const out = path.join(tmp, 'no-lowrank');
    await writeMixedCheckpoint(STORIES, out, (role, _l, _n, k) => (role === 'v_proj' ? { kind: 'dense' } : { kind: 'quantized', grid: k % 32 === 0 ? G.q4_0 : G.int8pcs }));
    const ck = await EdgeqCheckpoint.open(out);
    try {
      expect(ck.formatVersion).toBe(1);
      expect(ck.file.metadata['edgeq.lowrank']).toBeUndefined();
      expect(ck.lowRank.size).toBe(0);
    } finally {
      await ck.close();
    }
  });
});

describe('low-rank plans and sinks', () => {
  const base: LowRankPlanEntry = { kind: 'lowrank', name: 'model.layers.0.self_attn.o_proj.weight', shape: [64, 96], rank: 8, uGrid: null, vGrid: G.q4_0 };
  const plan = (e: Partial<LowRankPlanEntry>): TensorPlanEntry[] => [{ ...base, ...e } as LowRankPlanEntry];

  it('checkPlan refuses bad ranks, shapes, names, grids that do not divide and factor-name clashes', () => {
    expect(() => checkPlan(plan({}))).not.toThrow();
    for (const bad of [{ rank: 0 }, { rank: 65 }, { rank: 2.5 }, { shape: [64, 0] as [number, number] }, { name: 'model.norm' }, { uGrid: G.q4_0 /* r = 8 */ }, { vGrid: { bits: 5, groupSize: 32, sym: true } as never }]) {
      expect(() => checkPlan(plan(bad)), JSON.stringify(bad)).toThrowError(EdgeqError);
    }
    expect(() => checkPlan([...plan({}), { kind: 'dense', name: 'model.layers.0.self_attn.o_proj.lowrank_u.weight', shape: [64, 8] }])).toThrowError(/also lists/);
  });

  it('AutoGPTQ/AutoAWQ refuse low-rank linears (and AutoGPTQ dense block linears) naming the tensor and --format edgeq', async () => {
    const lr: TensorPlanEntry[] = [{ kind: 'quantized', name: 'model.layers.0.mlp.up_proj.weight', shape: [64, 64], qtype: 'int4_g32_sym', grid: G.q4_0 }, { ...base }];
    for (const f of ['autogptq', 'autoawq'] as const) {
      expect(() => checkFormatPlan(f, lr)).toThrowError(expect.objectContaining({ code: 'E_FORMAT_LOWRANK', message: expect.stringContaining(base.name) as unknown, hint: expect.stringContaining('--format edgeq') as unknown }));
      await expect(createCheckpointSink(f, path.join(tmp, `refused-${f}`), { plan: lr, sourceDir: STORIES, provenance: { method: 'x' } })).rejects.toThrowError(
        expect.objectContaining({ code: 'E_FORMAT_LOWRANK' }),
      );
      expect(fs.existsSync(path.join(tmp, `refused-${f}`))).toBe(false);
    }
    const dense: TensorPlanEntry[] = [lr[0]!, { kind: 'dense', name: 'model.layers.0.mlp.down_proj.weight', shape: [64, 64], dtype: 'F16' }];
    expect(() => checkFormatPlan('autogptq', dense)).toThrowError(expect.objectContaining({ code: 'E_FORMAT_DENSE_LINEAR', message: expect.stringContaining('down_proj') as unknown, hint: expect.stringContaining('--format edgeq') as unknown }));
  });

  it('the edgeq writer refuses factors that do not match the plan entry', async () => {
    const out = path.join(tmp, 'bad-factors');
    const p: TensorPlanEntry[] = plan({});
    const sink = await createCheckpointSink('edgeq', out, { plan: p, sourceDir: STORIES, provenance: { method: 'x' } });
    await expect(sink.writeLowRank(base.name, { u: new Float32Array(64 * 8), v: new Float32Array(8 * 96) })).rejects.toThrowError(expect.objectContaining({ code: 'E_WRITER_LOWRANK' }));
    const sink2 = await createCheckpointSink('edgeq', out, { plan: p, sourceDir: STORIES, provenance: { method: 'x' } });
    await expect(sink2.writeLowRank(base.name, { u: new Float32Array(64 * 7), v: new Float32Array(8 * 96) })).rejects.toThrowError(expect.objectContaining({ code: 'E_WRITER_LOWRANK' }));
    expect(fs.existsSync(out)).toBe(false);
  });
});

/** Copy the mixed checkpoint with its safetensors header rewritten (`drop`: tensors removed, data repacked). */
function mutated(tag: string, edit: (header: Record<string, unknown>, meta: Record<string, string>) => void, drop: string[] = []): string {
  const out = path.join(tmp, `mut-${tag}`);
  fs.mkdirSync(out);
  fs.copyFileSync(path.join(dir, 'config.json'), path.join(out, 'config.json'));
  const bytes = fs.readFileSync(path.join(dir, 'model.safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const data = bytes.subarray(8 + n);
  const meta = header['__metadata__'] as Record<string, string>;
  delete header['__metadata__'];
  const entries = Object.entries(header as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>).filter(([k]) => !drop.includes(k));
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const chunks: Buffer[] = [];
  const rebuilt: Record<string, unknown> = {};
  let pos = 0;
  for (const [k, t] of entries) {
    const c = data.subarray(t.data_offsets[0], t.data_offsets[1]);
    chunks.push(c);
    rebuilt[k] = { ...t, data_offsets: [pos, pos + c.length] };
    pos += c.length;
  }
  edit(rebuilt, meta);
  rebuilt['__metadata__'] = meta;
  fs.writeFileSync(path.join(out, 'model.safetensors'), rawSafetensors(rebuilt, new Uint8Array(Buffer.concat(chunks))));
  return out;
}

describe('edgeq reader: inconsistent low-rank metadata is refused with a FormatError', () => {
  const O = 'model.layers.0.self_attn.o_proj'; // rank 16, U int8_pc_sym, V int4_g32_asym
  const GATE = 'model.layers.0.mlp.gate_proj'; // rank 24, both F16
  const lr = (meta: Record<string, string>) => JSON.parse(meta['edgeq.lowrank']!) as Record<string, Record<string, unknown>>;
  const setLr = (meta: Record<string, string>, name: string, patch: Record<string, unknown>) => {
    const all = lr(meta);
    all[name] = { ...all[name], ...patch };
    meta['edgeq.lowrank'] = JSON.stringify(all);
  };
  const cases: Array<[string, (h: Record<string, unknown>, m: Record<string, string>) => void, string[], string]> = [
    ['rank-0', (_h, m) => setLr(m, `${O}.weight`, { rank: 0 }), [], 'E_EDGEQ_LOWRANK'],
    ['rank-too-big', (_h, m) => setLr(m, `${O}.weight`, { rank: 65 }), [], 'E_EDGEQ_LOWRANK'],
    ['rank-float', (_h, m) => setLr(m, `${O}.weight`, { rank: 15.5 }), [], 'E_EDGEQ_LOWRANK'],
    ['rank-disagrees', (_h, m) => setLr(m, `${GATE}.weight`, { rank: 23 }), [], 'E_EDGEQ_LAYOUT'],
    ['n-disagrees', (_h, m) => setLr(m, `${O}.weight`, { n: 32 }), [], 'E_EDGEQ_LAYOUT'],
    ['k-disagrees', (_h, m) => setLr(m, `${GATE}.weight`, { k: 32 }), [], 'E_EDGEQ_LAYOUT'],
    ['missing-dense-factor', () => undefined, [`${GATE}.lowrank_v.weight`], 'E_EDGEQ_LAYOUT'],
    ['missing-quant-factor', () => undefined, [`${O}.lowrank_u.qweight`], 'E_EDGEQ_LAYOUT'],
    ['missing-qzeros', () => undefined, [`${O}.lowrank_v.qzeros`], 'E_EDGEQ_LAYOUT'],
    ['unknown-qtype', (_h, m) => setLr(m, `${O}.weight`, { u: 'int5_g32_sym' }), [], 'E_EDGEQ_LOWRANK'],
    ['group-does-not-divide', (_h, m) => setLr(m, `${O}.weight`, { u: 'int8_g32_sym' }), [], 'E_EDGEQ_LOWRANK'],
    ['type-disagrees', (_h, m) => setLr(m, `${O}.weight`, { u: 'F16' }), [], 'E_EDGEQ_LAYOUT'],
    ['not-a-weight', (_h, m) => {
      const all = lr(m);
      all['model.norm'] = all[`${O}.weight`]!;
      m['edgeq.lowrank'] = JSON.stringify(all);
    }, [], 'E_EDGEQ_LOWRANK'],
    ['not-json', (_h, m) => void (m['edgeq.lowrank'] = '{"a":'), [], 'E_EDGEQ_META'],
    ['array', (_h, m) => void (m['edgeq.lowrank'] = '[]'), [], 'E_EDGEQ_META'],
    ['old-version', (_h, m) => void (m['edgeq.format_version'] = '1'), [], 'E_EDGEQ_LOWRANK'],
    ['also-quantized', (_h, m) => {
      const q = JSON.parse(m['edgeq.qtypes']!) as Record<string, unknown>;
      q[`${O}.weight`] = { qtype: 'int4_g32_sym', bits: 4, groupSize: 32, sym: true, n: 64, k: 64, actOrder: false };
      m['edgeq.qtypes'] = JSON.stringify(q);
    }, [], 'E_EDGEQ_LAYOUT'],
  ];
  for (const [tag, edit, drop, code] of cases) {
    it(tag, async () => {
      const d = mutated(tag, edit, drop);
      const err = await EdgeqCheckpoint.open(d).then(
        async (ck) => {
          await ck.close();
          return null;
        },
        (e: unknown) => e,
      );
      expect(err, tag).toBeInstanceOf(FormatError);
      expect((err as FormatError).code).toBe(code);
    });
  }

  it('an unmodified copy opens (the mutation helper itself is sound)', async () => {
    const ck = await EdgeqCheckpoint.open(mutated('identity', () => undefined));
    expect(ck.lowRank.size).toBe(written.lowRank.size);
    await ck.close();
  });

  it('a format version newer than this build is refused with an upgrade hint', async () => {
    const d = mutated('v3', (_h, m) => void (m['edgeq.format_version'] = '3'));
    await expect(EdgeqCheckpoint.open(d)).rejects.toThrowError(expect.objectContaining({ code: 'E_EDGEQ_VERSION' }));
  });
});
