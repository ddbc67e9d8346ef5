/**
 * Streaming, atomic safetensors writer.
 *
 * The header must list every tensor's offsets, so all tensors (name, dtype, shape) are declared up
 * front; their bytes are then written in declaration order, whole or in chunks, so a large model never
 * has to sit in memory. Data is laid out contiguously in declaration order (as the reference
 * implementation requires); the JSON header is space-padded so the data region starts on an 8-byte
 * boundary. Output goes to a temp file that is renamed over the destination by finish(); any error
 * (or abort()) deletes the temp file and leaves an existing destination untouched.
 */
import { HOST_LITTLE_ENDIAN, fromFloat32, type StorageDtype } from '../../core/dtype.js';
import { openAtomicFile, type AtomicFile } from '../../core/atomic-write.js';
import { EdgeqError } from '../../core/errors.js';
import { checkTensorDecl, type TensorDecl } from './header.js';
import { SAFETENSORS_LIMITS } from './limits.js';

/** What the caller declares per tensor. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: StorageDtype;
  readonly shape: readonly number[];
}

/**
 * Tensor data. A Uint8Array is taken as the raw little-endian bytes of any dtype. A typed array whose
 * element type matches the dtype is written as is (Uint16Array holds F16/BF16 bit patterns); a
 * Float32Array may also be written as F16, BF16 or F64 (converted, round-to-nearest-even).
 */
export type TensorData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

export interface TensorWithData extends TensorSpec {
  readonly data: TensorData;
}

/** The prefix + padded JSON header for these declarations, and where each tensor's data begins. */
export function buildSafetensorsHeader(
  decls: readonly TensorDecl[],
  metadata?: Readonly<Record<string, string>>,
): { bytes: Uint8Array; dataStart: number; dataLength: number } {
  const parts: string[] = [];
  if (metadata !== undefined) {
    const md = Object.keys(metadata).map((k) => {
      const v = metadata[k];
      if (typeof v !== 'string') throw new EdgeqError('E_METADATA', `__metadata__ value for '${k}' must be a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${md.join(',')}}`);
  }
  let offset = 0;
  for (const d of decls) {
    const entry = { dtype: d.dtype, shape: d.shape, data_offsets: [offset, offset + d.byteLength] };
    parts.push(`${JSON.stringify(d.name)}:${JSON.stringify(entry)}`);
    offset += d.byteLength;
    if (!Number.isSafeInteger(offset)) throw new EdgeqError('E_TOO_LARGE', 'total tensor data size overflows');
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8; // 8 + n is then a multiple of 8
  if (n > SAFETENSORS_LIMITS.maxHeaderBytes) {
    throw new EdgeqError('E_HEADER_TOO_LARGE', `header would be ${n} bytes, over the ${SAFETENSORS_LIMITS.maxHeaderBytes}-byte limit`);
  }
  const bytes = new Uint8Array(8 + n).fill(0x20, 8 + json.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(n), true);
  bytes.set(json, 8);
  return { bytes, dataStart: 8 + n, dataLength: offset };
}

export class SafetensorsWriter {
  private index = 0; // current tensor in `decls`
  private writtenInCurrent = 0;
  private done = false;
  private readonly byName: ReadonlyMap<string, TensorDecl>;

  private constructor(
    private readonly out: AtomicFile,
    private readonly decls: readonly TensorDecl[],
    /** Absolute position of the data region. */
    readonly dataStart: number,
  ) {
    this.byName = new Map(decls.map((d) => [d.name, d]));
  }

  /** Destination path (the file appears there only after finish()). */
  get path(): string {
    return this.out.path;
  }

  /** Declare every tensor and write the header. Metadata values must be strings. */
  static async create(
    path: string,
    tensors: readonly TensorSpec[],
    opts: { metadata?: Readonly<Record<string, string>> } = {},
  ): Promise<SafetensorsWriter> {
    const decls = checkSpecs(tensors);
    const header = buildSafetensorsHeader(decls, opts.metadata);
    const out = await openAtomicFile(path);
    try {
      await out.write(header.bytes);
    } catch (err) {
      await out.abort();
      throw err;
    }
    return new SafetensorsWriter(out, decls, header.dataStart);
  }

  /** Name of the tensor the next writeTensor call must target (undefined when all are written). */
  get nextTensor(): string | undefined {
    this.skipEmpty();
    return this.decls[this.index]?.name;
  }

  /**
   * Append bytes of tensor `name`. Tensors must be written in declaration order; one tensor may be
   * written in several chunks. Empty (0-element) tensors need no call.
   */
  async writeTensor(name: string, data: TensorData): Promise<void> {
    await this.guard(async () => {
      const declared = this.byName.get(name);
      if (declared && declared.byteLength === 0 && data.byteLength === 0) return; // empty tensors need no data
      this.skipEmpty();
      const cur = this.decls[this.index];
      if (!cur || cur.name !== name) {
        const why = !cur
          ? 'all declared tensors are already written'
          : this.writtenInCurrent > 0
            ? `tensor '${cur.name}' is incomplete (${this.writtenInCurrent} of ${cur.byteLength} bytes)`
            : `expected tensor '${cur.name}' next (tensors are written in declaration order)`;
        throw new EdgeqError('E_WRITER_ORDER', `cannot write tensor '${name}': ${why}`);
      }
      const bytes = tensorDataBytes(data, cur.dtype, name);
      if (this.writtenInCurrent + bytes.length > cur.byteLength) {
        throw new EdgeqError(
          'E_WRITER_SIZE',
          `tensor '${name}': got ${this.writtenInCurrent + bytes.length} bytes, declared ${cur.dtype} ` +
            `[${cur.shape.join(', ')}] holds ${cur.byteLength}`,
        );
      }
      await this.out.write(bytes);
      this.writtenInCurrent += bytes.length;
      if (this.writtenInCurrent === cur.byteLength) {
        this.index++;
        this.writtenInCurrent = 0;
      }
    });
  }

  /** Check every tensor was written in full, then fsync and rename into place. */
  async finish(): Promise<void> {
    await this.guard(async () => {
      this.skipEmpty();
      const cur = this.decls[this.index];
      if (cur) {
        throw new EdgeqError(
          'E_WRITER_INCOMPLETE',
          `tensor '${cur.name}' was not fully written (${this.writtenInCurrent} of ${cur.byteLength} bytes)`,
        );
      }
      await this.out.commit();
      this.done = true;
    });
  }

  /** Discard everything written so far (the destination is left as it was). */
  async abort(): Promise<void> {
    this.done = true;
    await this.out.abort();
  }

  /** Run a step; on any failure abort the whole file before rethrowing. */
  private async guard(step: () => Promise<void>): Promise<void> {
    if (this.done) throw new EdgeqError('E_WRITER_STATE', `writer for ${this.path} is already finished or aborted`);
    try {
      await step();
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /** Move past 0-byte tensors: they have nothing to write. */
  private skipEmpty(): void {
    while (this.writtenInCurrent === 0 && this.decls[this.index]?.byteLength === 0) this.index++;
  }
}

/** Write a complete safetensors file atomically from in-memory tensors. */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorWithData[],
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const w = await SafetensorsWriter.create(path, tensors, metadata === undefined ? {} : { metadata });
  for (const t of tensors) await w.writeTensor(t.name, t.data);
  await w.finish();
}

/** Little-endian storage bytes of `data` for `dtype` (see TensorData for what is accepted). */
export function tensorDataBytes(data: TensorData, dtype: StorageDtype, name = '?'): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof Float32Array) {
    if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' || dtype === 'F64') {
      return dtype === 'F32' && HOST_LITTLE_ENDIAN ? viewBytes(data) : fromFloat32(data, dtype);
    }
  } else if (
    (data instanceof Float64Array && dtype === 'F64') ||
    (data instanceof Uint16Array && (dtype === 'F16' || dtype === 'BF16')) ||
    (data instanceof Int16Array && dtype === 'I16') ||
    (data instanceof Int32Array && dtype === 'I32') ||
    (data instanceof BigInt64Array && dtype === 'I64') ||
    (data instanceof Int8Array && dtype === 'I8')
  ) {
    return HOST_LITTLE_ENDIAN ? viewBytes(data) : swapToLittleEndian(data);
  }
  throw new EdgeqError(
    'E_TENSOR_DATA',
    `tensor '${name}': cannot store a ${data.constructor.name} as ${dtype} (pass a Uint8Array of raw bytes or a matching typed array)`,
  );
}

function viewBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Big-endian hosts only: copy with each element's bytes reversed. */
function swapToLittleEndian(a: Exclude<TensorData, Uint8Array>): Uint8Array {
  const size = a.BYTES_PER_ELEMENT;
  const src = viewBytes(a);
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i += size) {
    for (let j = 0; j < size; j++) out[i + j] = src[i + size - 1 - j]!;
  }
  return out;
}

function checkSpecs(tensors: readonly TensorSpec[]): TensorDecl[] {
  if (tensors.length > SAFETENSORS_LIMITS.maxTensors) {
    throw new EdgeqError('E_TOO_MANY_TENSORS', `${tensors.length} tensors exceed the limit of ${SAFETENSORS_LIMITS.maxTensors}`);
  }
  const seen = new Set<string>();
  return tensors.map((t) => {
    if (typeof t.name !== 'string' || t.name === '' || t.name === '__metadata__') {
      throw new EdgeqError('E_TENSOR_NAME', `invalid tensor name ${JSON.stringify(t.name)}`);
    }
    if (seen.has(t.name)) throw new EdgeqError('E_DUPLICATE_TENSOR', `tensor '${t.name}' is declared twice`);
    seen.add(t.name);
    return checkTensorDecl(t.name, t.dtype, t.shape);
  });
}
