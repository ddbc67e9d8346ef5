/**
 * One linear layer through the chosen method: which calibration statistics it needs (GPTQ: the Hessian
 * 2XᵀX/N; importance-weighted RTN: mean x² per input channel; plain RTN and AWQ's final step: none), and
 * the solve. Statistics are accumulated here; the solvers in src/quantizers are pure.
 *
 * Output formats that cannot store every zero point (GPTQ v1 stores zero − 1, so 0 is impossible) ask for
 * `minZero: 1`; see enforceMinZero.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnsupportedError } from '../core/errors.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { dequantValue, fp16Ceil, FP16_MAX, FP16_MIN_POSITIVE, maxQ, quantCode } from '../qtypes/int-grid.js';
import type { Linalg64 } from '../quantizers/linalg64.js';
import type { GridSpec, QuantizedWeight } from '../qtypes/types.js';
import { gptqPrepare, gptqSolve, type GptqHinv } from '../quantizers/gptq.js';
import { HessianAccumulator } from '../quantizers/hessian.js';
import { quantizeRtn } from '../quantizers/rtn.js';
import type { QuantMethod } from './plan.js';

export type StatsKind = 'hessian' | 'sqmean';

export interface LayerStats {
  readonly kind: StatsKind;
  add(x: Float32Array, rows: number): void;
}

/** Mean x² per input channel (llama.cpp's imatrix statistic). */
export class SquareMeanAccumulator implements LayerStats {
  readonly kind = 'sqmean';
  private readonly sum: Float64Array;
  private rows = 0;
  constructor(readonly k: number) {
    this.sum = new Float64Array(k);
  }
  add(x: Float32Array, rows: number): void {
    const k = this.k;
    for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) this.sum[c] += x[r * k + c] * x[r * k + c];
    this.rows += rows;
  }
  mean(): Float32Array {
    return Float32Array.from(this.sum, (s) => (this.rows ? s / this.rows : 0));
  }
}

/**
 * GPTQ's statistic. Its Hinv is formed once and shared by every weight of the group (q/k/v, gate/up: one
 * input, one H); with `inPlace` (H living in Linalg64.matrix(k)) H is overwritten by it, so no further
 * statistics may be added after the first solve.
 */
export class HessianStats implements LayerStats {
  readonly kind = 'hessian';
  private hinv: GptqHinv | null = null;
  /** H as accumulated, copied before the in-place inversion when EDGEQ_DUMP_GPTQ is set. */
  dumpH: Float64Array | null = null;
  constructor(
    readonly acc: HessianAccumulator,
    private readonly inPlace: boolean,
  ) {}
  add(x: Float32Array, rows: number): void {
    if (this.hinv) throw new Error('Hessian statistics were already consumed by a GPTQ solve');
    this.acc.addBatch(x, rows);
  }
  /** H = 2XᵀX/N itself, for a low-rank solve in the same group (before any GPTQ solve consumes it). */
  xtx(): Float64Array {
    if (this.hinv && this.inPlace) throw new Error('Hessian statistics were already consumed by a GPTQ solve');
    return this.acc.H;
  }
  hinvFor(o: { damp: number; actOrder?: boolean; linalg?: Linalg64; name?: string }): GptqHinv {
    if (!this.hinv && gptqDumpDir()) this.dumpH = this.acc.H.slice(0, this.acc.k * this.acc.k);
    this.hinv ??= gptqPrepare(this.acc.H, this.acc.k, { ...o, inPlace: this.inPlace });
    return this.hinv;
  }
}

/** Debug hook: EDGEQ_DUMP_GPTQ=dir dumps every GPTQ linear (scripts/bench-gptq-reference.mjs). */
export function gptqDumpDir(): string | undefined {
  return process.env.EDGEQ_DUMP_GPTQ || undefined;
}

/**
 * Writes `<name>.json` (shapes, grid, nsamples, damping, loss) and raw little-endian `<name>.W.f32` (n, k) as
 * the solver received it, `.H.f64` (k, k) = 2XᵀX/N as accumulated (undamped), `.Wq.f32` (the dequantized
 * result), `.codes.u8` (n, k), `.scales.f32` and `.zeros.u8` (n, groups).
 */
export function dumpGptqLinear(dir: string, name: string, w: Float32Array, stats: HessianStats, q: QuantizedWeight, wq: Float32Array, info: Record<string, unknown>): void {
  const H = stats.dumpH ?? stats.xtx();
  fs.mkdirSync(dir, { recursive: true });
  const put = (ext: string, a: ArrayBufferView) => fs.writeFileSync(path.join(dir, `${name}.${ext}`), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  put('W.f32', w);
  put('H.f64', H.subarray(0, q.k * q.k));
  put('Wq.f32', wq.subarray(0, q.n * q.k));
  put('codes.u8', q.codes);
  put('scales.f32', q.scales);
  put('zeros.u8', q.zeros);
  const meta = { name, n: q.n, k: q.k, nsamples: stats.acc.nsamples, bits: q.grid.bits, groupSize: q.groupSize, sym: q.grid.sym, gIdx: !!q.gIdx, ...info };
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(meta, null, 1));
}

export function statsFor(method: QuantMethod, imatrix: boolean): StatsKind | null {
  if (method === 'gptq') return 'hessian';
  if (method === 'rtn' && imatrix) return 'sqmean';
  return null;
}

/**
 * `storage` (Hessian only): where H lives, e.g. linalg.matrix(k); GPTQ then inverts it in place (the
 * statistics of one group at a time: the next group's createStats reuses the same storage).
 */
export function createStats(kind: StatsKind, k: number, backend: MatmulBackend, storage?: Float64Array): LayerStats {
  return kind === 'hessian' ? new HessianStats(new HessianAccumulator(k, { backend, storage }), !!storage) : new SquareMeanAccumulator(k);
}

export interface LinearQuantOptions {
  name: string;
  damp?: number;
  actOrder?: boolean;
  backend: MatmulBackend;
  /** Float64 Cholesky/inverse for GPTQ (the WASM one; the TS oracle is the default). */
  linalg?: Linalg64;
  /** Smallest asymmetric zero point the output format can store (1 for GPTQ v1; default 0). */
  minZero?: 0 | 1;
  /** The caller no longer needs w: GPTQ may solve in it (then w ends holding Q, returned as dequantized). */
  inPlace?: boolean;
}

export interface LinearQuantResult {
  q: QuantizedWeight;
  /** GPTQ's Hessian-weighted loss (before any zero-point re-gridding). */
  loss?: number;
  /** Groups moved to a coarser zero ≥ 1 grid because their zero point 0 could not be stored (minZero 1). */
  regriddedGroups?: number;
  /** dequantize(q) (n, k), when the solver had it at hand (GPTQ: its working copy); else compute it. */
  dequantized?: Float32Array;
}

export function quantizeLinear(method: QuantMethod, w: Float32Array, n: number, k: number, grid: GridSpec, stats: LayerStats | null, opts: LinearQuantOptions): LinearQuantResult {
  let res: LinearQuantResult;
  if (method === 'gptq') {
    if (!(stats instanceof HessianStats)) throw new Error('GPTQ needs Hessian statistics');
    const hinv = stats.hinvFor({ damp: opts.damp ?? 0.01, actOrder: opts.actOrder, linalg: opts.linalg, name: opts.name });
    const w0 = gptqDumpDir() ? w.slice(0, n * k) : null; // the solve may overwrite w
    const r = gptqSolve(w, n, k, hinv, grid, { actOrder: opts.actOrder, backend: opts.backend, name: opts.name, returnDequantized: true, inPlace: opts.inPlace });
    if (w0) dumpGptqLinear(gptqDumpDir()!, opts.name, w0, stats, r.q, r.dequantized!, { damp: opts.damp ?? 0.01, dampUsed: r.dampUsed, loss: r.loss, actOrder: !!opts.actOrder });
    res = { q: r.q, loss: r.loss, dequantized: r.dequantized };
    // act-order that happened to keep the natural column order: store the (default) g_idx the plan promised
    if (opts.actOrder && r.q.gIdx === null && r.q.groupSize < k) r.q.gIdx = Int32Array.from({ length: k }, (_, c) => Math.floor(c / r.q.groupSize));
  } else {
    const importance = stats instanceof SquareMeanAccumulator ? stats.mean() : undefined;
    res = { q: quantizeRtn(w, n, k, grid, { importance, name: opts.name }) };
  }
  if ((opts.minZero ?? 0) >= 1 && !grid.sym) {
    // RTN re-grids from the weights it saw; GPTQ from its own solution (its error feedback is already spent).
    const regridded = enforceMinZero(res.q, method === 'gptq' ? null : w, opts.name);
    if (regridded > 0) {
      res.regriddedGroups = regridded;
      delete res.dequantized; // no longer what q dequantizes to
    }
  }
  return res;
}

/**
 * Make every zero point of an asymmetric weight ≥ 1, in place. A zero of 0 arises when a group has (almost)
 * no negative weight. When the group leaves its top code 2^bits − 1 unused the change is lossless (zero 1,
 * codes + 1). Otherwise the group moves to the zero-1 grid that still spans its range, scale' =
 * fp16Ceil(max / (maxq − 1)) (so the largest value keeps the top code and nothing clips: with zero 0 every
 * value is ≥ −scale/2), and its codes are re-rounded from `ref` (n, k) — the weights the quantizer saw — or,
 * when ref is null, from the weight's own dequantized values. Returns how many groups were re-gridded.
 */
export function enforceMinZero(q: QuantizedWeight, ref: Float32Array | null, name?: string): number {
  const { n, k, numGroups: G, groupSize: g, gIdx } = q;
  const mq = maxQ(q.grid.bits);
  let regridded = 0;
  const cols: number[][] = Array.from({ length: G }, () => []);
  for (let c = 0; c < k; c++) cols[gIdx ? gIdx[c]! : Math.floor(c / g)]!.push(c);
  for (let r = 0; r < n; r++) {
    for (let gi = 0; gi < G; gi++) {
      const zi = r * G + gi;
      if (q.zeros[zi] !== 0) continue;
      const row = r * k;
      const members = cols[gi]!;
      if (members.every((c) => q.codes[row + c] !== mq)) {
        for (const c of members) q.codes[row + c]! += 1;
        q.zeros[zi] = 1;
        continue;
      }
      const value = (c: number): number => (ref ? ref[row + c]! : dequantValue(q.scales[zi]!, q.codes[row + c]!, 0));
      let hi = 0;
      for (const c of members) hi = Math.max(hi, value(c));
      const raw = hi / (mq - 1);
      if (!(raw <= FP16_MAX)) {
        throw new UnsupportedError('E_SCALE_RANGE', `${name ? `tensor '${name}': ` : ''}row ${r}, group ${gi} needs a scale ${raw} beyond fp16 once its zero point is raised to 1`, 'keep this tensor in fp16, or export the edgeq format');
      }
      const scale = raw <= FP16_MIN_POSITIVE ? FP16_MIN_POSITIVE : fp16Ceil(raw);
      for (const c of members) q.codes[row + c] = quantCode(value(c), scale, 1, mq);
      q.scales[zi] = scale;
      q.zeros[zi] = 1;
      regridded++;
    }
  }
  return regridded;
}
