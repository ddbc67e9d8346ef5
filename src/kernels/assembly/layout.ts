// Version of the packed low-bit weight layouts these kernels read (src/kernels/lowbit-pack.ts writes them, with
// PACKED_LAYOUT in src/kernels/lowbit-plan.ts). Bump both together whenever a layout changes: the backend refuses a
// kernels build of another version, which would otherwise compute wrong products from the same bytes (a stale
// build/kernels.wasm, or an older build given to bench:wasm-ab).
export const PACKED_LAYOUT: i32 = 1;
