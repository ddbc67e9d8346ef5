#!/usr/bin/env node
// Compiles the AssemblyScript kernels (src/kernels/assembly/index.ts and what it imports) into
// build/kernels.wasm with the compiler from node_modules — offline, no network. Run by `npm install`
// (prepare) and `npm run build:wasm`.
//
// The module imports its memory (env.memory, shared, max 65536 pages = 4 GiB) so that the main thread
// and every worker thread instantiate the same module over the same bytes.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'src/kernels/assembly/index.ts');
const outDir = path.join(root, 'build');
const outFile = path.join(outDir, 'kernels.wasm');
const watFile = path.join(outDir, 'kernels.wat');

let asc;
try {
  asc = await import('assemblyscript/asc');
} catch (err) {
  console.error('build-wasm: cannot load the AssemblyScript compiler (devDependency "assemblyscript").');
  console.error('build-wasm: run `npm install` (with dev dependencies) first.');
  console.error(String(err));
  process.exit(1);
}

fs.mkdirSync(outDir, { recursive: true });

const args = [
  path.relative(process.cwd(), entry),
  '--outFile', path.relative(process.cwd(), outFile),
  '--textFile', path.relative(process.cwd(), watFile),
  '-O3',
  '--noAssert',
  '--runtime', 'stub',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory', '1',
  '--maximumMemory', '65536',
  '--enable', 'simd,threads',
  '--noColors',
];

const started = Date.now();
const { error, stderr } = await asc.main(args, {
  stdout: process.stdout,
  stderr: process.stderr,
});
if (error) {
  console.error(`build-wasm: compilation failed: ${error.message}`);
  const text = stderr.toString();
  if (text) console.error(text);
  process.exit(1);
}

// Sanity check: the module must validate here (SIMD + threads) and import shared memory.
const bytes = fs.readFileSync(outFile);
const mod = await WebAssembly.compile(bytes);
const mem = WebAssembly.Module.imports(mod).find((i) => i.kind === 'memory');
if (!mem || mem.module !== 'env' || mem.name !== 'memory') {
  console.error('build-wasm: expected the module to import env.memory');
  process.exit(1);
}
const exportsList = WebAssembly.Module.exports(mod).map((e) => e.name);
console.log(
  `build-wasm: ${path.relative(root, outFile)} (${bytes.length} bytes, ${exportsList.length} exports) in ${Date.now() - started} ms`,
);
