/** Options and set-up shared by the commands: --model resolution, the matmul backend, output. */
import fs from 'node:fs';
import os from 'node:os';
import type { Argv } from 'yargs';
import { UsageError } from '../core/errors.js';
import { BUNDLED } from '../core/paths.js';
import { createWasmBackend } from '../kernels/wasm-backend.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { resolveModelSource } from '../store/model-source.js';
import type { Progress } from './progress.js';

export interface CommonArgs {
  json?: boolean;
  quiet?: boolean;
  threads?: number;
}

export function withCommonOptions<T>(y: Argv<T>) {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'Print a machine-readable JSON result on stdout' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress output on stderr' })
    .option('threads', { alias: 't', type: 'number', describe: `Worker threads for the kernels (default: all cores, ${os.availableParallelism()})` });
}

export function withModelOption<T>(y: Argv<T>) {
  return y.option('model', {
    alias: 'm',
    type: 'string',
    describe: 'Model: a local Hugging Face folder, a bundled name (brown-llama-7m, stories260K) or a hub id org/name[@revision]',
    default: 'brown-llama-7m',
  });
}

/** Local folder > bundled name > hub id (downloaded into the Hugging Face cache, reused offline). */
export async function resolveModelDir(spec: string, progress: Progress): Promise<string> {
  if (fs.existsSync(spec)) return spec;
  const bundled = BUNDLED.models[spec];
  if (bundled) return bundled;
  progress.phase(`Fetching ${spec}`);
  const res = await resolveModelSource(spec, {
    onProgress: (p) => progress.update(p.fileIndex, p.fileCount, `${p.file} ${(p.bytes / 1e6).toFixed(1)} MB`),
  });
  return res.dir;
}

export async function createBackend(threads: number | undefined): Promise<MatmulBackend> {
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > 256))
    throw new UsageError('E_THREADS', `--threads must be an integer from 1 to 256 (got ${threads})`);
  return createWasmBackend({ threads });
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}

/** A plain text table: columns padded to the widest cell. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}
