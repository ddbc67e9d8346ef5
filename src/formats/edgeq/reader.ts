/**
 * Reader of edgeq checkpoint folders (layout: see metadata.ts). Opening reads config.json and the
 * safetensors header and checks every quantized weight's and every low-rank factor's stored tensors (names,
 * dtypes, shapes; each stored tensor belongs to one weight); tensor data is read on demand (readQuantized,
 * readLowRank, readDense). Node.js helpers (files, paths) are imported lazily inside open() and
 * isEdgeqCheckpoint(), so that the class also loads in a browser: EdgeqCheckpoint.fromFile() takes an
 * already-parsed SafetensorsFile (e.g. over in-memory bytes).
 */
import { EdgeqError, FormatError } from '../../core/errors.js';
import type { QuantizedWeight } from '../../qtypes/types.js';
import { unpackCodes } from '../bitpack.js';
import { SafetensorsFile } from '../safetensors/reader.js';
import { factorQType, factorShape, lowRankFactorPrefix, parseLowRank, type EdgeqLowRankType } from './lowrank-meta.js';
import {
  EDGEQ_FORMAT_VERSION_LOWRANK,
  META_FORMAT_VERSION,
  META_LOWRANK,
  META_PROVENANCE,
  META_QTYPES,
  checkFormatVersion,
  edgeqTensorNames,
  edgeqTensorShapes,
  parseProvenance,
  parseQtypes,
  type EdgeqProvenance,
  type EdgeqTensorQType,
} from './metadata.js';

/** A low-rank weight as read: W ≈ U (n, r) · V (r, k); each factor dense fp32 (stored F16) or quantized. */
export interface LowRankWeight {
  n: number;
  k: number;
  r: number;
  u: Float32Array | QuantizedWeight;
  v: Float32Array | QuantizedWeight;
}

export class EdgeqCheckpoint {
  private constructor(
    /** The checkpoint folder. */
    readonly dir: string,
    /** config.json (with its quantization_config). */
    readonly config: Record<string, unknown>,
    /** Quantized weight name ('<module>.weight') -> its quant type. */
    readonly qtypes: ReadonlyMap<string, EdgeqTensorQType>,
    readonly provenance: EdgeqProvenance | null,
    readonly formatVersion: number,
    /** The raw safetensors file (header metadata, stored tensors). */
    readonly file: SafetensorsFile,
    /** Dense tensor names, in file order. */
    readonly denseNames: readonly string[],
    /** Low-rank weight name ('<module>.weight') -> its rank and factor storage (empty before format 2). */
    readonly lowRank: ReadonlyMap<string, EdgeqLowRankType> = new Map(),
  ) {
    this.dense = new Set(denseNames);
  }

  private readonly dense: ReadonlySet<string>;

  static async open(dir: string): Promise<EdgeqCheckpoint> {
    const [{ default: path }, { readSourceConfig }, { MODEL_FILE }] = await Promise.all([import('node:path'), import('./side-files.js'), import('./folder-writer.js')]);
    const config = await readSourceConfig(dir);
    const file = await SafetensorsFile.open(path.join(dir, MODEL_FILE)).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new FormatError('E_NOT_EDGEQ', `no ${MODEL_FILE}`, dir, 'an edgeq checkpoint folder holds config.json and model.safetensors');
      }
      throw err;
    });
    return EdgeqCheckpoint.fromFile(file, config, dir);
  }

  /**
   * An edgeq checkpoint over an opened model.safetensors and its config.json object; `dir` labels it.
   * Takes ownership of `file` (closed on failure or close()).
   */
  static async fromFile(file: SafetensorsFile, config: Record<string, unknown>, dir: string): Promise<EdgeqCheckpoint> {
    try {
      const fp = file.path;
      const version = checkFormatVersion(file.metadata[META_FORMAT_VERSION], fp);
      const qtypes = parseQtypes(file.metadata[META_QTYPES], fp);
      const provenance = parseProvenance(file.metadata[META_PROVENANCE], fp);
      const lowRank = parseLowRank(file.metadata[META_LOWRANK], fp);
      if (lowRank.size > 0 && version < EDGEQ_FORMAT_VERSION_LOWRANK) {
        throw new FormatError('E_EDGEQ_LOWRANK', `${META_LOWRANK} needs ${META_FORMAT_VERSION} ≥ ${EDGEQ_FORMAT_VERSION_LOWRANK}, the file says ${version}`, fp);
      }
      const owned = new Set<string>();
      const expect = (owner: string, tensor: string, dtype: string, shape: readonly number[] | null): void => {
        if (shape === null) {
          if (file.has(tensor)) throw new FormatError('E_EDGEQ_LAYOUT', `'${tensor}' present but ${owner} does not use it`, fp);
          return;
        }
        const info = file.has(tensor) ? file.info(tensor) : undefined;
        if (!info) throw new FormatError('E_EDGEQ_LAYOUT', `${owner} has no '${tensor}'`, fp);
        if (info.dtype !== dtype || info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
          throw new FormatError(
            'E_EDGEQ_LAYOUT',
            `'${tensor}' is ${info.dtype} [${info.shape.join(', ')}], expected ${dtype} [${shape.join(', ')}]`,
            fp,
          );
        }
        if (owned.has(tensor)) throw new FormatError('E_EDGEQ_LAYOUT', `'${tensor}' is claimed twice (by ${owner} and another weight)`, fp);
        owned.add(tensor);
      };
      const expectQuantized = (owner: string, prefix: string, t: EdgeqTensorQType): void => {
        const names = edgeqTensorNames(prefix);
        const shapes = edgeqTensorShapes(t);
        expect(owner, names.qweight, 'U8', shapes.qweight);
        expect(owner, names.scales, 'F16', shapes.scales);
        expect(owner, names.qzeros, 'U8', shapes.qzeros);
        expect(owner, names.gIdx, 'I32', shapes.gIdx);
      };
      for (const [name, t] of qtypes) {
        expectQuantized(`quantized weight '${name}'`, name.slice(0, -'.weight'.length), t);
        if (file.has(name)) throw new FormatError('E_EDGEQ_LAYOUT', `'${name}' is stored both quantized and dense`, fp);
      }
      for (const [name, t] of lowRank) {
        if (qtypes.has(name)) throw new FormatError('E_EDGEQ_LOWRANK', `'${name}' is listed both quantized and low-rank`, fp);
        if (file.has(name)) throw new FormatError('E_EDGEQ_LOWRANK', `'${name}' is stored both low-rank and dense`, fp);
        for (const which of ['u', 'v'] as const) {
          const owner = `low-rank weight '${name}' (factor ${which})`;
          const prefix = lowRankFactorPrefix(name, which);
          const q = factorQType(t, which);
          if (q === null) {
            expect(owner, `${prefix}.weight`, 'F16', factorShape(t, which));
            for (const tn of Object.values(edgeqTensorNames(prefix))) expect(owner, tn, '', null);
          } else {
            expectQuantized(owner, prefix, q);
            expect(owner, `${prefix}.weight`, 'F16', null);
          }
        }
      }
      const denseNames = [...file.tensors.keys()].filter((n) => !owned.has(n));
      return new EdgeqCheckpoint(dir, config, qtypes, provenance, version, file, denseNames, lowRank);
    } catch (err) {
      await file.close().catch(() => undefined);
      throw err;
    }
  }

  isQuantized(name: string): boolean {
    return this.qtypes.has(name);
  }

  isLowRank(name: string): boolean {
    return this.lowRank.has(name);
  }

  /** Names of all logical tensors: quantized weights, low-rank weights and dense tensors. */
  get tensorNames(): string[] {
    return [...this.qtypes.keys(), ...this.lowRank.keys(), ...this.denseNames];
  }

  /**
   * Low-rank weight `name` ('<module>.weight'): its factors U (n, r) and V (r, k), each dense fp32 (stored
   * F16) or an unpacked QuantizedWeight, exactly as written.
   */
  async readLowRank(name: string): Promise<LowRankWeight> {
    const t = this.lowRank.get(name);
    if (!t) {
      throw new EdgeqError(
        'E_NOT_LOWRANK',
        `'${name}' is not a low-rank weight of ${this.dir}`,
        this.qtypes.has(name) ? 'it is stored quantized; use readQuantized()' : this.dense.has(name) ? 'it is stored dense; use readDense()' : 'names are HF weight names such as model.layers.0.mlp.up_proj.weight',
      );
    }
    const factor = async (which: 'u' | 'v'): Promise<Float32Array | QuantizedWeight> => {
      const prefix = lowRankFactorPrefix(name, which);
      const q = factorQType(t, which);
      return q ? this.readQuantizedAs(prefix, q) : this.file.readF32(`${prefix}.weight`);
    };
    return { n: t.n, k: t.k, r: t.rank, u: await factor('u'), v: await factor('v') };
  }

  /** The quantized weight `name` ('<module>.weight'), unpacked. Checks zeros and g_idx ranges. */
  async readQuantized(name: string): Promise<QuantizedWeight> {
    const t = this.qtypes.get(name);
    if (!t) {
      throw new EdgeqError(
        'E_NOT_QUANTIZED',
        `'${name}' is not a quantized weight of ${this.dir}`,
        this.file.has(name) ? 'it is stored dense; use readDense()' : 'names are HF weight names such as model.layers.0.mlp.up_proj.weight',
      );
    }
    return this.readQuantizedAs(name.slice(0, -'.weight'.length), t);
  }

  private async readQuantizedAs(prefix: string, t: EdgeqTensorQType): Promise<QuantizedWeight> {
    const fp = this.file.path;
    const names = edgeqTensorNames(prefix);
    const groupSize = t.groupSize === -1 ? t.k : t.groupSize;
    const numGroups = Math.ceil(t.k / groupSize);
    const codes = unpackCodes(await this.file.readRaw(names.qweight), t.n, t.k, t.bits);
    const scales = await this.file.readF32(names.scales);
    let zeros: Uint8Array;
    if (t.sym) {
      zeros = new Uint8Array(t.n * numGroups).fill(1 << (t.bits - 1));
    } else {
      zeros = new Uint8Array(await this.file.readRaw(names.qzeros));
      const limit = 1 << t.bits;
      const bad = zeros.findIndex((z) => z >= limit);
      if (bad >= 0) throw new FormatError('E_EDGEQ_DATA', `'${names.qzeros}'[${bad}] = ${zeros[bad]} does not fit in ${t.bits} bits`, fp);
    }
    let gIdx: Int32Array | null = null;
    if (t.actOrder) {
      const raw = await this.file.readRaw(names.gIdx);
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      gIdx = new Int32Array(t.k);
      for (let c = 0; c < t.k; c++) {
        const v = dv.getInt32(c * 4, true);
        if (v < 0 || v >= numGroups) throw new FormatError('E_EDGEQ_DATA', `'${names.gIdx}'[${c}] = ${v} is outside [0, ${numGroups})`, fp);
        gIdx[c] = v;
      }
    }
    return {
      qtype: t.qtype,
      grid: { bits: t.bits, groupSize: t.groupSize, sym: t.sym },
      n: t.n,
      k: t.k,
      groupSize,
      numGroups,
      codes,
      scales,
      zeros,
      gIdx,
    };
  }

  /** Dense tensor `name` as float32. */
  async readDense(name: string): Promise<Float32Array> {
    if (this.qtypes.has(name)) {
      throw new EdgeqError('E_QUANTIZED', `'${name}' is stored quantized`, 'use readQuantized() and dequantize');
    }
    if (this.lowRank.has(name)) throw new EdgeqError('E_LOWRANK', `'${name}' is stored as low-rank factors`, 'use readLowRank()');
    if (!this.dense.has(name)) throw new FormatError('E_TENSOR_NOT_FOUND', `no tensor named '${name}'`, this.file.path);
    return this.file.readF32(name);
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}

/**
 * True when `dir` is an edgeq checkpoint: config.json says quant_method "edgeq", or model.safetensors
 * carries edgeq metadata. Never throws for unreadable or foreign folders (returns false).
 */
export async function isEdgeqCheckpoint(dir: string): Promise<boolean> {
  const [{ promises: fsp }, { default: path }, { MODEL_FILE }] = await Promise.all([import('node:fs'), import('node:path'), import('./folder-writer.js')]);
  try {
    const cfg = JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8')) as unknown;
    const qc = (cfg as Record<string, unknown> | null)?.['quantization_config'] as Record<string, unknown> | undefined;
    if (qc && qc['quant_method'] === 'edgeq') return true;
  } catch {
    // fall through to the header check
  }
  let file: SafetensorsFile | undefined;
  try {
    file = await SafetensorsFile.open(path.join(dir, MODEL_FILE));
    return file.metadata[META_FORMAT_VERSION] !== undefined;
  } catch {
    return false;
  } finally {
    await file?.close().catch(() => undefined);
  }
}
