// Entry point of build/kernels.wasm: every export here becomes a wasm export.
// Built by scripts/build-wasm.mjs (AssemblyScript, --runtime stub, imported shared memory).
export * from './gemm';
export * from './dot';
export * from './linalg64';
export * from './membw';
export * from './lowbit-lut';
export * from './lowbit-q8';
export * from './lowbit-prefill';
export * from './attention';
export * from './elementwise';
export * from './layout';
