/**
 * Streaming safetensors writer whose `__metadata__` is supplied at the END (finish), for writers that
 * only know their provenance (e.g. per-layer quantization errors) after the last tensor.
 *
 * Tensor declarations are fixed up front (the plan), so every data offset is known; the data region
 * starts after a header area reserved generously at create() and tensors stream into it in declaration
 * order. finish(metadata) builds the real header and writes it into the reserved area, space-padded (the
 * safetensors spec allows trailing 0x20 padding; the data region stays contiguous and 8-byte aligned).
 * If the final header is larger than the reservation, the file is rewritten with a bigger header by
 * streaming the data region into a second temp file. Output is atomic (temp file + rename).
 */
import { promises as fsp } from 'node:fs';
import { openAtomicFile, type AtomicFile } from '../../core/atomic-write.js';
import { EdgeqError } from '../../core/errors.js';
import { checkTensorDecl, type TensorDecl } from '../safetensors/header.js';
import { SAFETENSORS_LIMITS } from '../safetensors/limits.js';
import { buildSafetensorsHeader, tensorDataBytes, type TensorData, type TensorSpec } from '../safetensors/writer.js';

/** Header bytes reserved per declared tensor, on top of the header itself (room for metadata). */
const RESERVE_PER_TENSOR = 192;
const RESERVE_BASE = 64 * 1024;
const COPY_CHUNK = 8 * 1024 * 1024;

export class DeferredHeaderSafetensorsWriter {
  private index = 0;
  private writtenInCurrent = 0;
  /** Data-region offset of the current tensor. */
  private dataPos = 0;
  private done = false;

  private constructor(
    private readonly out: AtomicFile,
    private readonly decls: readonly TensorDecl[],
    /** JSON header length N reserved at create(); data starts at 8 + N. */
    private readonly reservedN: number,
  ) {}

  get path(): string {
    return this.out.path;
  }

  /** Name of the tensor the next writeTensor call must target (undefined when all are written). */
  get nextTensor(): string | undefined {
    this.skipEmpty();
    return this.decls[this.index]?.name;
  }

  /**
   * Declare every tensor. `metadataEstimate` (the metadata known so far) sizes the reservation; extra
   * room of 64 KiB + 192 bytes per tensor is added for what finish() will add.
   */
  static async create(
    path: string,
    tensors: readonly TensorSpec[],
    opts: { metadataEstimate?: Readonly<Record<string, string>>; reserveBytes?: number } = {},
  ): Promise<DeferredHeaderSafetensorsWriter> {
    const seen = new Set<string>();
    const decls = tensors.map((t) => {
      if (typeof t.name !== 'string' || t.name === '' || t.name === '__metadata__') {
        throw new EdgeqError('E_TENSOR_NAME', `invalid tensor name ${JSON.stringify(t.name)}`);
      }
      if (seen.has(t.name)) throw new EdgeqError('E_DUPLICATE_TENSOR', `tensor '${t.name}' is declared twice`);
      seen.add(t.name);
      return checkTensorDecl(t.name, t.dtype, t.shape);
    });
    if (decls.length > SAFETENSORS_LIMITS.maxTensors) {
      throw new EdgeqError('E_TOO_MANY_TENSORS', `${decls.length} tensors exceed the limit of ${SAFETENSORS_LIMITS.maxTensors}`);
    }
    const base = buildSafetensorsHeader(decls, opts.metadataEstimate ?? {}).bytes.length - 8;
    const extra = opts.reserveBytes ?? RESERVE_BASE + RESERVE_PER_TENSOR * decls.length;
    const reservedN = Math.min(roundUp8(base + extra), SAFETENSORS_LIMITS.maxHeaderBytes);
    const out = await openAtomicFile(path);
    return new DeferredHeaderSafetensorsWriter(out, decls, Math.max(reservedN, roundUp8(base)));
  }

  /** Append bytes of tensor `name` (declaration order; a tensor may come in several chunks). */
  async writeTensor(name: string, data: TensorData): Promise<void> {
    await this.guard(async () => {
      this.skipEmpty();
      const cur = this.decls[this.index];
      if (!cur || cur.name !== name) {
        const why = !cur
          ? 'all declared tensors are already written'
          : this.writtenInCurrent > 0
            ? `tensor '${cur.name}' is incomplete (${this.writtenInCurrent} of ${cur.byteLength} bytes)`
            : `expected tensor '${cur.name}' next (tensors are written in plan order)`;
        throw new EdgeqError('E_WRITER_ORDER', `cannot write tensor '${name}': ${why}`);
      }
      const bytes = tensorDataBytes(data, cur.dtype, name);
      if (this.writtenInCurrent + bytes.length > cur.byteLength) {
        throw new EdgeqError(
          'E_WRITER_SIZE',
          `tensor '${name}': got ${this.writtenInCurrent + bytes.length} bytes, declared ${cur.dtype} [${cur.shape.join(', ')}] holds ${cur.byteLength}`,
        );
      }
      await this.out.write(bytes, 8 + this.reservedN + this.dataPos + this.writtenInCurrent);
      this.writtenInCurrent += bytes.length;
      if (this.writtenInCurrent === cur.byteLength) {
        this.dataPos += cur.byteLength;
        this.index++;
        this.writtenInCurrent = 0;
      }
    });
  }

  /** Check every tensor was written, write the header with `metadata`, and rename into place. */
  async finish(metadata: Readonly<Record<string, string>>): Promise<void> {
    await this.guard(async () => {
      this.skipEmpty();
      const cur = this.decls[this.index];
      if (cur) {
        throw new EdgeqError(
          'E_WRITER_INCOMPLETE',
          `tensor '${cur.name}' was not fully written (${this.writtenInCurrent} of ${cur.byteLength} bytes)`,
        );
      }
      const header = buildSafetensorsHeader(this.decls, metadata);
      const n = header.bytes.length - 8;
      if (n <= this.reservedN) {
        const padded = new Uint8Array(8 + this.reservedN).fill(0x20);
        padded.set(header.bytes); // header.bytes is prefix + JSON + spaces; the rest stays 0x20
        new DataView(padded.buffer).setBigUint64(0, BigInt(this.reservedN), true);
        await this.out.write(padded, 0);
        await this.out.commit();
      } else {
        await this.rewriteWithHeader(header.bytes, header.dataLength);
      }
      this.done = true;
    });
  }

  /** Discard everything written so far. */
  async abort(): Promise<void> {
    this.done = true;
    await this.out.abort();
  }

  /** The reservation was too small: copy the data region behind the real header into a new file. */
  private async rewriteWithHeader(header: Uint8Array, dataLength: number): Promise<void> {
    const second = await openAtomicFile(this.out.path);
    const src = await fsp.open(this.out.tempPath, 'r');
    try {
      await second.write(header);
      const buf = new Uint8Array(Math.min(COPY_CHUNK, Math.max(dataLength, 1)));
      for (let pos = 0; pos < dataLength; ) {
        const want = Math.min(buf.length, dataLength - pos);
        const { bytesRead } = await src.read(buf, 0, want, 8 + this.reservedN + pos);
        if (bytesRead <= 0) throw new EdgeqError('E_WRITER_IO', `short read while re-writing ${this.out.path}`);
        await second.write(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      await src.close();
      await second.commit();
    } catch (err) {
      await src.close().catch(() => undefined);
      await second.abort();
      throw err;
    }
    await this.out.abort(); // the first temp file is no longer needed
  }

  private async guard(step: () => Promise<void>): Promise<void> {
    if (this.done) throw new EdgeqError('E_WRITER_STATE', `writer for ${this.path} is already finished or aborted`);
    try {
      await step();
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  private skipEmpty(): void {
    while (this.writtenInCurrent === 0 && this.decls[this.index]?.byteLength === 0) this.index++;
  }
}

function roundUp8(n: number): number {
  return Math.ceil(n / 8) * 8;
}
