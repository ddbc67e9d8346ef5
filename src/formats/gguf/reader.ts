/**
 * GGUF reader: the header (metadata, tensor infos) is parsed on open; tensor data is read by name on
 * demand, raw or decoded to float32 with the type's reference codec.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { EdgeqError, FormatError, MissingFileError } from '../../core/errors.js';
import { NeedMoreBytes, parseGgufHeader, type GgufHeader, type GgufTensorInfo } from './header-parser.js';
import { plainValue, type GgufValue } from './metadata-values.js';
import { ggmlCodec } from './tensor-types.js';

/** Largest header edgeq reads (tokenizer arrays of big vocabularies take a few MB). */
const MAX_HEADER_BYTES = 512 << 20;

export class GgufFile implements GgufHeader {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    header: GgufHeader,
  ) {
    this.version = header.version;
    this.metadata = header.metadata;
    this.tensors = header.tensors;
    this.alignment = header.alignment;
    this.dataOffset = header.dataOffset;
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }
  readonly version: number;
  readonly metadata: Map<string, GgufValue>;
  readonly tensors: GgufTensorInfo[];
  readonly alignment: number;
  readonly dataOffset: number;
  private readonly byName: Map<string, GgufTensorInfo>;

  static async open(file: string): Promise<GgufFile> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (e) {
      throw new MissingFileError('E_MISSING_FILE', `cannot open ${file}: ${(e as Error).message}`);
    }
    try {
      const size = (await fh.stat()).size;
      let want = Math.min(size, 1 << 20);
      for (;;) {
        const buf = new Uint8Array(want);
        await readFully(fh, buf, 0);
        try {
          return new GgufFile(file, fh, size, parseGgufHeader(buf, size, file));
        } catch (e) {
          if (!(e instanceof NeedMoreBytes)) throw e;
          if (want >= MAX_HEADER_BYTES) throw new FormatError('E_GGUF_LIMIT', `header is larger than ${MAX_HEADER_BYTES} bytes`, file);
          want = Math.min(size, MAX_HEADER_BYTES, Math.max(want * 2, e.needed + (1 << 16)));
        }
      }
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  tensor(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new FormatError('E_TENSOR_NOT_FOUND', `no tensor named '${name}'`, this.path);
    return t;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** A metadata value as a plain JS value (undefined when absent). */
  get(key: string): unknown {
    const v = this.metadata.get(key);
    return v === undefined ? undefined : plainValue(v);
  }

  async readRaw(name: string): Promise<Uint8Array> {
    const t = this.tensor(name);
    const buf = new Uint8Array(t.bytes);
    await readFully(this.fh, buf, this.dataOffset + t.offset);
    return buf;
  }

  /** Decoded float32 values (ne[0] fastest). */
  async readF32(name: string): Promise<Float32Array> {
    const t = this.tensor(name);
    const raw = await this.readRaw(name);
    return ggmlCodec(t.type).dequantize(raw, new Float32Array(t.elements));
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readFully(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new EdgeqError('E_GGUF_TRUNCATED', `unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}
