/**
 * Typed access to the WebAssembly global. The project compiles with lib ES2023 + @types/node 20,
 * neither of which declares `WebAssembly` (only lib.dom does), so the few pieces the kernels use are
 * declared here as module-local types instead of polluting the global namespace.
 */

/** A compiled module; structured-cloneable to worker threads (shares the compiled code). */
export interface WasmModule {
  readonly __wasmModule?: never;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(deltaPages: number): number;
}

export interface WasmGlobal {
  value: unknown;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

export interface WasmMemoryDescriptor {
  initial: number;
  maximum?: number;
  shared?: boolean;
}

export interface WasmModuleImportDescriptor {
  module: string;
  name: string;
  kind: string;
}

export interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports?: Record<string, Record<string, unknown>>): Promise<WasmInstance>;
  Memory: new (descriptor: WasmMemoryDescriptor) => WasmMemory;
  Instance: new (module: WasmModule, imports?: Record<string, Record<string, unknown>>) => WasmInstance;
  Module: { imports(module: WasmModule): WasmModuleImportDescriptor[] };
}

export const wasm: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
