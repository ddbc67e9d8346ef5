/**
 * Streaming GGUF v3 writer, as a state machine:
 *
 *   const w = new GgufWriter('out.gguf');          // state 'metadata'
 *   w.setMetadata('general.architecture', gv.str('llama'));
 *   w.addTensor('token_embd.weight', [d, vocab], ggmlType('q8_0'));   // state 'tensors' (infos only)
 *   await w.beginData();                           // writes header, KV pairs, tensor infos, padding
 *   await w.writeTensor('token_embd.weight', bytes);  // in declaration order, one at a time
 *   await w.finish();                              // atomic rename into place (or w.abort())
 *
 * Offsets are relative to the data section, each tensor aligned to `general.alignment` (default 32).
 * Only one tensor's bytes are ever held, so peak memory is the largest tensor, not the model.
 */
import { openAtomicFile, type AtomicFile } from '../../core/atomic-write.js';
import { EdgeqError, FormatError } from '../../core/errors.js';
import { ByteSink, gv, writeValue, type GgufValue } from './metadata-values.js';
import { ggmlTensorBytes, type GgmlTypeInfo } from './tensor-types.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

interface PlannedTensor {
  name: string;
  /** ne[0] first (the contiguous row length). */
  dims: number[];
  type: GgmlTypeInfo;
  bytes: number;
  offset: number;
}

type State = 'metadata' | 'tensors' | 'data' | 'done' | 'aborted';

export class GgufWriter {
  private state: State = 'metadata';
  private readonly kv = new Map<string, GgufValue>();
  private readonly tensors: PlannedTensor[] = [];
  private readonly names = new Set<string>();
  private next = 0;
  private dataSize = 0;
  private file: AtomicFile | null = null;
  private alignment = GGUF_DEFAULT_ALIGNMENT;

  constructor(readonly dest: string) {}

  setMetadata(key: string, value: GgufValue): this {
    this.expect('metadata', 'setMetadata');
    if (!key || new TextEncoder().encode(key).length > 65535) throw new EdgeqError('E_GGUF_KEY', `bad metadata key '${key}'`);
    if (key === 'general.alignment') {
      const a = Number(value.value);
      if (value.type !== 'u32' || !Number.isInteger(a) || a <= 0 || a % 8 !== 0)
        throw new EdgeqError('E_GGUF_ALIGNMENT', `general.alignment must be a u32 multiple of 8 (got ${String(value.value)})`);
      this.alignment = a;
    }
    this.kv.set(key, value);
    return this;
  }

  addTensor(name: string, dims: number[], type: GgmlTypeInfo): this {
    if (this.state === 'metadata') this.state = 'tensors';
    this.expect('tensors', 'addTensor');
    if (this.names.has(name)) throw new EdgeqError('E_GGUF_DUP_TENSOR', `tensor '${name}' declared twice`);
    if (new TextEncoder().encode(name).length > 64) throw new EdgeqError('E_GGUF_NAME', `tensor name '${name}' is longer than 64 bytes`);
    if (dims.length < 1 || dims.length > 4 || dims.some((d) => !Number.isSafeInteger(d) || d <= 0))
      throw new EdgeqError('E_GGUF_DIMS', `tensor '${name}' has bad dims [${dims}]`);
    if (dims[0]! % type.blockSize !== 0)
      throw new EdgeqError('E_GGUF_BLOCK', `tensor '${name}': row length ${dims[0]} is not a multiple of ${type.name}'s block size ${type.blockSize}`);
    const elements = dims.reduce((a, b) => a * b, 1);
    const bytes = ggmlTensorBytes(type, elements);
    const offset = Math.ceil(this.dataSize / this.alignment) * this.alignment;
    this.tensors.push({ name, dims: [...dims], type, bytes, offset });
    this.names.add(name);
    this.dataSize = offset + bytes;
    return this;
  }

  /** Writes everything up to the start of the first tensor's data. */
  async beginData(): Promise<void> {
    if (this.state === 'metadata') this.state = 'tensors';
    this.expect('tensors', 'beginData');
    if (this.alignment !== GGUF_DEFAULT_ALIGNMENT && !this.kv.has('general.alignment')) this.kv.set('general.alignment', gv.u32(this.alignment));
    const sink = new ByteSink();
    sink.u32(GGUF_MAGIC);
    sink.u32(GGUF_VERSION);
    sink.u64(this.tensors.length);
    sink.u64(this.kv.size);
    for (const [k, v] of this.kv) {
      sink.string(k);
      writeValue(sink, v);
    }
    for (const t of this.tensors) {
      sink.string(t.name);
      sink.u32(t.dims.length);
      for (const d of t.dims) sink.u64(d);
      sink.u32(t.type.id);
      sink.u64(t.offset);
    }
    sink.padTo(this.alignment);
    this.file = await openAtomicFile(this.dest);
    this.state = 'data';
    try {
      await this.file.write(sink.result());
    } catch (err) {
      await this.abort();
      throw err;
    }
    this.dataStart = this.file.position;
  }

  private dataStart = 0;

  /** The next declared tensor's bytes (exactly its size). */
  async writeTensor(name: string, bytes: Uint8Array): Promise<void> {
    this.expect('data', 'writeTensor');
    const t = this.tensors[this.next];
    if (!t) throw new EdgeqError('E_WRITER_STATE', `writeTensor('${name}'): all ${this.tensors.length} tensors are already written`);
    if (t.name !== name) throw new EdgeqError('E_WRITER_STATE', `writeTensor('${name}'): expected '${t.name}' next (tensors are written in declaration order)`);
    if (bytes.length !== t.bytes) throw new FormatError('E_GGUF_TENSOR_SIZE', `tensor '${name}' is ${bytes.length} bytes, its ${t.type.name} [${t.dims}] layout needs ${t.bytes}`);
    const f = this.file!;
    const pad = this.dataStart + t.offset - f.position;
    try {
      if (pad > 0) await f.write(new Uint8Array(pad));
      await f.write(bytes);
    } catch (err) {
      await this.abort();
      throw err;
    }
    this.next++;
  }

  async finish(): Promise<{ path: string; bytes: number; tensors: number }> {
    this.expect('data', 'finish');
    if (this.next !== this.tensors.length)
      throw new EdgeqError('E_WRITER_STATE', `finish(): ${this.tensors.length - this.next} declared tensors were not written (next: '${this.tensors[this.next]!.name}')`);
    const f = this.file!;
    const tail = (this.alignment - (f.position % this.alignment)) % this.alignment;
    if (tail) await f.write(new Uint8Array(tail));
    const bytes = f.position;
    await f.commit();
    this.state = 'done';
    return { path: this.dest, bytes, tensors: this.tensors.length };
  }

  async abort(): Promise<void> {
    this.state = 'aborted';
    await this.file?.abort();
  }

  private expect(s: State, op: string): void {
    if (this.state !== s) throw new EdgeqError('E_WRITER_STATE', `GgufWriter.${op}() in state '${this.state}' (expected '${s}')`);
  }
}
