/**
 * Atomic folder output. Everything is written into a temporary sibling folder
 * `<parent>/.<name>.tmp-<pid>-<random hex>` that is renamed into place by commit(); abort() (or any
 * error in withAtomicDir) deletes it. So the destination either does not change or appears complete.
 *
 * An existing destination is refused (UsageError E_OUTPUT_EXISTS) unless `overwrite: true`; an empty
 * folder counts as absent. With overwrite, the old folder is moved aside only once the new one is
 * complete, then the new one is renamed in and the old one deleted (if the second rename fails the old
 * folder is moved back). The destination is checked both when opening (fail fast, before hours of
 * quantization) and again at commit.
 *
 * Resumable mode (`partial`): the temporary folder is the fixed sibling `<dest>.partial` (partialDirFor),
 * so a later run can find it. A fresh run refuses an existing partial folder (UsageError E_PARTIAL_EXISTS:
 * pass --resume, or --overwrite to discard it); `partial.resume` reopens it, deleting everything but the
 * data file and the resume files (names starting with RESUME_FILE_PREFIX: journal, activations). abort()
 * deletes the folder only while it holds no journaled progress (markDurable() was never called and it was
 * not resumed). commit() deletes the resume files, then renames the folder into place.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../core/errors.js';

export interface AtomicDirOptions {
  /** Replace an existing destination folder (only after the new one is complete). */
  overwrite?: boolean;
  /** Write into the fixed, resumable `<dest>.partial` folder (see the file comment). */
  partial?: PartialDirOptions;
}

export interface PartialDirOptions {
  /** Reopen the existing partial folder instead of starting a new one. */
  resume: boolean;
  /** Entries of the partial folder that a resume keeps besides the resume files (e.g. the data file). */
  keep?: readonly string[];
}

/** Files in a partial folder whose names start with this are resume state, never part of the output. */
export const RESUME_FILE_PREFIX = 'edgeq-resume';

/** The fixed partial folder of a resumable output: `<dest>.partial`, next to it. */
export function partialDirFor(dest: string): string {
  return `${path.resolve(dest)}.partial`;
}

export interface AtomicDir {
  /** Final destination. */
  readonly path: string;
  /** The temporary folder being filled; write everything here. */
  readonly tempPath: string;
  /** Rename the temporary folder into place (replacing the old folder when overwrite is set). */
  commit(): Promise<void>;
  /** Delete the temporary folder. Safe to call more than once and after a failed commit. */
  abort(): Promise<void>;
  /** Partial mode: the folder now holds journaled progress; abort() keeps it from here on. */
  markDurable(): void;
}

/** `<parent>/.<name>.tmp-<pid>-<random hex>` (or `.old-` for a folder being replaced). */
export function tempDirFor(dest: string, kind: 'tmp' | 'old' = 'tmp'): string {
  const abs = path.resolve(dest);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.${kind}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

export async function openAtomicDir(dest: string, opts: AtomicDirOptions = {}): Promise<AtomicDir> {
  const abs = path.resolve(dest);
  if (path.basename(abs) === '' || abs === path.dirname(abs)) {
    throw new UsageError('E_OUTPUT_PATH', `cannot write a model to ${dest}`, 'choose a folder path such as ./out/model-int4');
  }
  if (opts.partial?.resume) return resumePartialDir(abs, opts.partial, opts.overwrite === true);
  await checkDestination(abs, opts.overwrite === true);
  await fsp.mkdir(path.dirname(abs), { recursive: true });
  if (opts.partial) {
    const partial = partialDirFor(abs);
    if (await exists(partial)) {
      if (opts.overwrite !== true) throw partialExists(abs);
      await fsp.rm(partial, { recursive: true, force: true });
    }
    await fsp.mkdir(partial);
    return new AtomicDirImpl(abs, partial, opts.overwrite === true, { durable: false });
  }
  const tempPath = tempDirFor(abs);
  await fsp.mkdir(tempPath); // fails if it exists: never share a temp folder
  return new AtomicDirImpl(abs, tempPath, opts.overwrite === true);
}

/** The UsageError for a fresh run that finds a partial output of an earlier one. */
export function partialExists(dest: string): UsageError {
  return new UsageError(
    'E_PARTIAL_EXISTS',
    `an interrupted run left ${partialDirFor(dest)}`,
    'pass --resume to continue it (same options as the interrupted run), or --overwrite to discard it and start over',
  );
}

/** The UsageError for --resume without a partial output. */
export function nothingToResume(dest: string): UsageError {
  return new UsageError('E_NOTHING_TO_RESUME', `nothing to resume: ${partialDirFor(dest)} does not exist`, 'run without --resume to start a new quantization');
}

async function resumePartialDir(abs: string, o: PartialDirOptions, overwrite: boolean): Promise<AtomicDir> {
  const partial = partialDirFor(abs);
  const st = await fsp.lstat(partial).catch(() => undefined);
  if (!st?.isDirectory()) throw nothingToResume(abs);
  await checkDestination(abs, overwrite);
  const keep = new Set(o.keep ?? []);
  for (const name of await fsp.readdir(partial)) {
    if (!keep.has(name) && !name.startsWith(RESUME_FILE_PREFIX)) await fsp.rm(path.join(partial, name), { recursive: true, force: true });
  }
  return new AtomicDirImpl(abs, partial, overwrite, { durable: true });
}

async function exists(p: string): Promise<boolean> {
  return (await fsp.lstat(p).catch(() => undefined)) !== undefined;
}

/** Run `fn` on a fresh temp folder; commit if it resolves, delete the temp folder if it throws. */
export async function withAtomicDir<T>(dest: string, opts: AtomicDirOptions, fn: (tempPath: string) => Promise<T>): Promise<T> {
  const dir = await openAtomicDir(dest, opts);
  try {
    const result = await fn(dir.tempPath);
    await dir.commit();
    return result;
  } catch (err) {
    await dir.abort();
    throw err;
  }
}

class AtomicDirImpl implements AtomicDir {
  private state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(
    readonly path: string,
    readonly tempPath: string,
    private readonly overwrite: boolean,
    /** Partial mode only: whether the folder holds journaled progress (then abort keeps it). */
    private partial?: { durable: boolean },
  ) {}

  markDurable(): void {
    if (this.partial) this.partial.durable = true;
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new UsageError('E_WRITER_STATE', `commit on ${this.state} output folder ${this.path}`);
    try {
      const existing = await checkDestination(this.path, this.overwrite);
      if (this.partial) {
        for (const name of await fsp.readdir(this.tempPath)) {
          if (name.startsWith(RESUME_FILE_PREFIX)) await fsp.rm(path.join(this.tempPath, name), { force: true });
        }
      }
      await syncDir(this.tempPath);
      if (existing === 'nonempty') {
        await this.replace();
      } else {
        if (existing === 'empty') await fsp.rmdir(this.path); // rmdir fails (safely) if it was filled meanwhile
        await fsp.rename(this.tempPath, this.path);
      }
    } catch (err) {
      await this.abort();
      throw err;
    }
    this.state = 'committed';
    await syncDir(path.dirname(this.path));
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    if (this.partial?.durable) return; // journaled progress stays for --resume
    await fsp.rm(this.tempPath, { recursive: true, force: true });
  }

  /** Move the old folder aside, move the new one in, delete the old one (restore it on failure). */
  private async replace(): Promise<void> {
    const old = tempDirFor(this.path, 'old');
    await fsp.rename(this.path, old);
    try {
      await fsp.rename(this.tempPath, this.path);
    } catch (err) {
      await fsp.rename(old, this.path).catch(() => undefined);
      throw err;
    }
    await fsp.rm(old, { recursive: true, force: true });
  }
}

/** 'absent' | 'empty' | 'nonempty'; throws when the destination may not be replaced. */
async function checkDestination(dest: string, overwrite: boolean): Promise<'absent' | 'empty' | 'nonempty'> {
  let st;
  try {
    st = await fsp.lstat(dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
  if (!st.isDirectory()) {
    throw new UsageError(
      'E_OUTPUT_EXISTS',
      `output path ${dest} exists and is not a folder`,
      'choose another output folder; edgeq never replaces a file with a model folder',
    );
  }
  if ((await fsp.readdir(dest)).length === 0) return 'empty';
  if (!overwrite) {
    throw new UsageError(
      'E_OUTPUT_EXISTS',
      `output folder ${dest} already exists and is not empty`,
      'choose another output folder, or pass --overwrite to replace it (the old folder is kept until the new one is complete)',
    );
  }
  return 'nonempty';
}

/** Best-effort fsync of a folder's entries. */
async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on a directory; durability is best effort
  } finally {
    await fh.close().catch(() => undefined);
  }
}
