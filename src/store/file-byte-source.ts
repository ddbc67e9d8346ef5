/** A ByteSource over a file on disk (Node.js): positioned reads, no streams, no whole-file buffers. */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { EdgeqError, FormatError, MissingFileError } from '../core/errors.js';
import { CheckedByteSource } from './byte-source.js';

/** Largest single positioned read issued to the OS (fs read length must fit in an int32). */
const MAX_CHUNK = 1 << 30;

/** A file on disk read with positioned reads (no streams, no whole-file buffers). */
export class FileByteSource extends CheckedByteSource {
  private constructor(
    path: string,
    size: number,
    private readonly fh: FileHandle,
  ) {
    super(path, size);
  }

  static async open(path: string): Promise<FileByteSource> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new MissingFileError('E_FILE_NOT_FOUND', `file not found: ${path}`);
      if (code === 'EACCES' || code === 'EPERM') {
        throw new EdgeqError('E_FILE_ACCESS', `cannot read ${path}: permission denied`);
      }
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new FormatError('E_NOT_A_FILE', 'not a regular file', path);
      return new FileByteSource(path, st.size, fh);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  protected async fill(target: Uint8Array, offset: number): Promise<void> {
    let done = 0;
    while (done < target.length) {
      const want = Math.min(target.length - done, MAX_CHUNK);
      const { bytesRead } = await this.fh.read(target, done, want, offset + done);
      if (bytesRead === 0) {
        // the file shrank after we stat'ed it (or the filesystem lies about its size)
        throw new FormatError(
          'E_TRUNCATED',
          `file is truncated: read ended at byte ${offset + done}, expected ${offset + target.length}`,
          this.path,
        );
      }
      done += bytesRead;
    }
  }

  protected async release(): Promise<void> {
    await this.fh.close();
  }
}

