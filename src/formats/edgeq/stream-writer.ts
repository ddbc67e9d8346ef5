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
 *
 * Resumable mode (`partial`, used inside a fixed `OUT.partial/` folder, see atomic-dir.ts): the file is
 * written in place at its final name (the folder is the atomic unit), a running SHA-256 of the data region
 * is kept, and checkpoint() fsyncs the file and returns {headerBytes, dataBytes, sha256}. Reopening with
 * `partial.resumeFrom` (a checkpoint) checks the header reservation, hashes the file's data prefix against
 * the checkpoint, truncates anything written after it and continues with the next tensor.
 */
import { createHash, type Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { openAtomicFile, type AtomicFile } from '../../core/atomic-write.js';
import { EdgeqError, FormatError } from '../../core/errors.js';
import { checkTensorDecl, type TensorDecl } from '../safetensors/header.js';
import { SAFETENSORS_LIMITS } from '../safetensors/limits.js';
import { buildSafetensorsHeader, tensorDataBytes, type TensorData, type TensorSpec } from '../safetensors/writer.js';

/** Header bytes reserved per declared tensor, on top of the header itself (room for metadata). */
const RESERVE_PER_TENSOR = 192;
const RESERVE_BASE = 64 * 1024;
const COPY_CHUNK = 8 * 1024 * 1024;

/** Where a resumable data file stood when its bytes were last flushed (all whole tensors). */
export interface DataCheckpoint {
  /** Reserved JSON header length N (data starts at 8 + N); must match on resume. */
  headerBytes: number;
  /** Bytes of the data region written (a tensor boundary). */
  dataBytes: number;
  /** SHA-256 (hex) of those data bytes. */
  sha256: string;
}

export interface PartialFileOptions {
  /** Continue the file from this checkpoint (absent: start a new file, replacing any). */
  resumeFrom?: DataCheckpoint;
}

export class DeferredHeaderSafetensorsWriter {
  private index = 0;
  private writtenInCurrent = 0;
  /** Data-region offset of the current tensor. */
  private dataPos = 0;
  private done = false;
  /** Running hash of the data region (resumable mode only). */
  private hash: Hash | null = null;

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
    opts: { metadataEstimate?: Readonly<Record<string, string>>; reserveBytes?: number; partial?: PartialFileOptions } = {},
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
    const reservedN = Math.max(Math.min(roundUp8(base + extra), SAFETENSORS_LIMITS.maxHeaderBytes), roundUp8(base));
    if (!opts.partial) return new DeferredHeaderSafetensorsWriter(await openAtomicFile(path), decls, reservedN);
    const from = opts.partial.resumeFrom;
    const file = await InPlaceFile.open(path, from !== undefined);
    const w = new DeferredHeaderSafetensorsWriter(file, decls, reservedN);
    w.hash = createHash('sha256');
    if (from) {
      try {
        await w.resumeAt(file, from);
      } catch (err) {
        await file.abort();
        throw err;
      }
    }
    return w;
  }

  /** Resumable mode: fsync the bytes written so far and say where the file stands (whole tensors only). */
  async checkpoint(): Promise<DataCheckpoint> {
    if (!this.hash || !(this.out instanceof InPlaceFile)) throw new EdgeqError('E_WRITER_STATE', `${this.path} is not a resumable file`);
    if (this.writtenInCurrent !== 0) throw new EdgeqError('E_WRITER_STATE', `checkpoint in the middle of tensor '${this.decls[this.index]?.name}'`);
    await this.out.sync();
    return { headerBytes: this.reservedN, dataBytes: this.dataPos, sha256: this.hash.copy().digest('hex') };
  }

  /** Position after the checkpoint's last tensor, once the file's prefix is verified; the rest is cut off. */
  private async resumeAt(file: InPlaceFile, from: DataCheckpoint): Promise<void> {
    const bad = (why: string) =>
      new FormatError('E_RESUME_DATA', `cannot resume: ${why}`, this.path, 'the partial output is damaged; pass --overwrite to start over');
    if (from.headerBytes !== this.reservedN) throw bad(`header reservation ${from.headerBytes} bytes, this run reserves ${this.reservedN}`);
    let pos = 0;
    let index = 0;
    while (pos < from.dataBytes && index < this.decls.length) pos += this.decls[index++]!.byteLength;
    if (pos !== from.dataBytes) throw bad(`${from.dataBytes} data bytes is not a tensor boundary of the plan`);
    const start = 8 + this.reservedN;
    const size = await file.size();
    if (size < start + from.dataBytes) throw bad(`the file holds ${Math.max(0, size - start)} data bytes, the journal says ${from.dataBytes}`);
    const buf = new Uint8Array(Math.min(COPY_CHUNK, Math.max(from.dataBytes, 1)));
    for (let done = 0; done < from.dataBytes; ) {
      const n = await file.read(buf.subarray(0, Math.min(buf.length, from.dataBytes - done)), start + done);
      if (n <= 0) throw bad('short read');
      this.hash!.update(buf.subarray(0, n));
      done += n;
    }
    if (this.hash!.copy().digest('hex') !== from.sha256) throw bad('the data written so far does not match the journal (SHA-256 differs)');
    await file.truncate(start + from.dataBytes);
    this.index = index;
    this.dataPos = from.dataBytes;
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
      this.hash?.update(bytes);
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

/**
 * The data file of a resumable output: written in place at its final name (no temp file; the enclosing
 * partial folder is renamed atomically instead). commit() fsyncs and closes; abort() only closes — the
 * bytes stay for a later resume, and the folder's owner decides whether to delete them.
 */
class InPlaceFile implements AtomicFile {
  private state: 'open' | 'closed' = 'open';
  position = 0;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  static async open(path: string, existing: boolean): Promise<InPlaceFile> {
    try {
      return new InPlaceFile(path, await fsp.open(path, existing ? 'r+' : 'w+'));
    } catch (err) {
      if (existing && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new FormatError('E_RESUME_DATA', 'cannot resume: the partial data file is missing', path, 'pass --overwrite to start over');
      }
      throw err;
    }
  }

  get tempPath(): string {
    return this.path;
  }

  async write(data: Uint8Array, position?: number): Promise<void> {
    if (this.state !== 'open') throw new EdgeqError('E_WRITER_STATE', `write on closed file ${this.path}`);
    let pos = position ?? this.position;
    for (let done = 0; done < data.length; ) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, pos);
      done += bytesWritten;
      pos += bytesWritten;
    }
    if (position === undefined) this.position = pos;
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    return (await this.fh.read(buf, 0, buf.length, position)).bytesRead;
  }

  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }

  async truncate(len: number): Promise<void> {
    await this.fh.truncate(len);
    await this.fh.sync();
  }

  async sync(): Promise<void> {
    await this.fh.sync();
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new EdgeqError('E_WRITER_STATE', `commit on closed file ${this.path}`);
    this.state = 'closed';
    try {
      await this.fh.sync();
    } finally {
      await this.fh.close();
    }
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closed';
    await this.fh.close().catch(() => undefined);
  }
}

function roundUp8(n: number): number {
  return Math.ceil(n / 8) * 8;
}
