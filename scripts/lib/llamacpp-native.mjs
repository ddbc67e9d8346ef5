// llama.cpp called natively for the benchmarks (scripts/bench-quality.mjs, scripts/bench-gguf-ppl.mjs): the g++
// harnesses of scripts/llama-quantize/ linked against the libllama node-llama-cpp ships, built into
// .cache/llama-quantize/ on first use (never at npm install).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './bench-common.mjs';

/** Builds (if stale) and returns the path of a harness: 'quantize' (llama_model_quantize) or 'perplexity'. */
export function llamaHarness(which) {
  return execFileSync('sh', [path.join(repoRoot, 'scripts/llama-quantize/build.sh'), which], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/** Writes token ids as little-endian uint32 (the harness's TOKENS.u32) and returns the path. */
export function writeTokenFile(ids, file) {
  const u32 = Uint32Array.from(ids);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.from(u32.buffer, u32.byteOffset, u32.byteLength));
  return file;
}

/**
 * Perplexity of GGUF files in llama.cpp with edgeq's protocol (windows of ctx−1 tokens, BOS prepended, all scored),
 * each window from an empty F32 KV cache; files after the first also get mean KL(first ‖ file) and top-1 agreement.
 * Returns { ctx, windows, windowsAvailable, vocab, models: [{ file, nll, ppl, kl, top1, windowNll[] }] }.
 * llama.cpp's threads spin while they wait: on a loaded machine 1 thread is often the fastest.
 */
export function llamaCppPerplexity({ tokensFile, bosId, ctx, windows, threads = 1, files }) {
  const bin = llamaHarness('perplexity');
  const out = execFileSync(bin, [tokensFile, String(bosId), String(ctx), String(windows ?? 0), String(threads), ...files], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = JSON.parse(out);
  for (const m of r.models) m.ppl = Math.exp(m.nll);
  return r;
}
