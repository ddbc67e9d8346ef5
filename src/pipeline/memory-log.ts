/**
 * Opt-in memory tracing for the quantization pipeline: with EDGEQ_DEBUG_MEMORY=1 every call writes one line
 *
 *     EDGEQ_MEM {"label":"block 0 gate_up","rss":…,"hwm":…,"heapUsed":…,"heapTotal":…,"external":…,"arrayBuffers":…,"other":…}
 *
 * to stderr (bytes). `hwm` is the kernel's peak RSS so far (VmHWM, Linux; else getrusage maxRSS).
 * `other` = rss − heapTotal − external: memory V8 does not count, in practice the WebAssembly memories
 * (matmul backend, f64 linalg), which never shrink; `wasm` lists each live one (its label, capacity, bytes in
 * use and largest reusable free block, see WasmHeap). Without the variable it is a no-op (one env read, cached).
 * scripts/bench-quant-memory.mjs --profile collects these lines.
 */
import fs from 'node:fs';
import { wasmHeapStats } from '../kernels/wasm-memory.js';

let enabled: boolean | undefined;

export function memoryLogEnabled(): boolean {
  enabled ??= !!process.env.EDGEQ_DEBUG_MEMORY && process.env.EDGEQ_DEBUG_MEMORY !== '0';
  return enabled;
}

/** Peak resident set size of this process so far, bytes. */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Logs process memory at a pipeline boundary (no-op unless EDGEQ_DEBUG_MEMORY=1). `extra` values are bytes. */
export function logMemory(label: string, extra?: Record<string, number>): void {
  if (!memoryLogEnabled()) return;
  const u = process.memoryUsage();
  const line = {
    label,
    rss: u.rss,
    hwm: peakRssBytes(),
    heapUsed: u.heapUsed,
    heapTotal: u.heapTotal,
    external: u.external,
    arrayBuffers: u.arrayBuffers,
    other: Math.max(0, u.rss - u.heapTotal - u.external),
    wasm: wasmHeapStats(),
    ...extra,
  };
  process.stderr.write(`EDGEQ_MEM ${JSON.stringify(line)}\n`);
}
