/** Shared shapes of the safetensors reader, checkpoint and writer. */
import type { StorageDtype } from '../../core/dtype.js';

/** One tensor as declared by a safetensors header, with offsets resolved to absolute file positions. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: StorageDtype;
  readonly shape: readonly number[];
  /** Product of the dims (1 for a scalar, 0 if any dim is 0). */
  readonly numel: number;
  /** Absolute byte position of the first element in `file`. */
  readonly byteOffset: number;
  /** numel × dtype size. */
  readonly byteLength: number;
  /** Path of the file holding the data. */
  readonly file: string;
}

export interface ReadF32Options {
  /** Throw NonFiniteWeightError on the first NaN/±Inf. */
  checkFinite?: boolean;
}

/** What both a single SafetensorsFile and a sharded SafetensorsCheckpoint offer. */
export interface TensorReader {
  readonly path: string;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  /** The tensor's stored bytes (little-endian, exactly byteLength long). */
  readRaw(name: string): Promise<Uint8Array>;
  /** The tensor decoded to float32 (row-major, shape as declared). */
  readF32(name: string, opts?: ReadF32Options): Promise<Float32Array>;
  /** Values [start, start + count) of the tensor in its flat row-major order, decoded to float32. */
  readF32Range?(name: string, start: number, count: number, opts?: ReadF32Options): Promise<Float32Array>;
  close(): Promise<void>;
}
