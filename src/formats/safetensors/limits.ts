/**
 * Hard limits for safetensors parsing. A header beyond these is rejected before any large allocation.
 * They are far above anything real checkpoints use (a 405B model has ~1.1k tensors and a ~100 KiB header).
 */
export const SAFETENSORS_LIMITS = {
  /** Size of the little-endian u64 header-length prefix. */
  prefixBytes: 8,
  /** Largest JSON header accepted (the reference implementation uses the same 100 MiB cap). */
  maxHeaderBytes: 100 * 1024 * 1024,
  /** Most tensors one file may declare. */
  maxTensors: 100_000,
  /** Highest tensor rank accepted. */
  maxRank: 8,
} as const;
