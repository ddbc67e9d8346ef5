/**
 * The machine edgeq runs on, as a device row: RAM from the OS, usable memory = what the OS reports as
 * available right now, bandwidth measured with src/devices/bandwidth.ts on all cores (never looked up).
 */
import fs from 'node:fs';
import os from 'node:os';
import { measureReadBandwidth, type BandwidthResult } from './bandwidth.js';
import { HOST_DEVICE_ID, type Device } from './devices.js';

/** MemAvailable from /proc/meminfo (Linux), else os.freemem(). */
export function availableMemoryBytes(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return os.freemem();
}

export async function hostDevice(threads = os.availableParallelism()): Promise<{ device: Device; bandwidth: BandwidthResult }> {
  const bandwidth = await measureReadBandwidth({ threads });
  const total = os.totalmem();
  const avail = availableMemoryBytes();
  const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown CPU';
  return {
    bandwidth,
    device: {
      id: HOST_DEVICE_ID,
      name: `this machine (${cpu}, ${os.availableParallelism()} cores, ${(total / 2 ** 30).toFixed(1)} GiB)`,
      ramBytes: total,
      usableFraction: avail / total,
      bandwidth: bandwidth.bytesPerSec,
      memory: `read bandwidth measured now: ${(bandwidth.bytesPerSec / 1e9).toFixed(1)} GB/s on ${threads} threads (wasm SIMD loads, ${bandwidth.bytesPerThread >> 20} MiB per thread)`,
      source: 'measured (src/devices/bandwidth.ts); usable memory = MemAvailable',
    },
  };
}
