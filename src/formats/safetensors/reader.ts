/**
 * One safetensors file. Opening reads only the 8-byte prefix and the JSON header; tensor data is read
 * on demand, one tensor (or one element range) at a time, through a size-checked ByteSource.
 */
import { HOST_LITTLE_ENDIAN, STORAGE_DTYPES, toFloat32 } from '../../core/dtype.js';
import { FormatError, NonFiniteWeightError } from '../../core/errors.js';
import type { ByteSource } from '../../store/byte-source.js';
import { parseHeaderLength, parseSafetensorsHeader } from './header.js';
import { SAFETENSORS_LIMITS } from './limits.js';
import type { ReadF32Options, TensorInfo, TensorReader } from './types.js';

export class SafetensorsFile implements TensorReader {
  private constructor(
    private readonly source: ByteSource,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
    /** Length of the JSON header (N). */
    readonly headerLength: number,
    /** Absolute position where the data region starts (8 + N). */
    readonly dataStart: number,
  ) {}

  get path(): string {
    return this.source.path;
  }

  /** Size of the whole file in bytes. */
  get size(): number {
    return this.source.size;
  }

  static async open(path: string): Promise<SafetensorsFile> {
    // imported lazily: this module must also load in a browser (fromSource with in-memory bytes)
    const { FileByteSource } = await import('../../store/file-byte-source.js');
    return SafetensorsFile.fromSource(await FileByteSource.open(path));
  }

  /** Parse the header of any ByteSource. Takes ownership: the source is closed on failure or close(). */
  static async fromSource(source: ByteSource): Promise<SafetensorsFile> {
    try {
      if (source.size < SAFETENSORS_LIMITS.prefixBytes) {
        throw new FormatError(
          'E_TRUNCATED',
          `file is ${source.size} bytes, too short for the 8-byte safetensors header length`,
          source.path,
        );
      }
      const prefix = await source.read(0, SAFETENSORS_LIMITS.prefixBytes);
      const n = parseHeaderLength(prefix, source.size, source.path);
      const headerBytes = await source.read(SAFETENSORS_LIMITS.prefixBytes, n);
      const h = parseSafetensorsHeader(headerBytes, source.size, source.path);
      return new SafetensorsFile(source, h.tensors, h.metadata, h.headerLength, h.dataStart);
    } catch (err) {
      await source.close().catch(() => undefined);
      throw err;
    }
  }

  /** The tensor's description; FormatError 'E_TENSOR_NOT_FOUND' if the file has no such tensor. */
  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new FormatError('E_TENSOR_NOT_FOUND', `no tensor named '${name}'`, this.path);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  async readRaw(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.source.read(t.byteOffset, t.byteLength);
  }

  async readF32(name: string, opts: ReadF32Options = {}): Promise<Float32Array> {
    const t = this.info(name);
    return this.decodeRange(t, 0, t.numel, opts);
  }

  /**
   * Elements [start, start + count) of the flattened tensor as float32: lets callers stream a huge
   * tensor (e.g. an embedding) a block of rows at a time.
   */
  async readF32Range(name: string, start: number, count: number, opts: ReadF32Options = {}): Promise<Float32Array> {
    const t = this.info(name);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > t.numel) {
      throw new RangeError(`readF32Range('${name}'): range [${start}, ${start + count}) outside 0..${t.numel}`);
    }
    return this.decodeRange(t, start, count, opts);
  }

  async close(): Promise<void> {
    await this.source.close();
  }

  private async decodeRange(t: TensorInfo, start: number, count: number, opts: ReadF32Options): Promise<Float32Array> {
    const size = STORAGE_DTYPES[t.dtype].bytes;
    const raw = await this.source.read(t.byteOffset + start * size, count * size);
    // F32 on a little-endian host: the freshly read buffer already is the answer (no copy)
    const out =
      t.dtype === 'F32' && HOST_LITTLE_ENDIAN && raw.byteOffset % 4 === 0
        ? new Float32Array(raw.buffer, raw.byteOffset, count)
        : toFloat32(raw, t.dtype, count);
    if (opts.checkFinite) assertFinite(t.name, out, start);
    return out;
  }
}

/** Throw NonFiniteWeightError at the first NaN/±Inf (index reported in the whole tensor's flat order). */
export function assertFinite(name: string, values: Float32Array, indexBase = 0): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) throw new NonFiniteWeightError(name, indexBase + i, v); // NaN and ±Inf
  }
}
