/**
 * The device table — the one place edge devices' memory and bandwidth live, each row with its source.
 *
 * `bandwidth` is the theoretical peak DRAM bandwidth (transfer rate × bus width) from the vendor's
 * specification; a decoder reading its weights once per token cannot go faster than bandwidth ÷ bytes
 * read per token (the roofline `edgeq plan` prints). Real kernels reach a fraction of it (typically
 * 50–80 % on phones), so the roofline is an upper bound, not a prediction.
 * `usableFraction` is the share of RAM one app can realistically hold (the OS, other apps and — on
 * phones — the Android/iOS per-app limits take the rest): 0.5 for phones, 0.7 for laptops, 0.8 for
 * single-board computers; a stated assumption, not a measurement.
 * The host row ('this-machine') is not in this table: its bandwidth is measured at run time
 * (src/devices/bandwidth.ts) and its memory read from the OS.
 */
import { UsageError } from '../core/errors.js';

export interface Device {
  id: string;
  name: string;
  /** Installed RAM, bytes (the most common configuration when several exist). */
  ramBytes: number;
  usableFraction: number;
  /** Peak DRAM bandwidth, bytes/s. */
  bandwidth: number;
  /** How the bandwidth figure is derived. */
  memory: string;
  source: string;
}

const GB = 1e9;
const GiB = 2 ** 30;

export const DEVICES: readonly Device[] = [
  {
    id: 'snapdragon-8-gen-3',
    name: 'Snapdragon 8 Gen 3 (phone, 12 GB)',
    ramBytes: 12 * GiB,
    usableFraction: 0.5,
    bandwidth: 76.8 * GB,
    memory: 'LPDDR5X 4800 MHz (9600 MT/s) × 64-bit = 76.8 GB/s',
    source: 'Qualcomm Snapdragon 8 Gen 3 Mobile Platform product brief (memory: LPDDR5x up to 4800 MHz, 4×16-bit)',
  },
  {
    id: 'snapdragon-x-elite',
    name: 'Snapdragon X Elite (laptop, 16 GB)',
    ramBytes: 16 * GiB,
    usableFraction: 0.7,
    bandwidth: 135 * GB,
    memory: 'LPDDR5X 8448 MT/s × 128-bit = 135 GB/s',
    source: 'Qualcomm Snapdragon X Elite product brief (memory bandwidth 135 GB/s)',
  },
  {
    id: 'apple-a17-pro',
    name: 'Apple A17 Pro (iPhone 15 Pro, 8 GB)',
    ramBytes: 8 * GiB,
    usableFraction: 0.5,
    bandwidth: 51.2 * GB,
    memory: 'LPDDR5 6400 MT/s × 64-bit = 51.2 GB/s',
    source: 'Apple does not publish it; LPDDR5-6400, 64-bit bus per teardown reports (TechInsights/AnandTech), 8 GB per Apple iPhone 15 Pro specs',
  },
  {
    id: 'jetson-orin-nano',
    name: 'NVIDIA Jetson Orin Nano 8GB',
    ramBytes: 8 * GiB,
    usableFraction: 0.8,
    bandwidth: 68 * GB,
    memory: 'LPDDR5 128-bit, 68 GB/s (102 GB/s in the "Super" power mode)',
    source: 'NVIDIA Jetson Orin Nano series data sheet (memory bandwidth 68 GB/s)',
  },
  {
    id: 'jetson-agx-orin',
    name: 'NVIDIA Jetson AGX Orin 64GB',
    ramBytes: 64 * GiB,
    usableFraction: 0.8,
    bandwidth: 204.8 * GB,
    memory: 'LPDDR5 6400 MT/s × 256-bit = 204.8 GB/s',
    source: 'NVIDIA Jetson AGX Orin series data sheet (204.8 GB/s)',
  },
  {
    id: 'raspberry-pi-5',
    name: 'Raspberry Pi 5 (Cortex-A76, 8 GB)',
    ramBytes: 8 * GiB,
    usableFraction: 0.8,
    bandwidth: 17.1 * GB,
    memory: 'LPDDR4X 4267 MT/s × 32-bit = 17.1 GB/s',
    source: 'Raspberry Pi 5 product brief (LPDDR4X-4267 SDRAM, 32-bit interface)',
  },
];

export const HOST_DEVICE_ID = 'this-machine';

export function deviceIds(): string[] {
  return [...DEVICES.map((d) => d.id), HOST_DEVICE_ID];
}

export function findDevice(id: string): Device {
  const d = DEVICES.find((x) => x.id === id);
  if (!d) throw new UsageError('E_DEVICE', `unknown device '${id}'`, `choose one of: ${deviceIds().join(', ')}`);
  return d;
}
