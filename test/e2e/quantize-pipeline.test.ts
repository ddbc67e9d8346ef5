/**
 * The quantization pipeline through the real CLI (in-process): every method writes a checkpoint that
 * `edgeq eval` loads with a sane perplexity; the dry-run plan's bytes are the written file's bytes exactly;
 * AutoGPTQ / AutoAWQ folders dequantize, through the transcribed upstream unpack code
 * (test/helpers/upstream-unpack.ts), to the weights of the edgeq checkpoint of the same run; and bad
 * requests are refused before any work, leaving existing folders untouched. Small calibration (16×128,
 * AWQ 4×64) and one kernel thread keep the file well under a minute on two cores.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeqCheckpoint } from '../../src/formats/edgeq/reader.js';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import { autogptqDequantize, dequantize_gemm, expectedDequantKN, type I32Tensor } from '../helpers/upstream-unpack.js';
import { runCli, type CliRun } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-quantize-e2e-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const out = (name: string): string => path.join(tmp, name);
const CALIB = ['--calib-samples', '16', '--calib-seqlen', '128'];
const STORIES = ['-m', 'stories260K', '--bits', '4', '-g', '32', '--fallback'];

async function cli(args: string[]): Promise<CliRun> {
  const r = await runCli([...args, '--threads', '1']);
  if (r.code !== 0) throw new Error(`edgeq ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}
const json = <T = Record<string, any>>(r: CliRun): T => JSON.parse(r.stdout) as T;

async function perplexity(model: string): Promise<number> {
  const r = json(await cli(['eval', '--model', model, '--max-windows', '4', '--json', '--no-speed', '--no-record']));
  return r.eval.ppl as number;
}

/** Sum of every stored tensor's bytes in <dir>/model.safetensors. */
async function storedBytes(dir: string): Promise<number> {
  const f = await SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  try {
    return [...f.tensors.values()].reduce((a, t) => a + t.byteLength, 0);
  } finally {
    await f.close();
  }
}

async function planBytes(args: string[]): Promise<number> {
  return json(await cli(['quantize', ...args, '--dry-run', '--json'])).plan.bytes as number;
}

describe('edgeq quantize: every method yields a checkpoint eval can load', () => {
  let fpPpl: number;
  beforeAll(async () => {
    fpPpl = await perplexity('stories260K');
  });

  const runs: { name: string; args: string[] }[] = [
    { name: 'rtn', args: ['--method', 'rtn'] },
    { name: 'rtn-imatrix', args: ['--method', 'rtn', '--imatrix', ...CALIB] },
    { name: 'gptq', args: ['--method', 'gptq', ...CALIB] },
    { name: 'gptq-act-order', args: ['--method', 'gptq', '--act-order', ...CALIB] },
    { name: 'awq', args: ['--method', 'awq', '--calib-samples', '4', '--calib-seqlen', '64'] },
  ];
  for (const run of runs) {
    it(`${run.name}: perplexity finite and near fp; plan bytes = file bytes; peak RSS reported`, async () => {
      const dir = out(run.name);
      const args = [...STORIES, ...run.args];
      const report = json(await cli(['quantize', ...args, '-o', dir, '--json']));
      expect(report.format).toBe('edgeq');
      expect(report.peakRssBytes).toBeGreaterThan(0);
      expect(report.peakMemory.total).toBeGreaterThan(0);
      expect(report.peakMemory).toEqual(report.plan.peakMemory);
      expect(report.layers).toHaveLength(35);
      const ppl = await perplexity(dir);
      expect(Number.isFinite(ppl)).toBe(true);
      expect(ppl).toBeLessThan(fpPpl * 1.5);
      expect(ppl).toBeGreaterThan(fpPpl / 1.5);
      expect(await storedBytes(dir)).toBe(await planBytes(args));
    });
  }
});

// ------------------------------------------------------------------------------------------------------
// AutoGPTQ / AutoAWQ layouts vs the edgeq checkpoint of the same run

function i32(raw: Uint8Array, shape: readonly number[]): I32Tensor {
  return { data: new Int32Array(Uint8Array.from(raw).buffer), shape: [shape[0]!, shape[1]!] };
}
const u16 = (raw: Uint8Array): Uint16Array => new Uint16Array(Uint8Array.from(raw).buffer);

/**
 * Compare the upstream dequantization [K, N] of `name` with the edgeq checkpoint's weight (fp16-rounded, as
 * torch computes it). Returns the number of differing weights; every difference must lie in a group whose
 * edgeq zero point is 0 (which GPTQ v1 cannot store, so the pipeline re-grids it for that format).
 */
async function compareWithEdgeq(edgeq: EdgeqCheckpoint, name: string, upstream: Float64Array): Promise<number> {
  const q = await edgeq.readQuantized(name);
  const want = expectedDequantKN(q);
  expect(upstream.length).toBe(want.length);
  let diff = 0;
  for (let i = 0; i < want.length; i++) {
    if (upstream[i] === want[i]) continue;
    const c = Math.floor(i / q.n);
    const r = i % q.n;
    const g = q.gIdx ? q.gIdx[c]! : Math.floor(c / q.groupSize);
    expect(q.zeros[r * q.numGroups + g], `${name} [k=${c}, n=${r}] differs outside a zero-0 group`).toBe(0);
    diff++;
  }
  return diff;
}

const LINEARS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
const modules = (layers: number[]): string[] => layers.flatMap((l) => LINEARS.map((m) => `model.layers.${l}.${m}`));

/** Quantize brown-llama-7m into edgeq and `format` with the same settings; check config, bytes, weights. */
async function exportPair(tag: string, format: 'autogptq' | 'autoawq', args: string[]) {
  const base = ['-m', 'brown-llama-7m', ...args];
  const edgeqDir = out(`${tag}-edgeq`);
  const fmtDir = out(`${tag}-${format}`);
  await cli(['quantize', ...base, '-o', edgeqDir, '--json']);
  const report = json(await cli(['quantize', ...base, '--format', format, '-o', fmtDir, '--json']));
  expect(report.format).toBe(format);
  expect(await storedBytes(fmtDir)).toBe(await planBytes([...base, '--format', format]));
  const config = JSON.parse(fs.readFileSync(path.join(fmtDir, 'config.json'), 'utf8'));
  expect(config.torch_dtype).toBe('float16');
  const file = await SafetensorsFile.open(path.join(fmtDir, 'model.safetensors'));
  const edgeq = await EdgeqCheckpoint.open(edgeqDir);
  return { report, config, file, edgeq, edgeqDir, fmtDir };
}

describe('--format autogptq / autoawq', () => {
  it('autogptq (GPTQ, act-order, g128): quantization_config, provenance, and upstream dequant = edgeq weights', async () => {
    const { config, file, edgeq, fmtDir } = await exportPair('gptq-ao', 'autogptq', ['--method', 'gptq', '--act-order', '--bits', '4', '-g', '128', '--calib-samples', '4', '--calib-seqlen', '64']);
    try {
      const qc = config.quantization_config;
      expect(qc).toMatchObject({ quant_method: 'gptq', checkpoint_format: 'gptq', bits: 4, group_size: 128, desc_act: true, sym: false });
      expect(JSON.parse(fs.readFileSync(path.join(fmtDir, 'quantize_config.json'), 'utf8'))).toEqual(qc);
      const prov = JSON.parse(file.metadata['edgeq.provenance']!);
      expect(prov).toMatchObject({ method: 'gptq', bits: 4, groupSize: 128, format: 'AutoGPTQ' });
      expect(prov.calibration).toMatchObject({ name: 'brown', samples: 4, seqlen: 64 });
      let diff = 0;
      for (const m of modules([0, 5])) {
        const info = (n: string) => file.tensors.get(`${m}.${n}`)!;
        const gIdx = new Int32Array(Uint8Array.from(await file.readRaw(`${m}.g_idx`)).buffer);
        expect(gIdx.some((g, c) => g !== Math.floor(c / 128))).toBe(true); // a real act-order g_idx
        const dq = autogptqDequantize(
          i32(await file.readRaw(`${m}.qweight`), info('qweight').shape),
          i32(await file.readRaw(`${m}.qzeros`), info('qzeros').shape),
          u16(await file.readRaw(`${m}.scales`)),
          gIdx,
          4,
        );
        diff += await compareWithEdgeq(edgeq, `${m}.weight`, dq.weight);
      }
      expect(diff).toBe(0);
    } finally {
      await file.close();
      await edgeq.close();
    }
  });

  it('autoawq (RTN g128): quantization_config and upstream dequant = edgeq weights', async () => {
    const { config, file, edgeq } = await exportPair('rtn-awq', 'autoawq', ['--method', 'rtn', '--bits', '4', '-g', '128']);
    try {
      expect(config.quantization_config).toMatchObject({ quant_method: 'awq', zero_point: true, group_size: 128, bits: 4, version: 'gemm' });
      expect(JSON.parse(file.metadata['edgeq.provenance']!)).toMatchObject({ method: 'rtn', format: 'AutoAWQ' });
      for (const m of modules([0, 5])) {
        const info = (n: string) => file.tensors.get(`${m}.${n}`)!;
        const dq = dequantize_gemm(
          i32(await file.readRaw(`${m}.qweight`), info('qweight').shape),
          i32(await file.readRaw(`${m}.qzeros`), info('qzeros').shape),
          u16(await file.readRaw(`${m}.scales`)),
          4,
          128,
        );
        expect(await compareWithEdgeq(edgeq, `${m}.weight`, dq.weight)).toBe(0);
      }
    } finally {
      await file.close();
      await edgeq.close();
    }
  });

  it('autogptq 2-bit: groups with zero point 0 are re-gridded (not refused), and only those differ', async () => {
    const { report, file, edgeq } = await exportPair('rtn2', 'autogptq', ['--method', 'rtn', '--bits', '2', '-g', '32']);
    try {
      const layers = report.layers as { name: string; regriddedGroups?: number }[];
      const regridded = layers.reduce((a, l) => a + (l.regriddedGroups ?? 0), 0);
      expect(regridded).toBeGreaterThan(0);
      let diff = 0;
      // the re-gridded tensors, and one that was not
      const names = [...layers.filter((l) => l.regriddedGroups).map((l) => l.name), layers.find((l) => !l.regriddedGroups)!.name];
      for (const t of names) {
        const m = t.slice(0, -'.weight'.length);
        const info = (n: string) => file.tensors.get(`${m}.${n}`)!;
        const dq = autogptqDequantize(
          i32(await file.readRaw(`${m}.qweight`), info('qweight').shape),
          i32(await file.readRaw(`${m}.qzeros`), info('qzeros').shape),
          u16(await file.readRaw(`${m}.scales`)),
          new Int32Array(Uint8Array.from(await file.readRaw(`${m}.g_idx`)).buffer),
          2,
        );
        diff += await compareWithEdgeq(edgeq, t, dq.weight);
      }
      expect(diff).toBeGreaterThan(0);
      expect(diff).toBeLessThanOrEqual(regridded * 32);
    } finally {
      await file.close();
      await edgeq.close();
    }
  });

  it('refuses, before any work, what the layouts cannot hold', async () => {
    const refused = async (args: string[], ...needles: string[]) => {
      const dir = out(`refused-${needles[0]}`);
      const r = await runCli(['quantize', ...args, '-o', dir, '--threads', '1']);
      expect(r.code, r.stderr).toBe(3);
      for (const n of needles) expect(r.stderr).toContain(n);
      expect(r.stderr).toMatch(/\nhint: /);
      expect(fs.existsSync(dir)).toBe(false);
    };
    await refused([...STORIES, '--method', 'rtn', '--format', 'autogptq'], 'autogptq', 'model.layers.0.mlp.down_proj.weight', '--fallback');
    await refused([...STORIES, '--method', 'rtn', '--format', 'autoawq'], 'autoawq', '--fallback');
    await refused(['-m', 'brown-llama-7m', '--method', 'rtn', '--bits', '3', '-g', '128', '--format', 'autoawq'], '4-bit');
    await refused(['-m', 'brown-llama-7m', '--method', 'gptq', '--act-order', '--bits', '4', '-g', '128', '--format', 'autoawq', ...CALIB], 'act-order');
  });
});

describe('edgeq quantize refusals', () => {
  it('an existing output folder is refused without --overwrite and left untouched', async () => {
    const dir = out('existing');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'precious');
    const r = await runCli(['quantize', ...STORIES, '--method', 'rtn', '-o', dir, '--threads', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('already exists');
    expect(r.stderr).toContain('--overwrite');
    expect(fs.readdirSync(dir)).toEqual(['keep.txt']);
    expect(fs.readFileSync(path.join(dir, 'keep.txt'), 'utf8')).toBe('precious');
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith('.existing'))).toEqual([]); // no temp folder left
    await cli(['quantize', ...STORIES, '--method', 'rtn', '-o', dir, '--overwrite', '--json']);
    expect(fs.existsSync(path.join(dir, 'keep.txt'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'model.safetensors'))).toBe(true);
  });

  it('a group size that does not divide a tensor (without --fallback) exits 3 naming the tensor', async () => {
    const dir = out('bad-group');
    const r = await runCli(['quantize', '-m', 'stories260K', '--method', 'rtn', '--bits', '4', '-g', '32', '-o', dir, '--threads', '1']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('model.layers.0.mlp.down_proj.weight');
    expect(r.stderr).toContain('k=172');
    expect(r.stderr).toMatch(/\nhint: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(dir)).toBe(false);
  });
});
