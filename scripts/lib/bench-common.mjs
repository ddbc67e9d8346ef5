// Helpers shared by the benchmarks (scripts/bench-quality.mjs, scripts/bench-ladder.mjs; scripts/bench-decode-ab.mjs
// uses the option parsing and dist/ import only): option parsing, `edgeq quantize … --json` through the CLI, the
// evaluation set-up (wasm backend, FP16 baseline, tokenized evaluation text), the --configs parser and a table.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (scripts/lib/../..). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Import a compiled module from dist/ (run `npm run build:ts` first). */
export const dist = (p) => import(path.join(repoRoot, 'dist', p));

/** `--name value` options and `--flag` switches of an argv slice. */
export function cliArgs(args = process.argv.slice(2)) {
  return {
    args,
    arg: (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d),
    flag: (n) => args.includes(`--${n}`),
  };
}

/**
 * `edgeq quantize <quantizeArgs> -o out --overwrite --json --quiet` in a child process; returns the parsed
 * JSON report. On failure the error carries the command and the last lines of its stderr.
 */
export function runQuantize(quantizeArgs, out) {
  const argv = [path.join(repoRoot, 'bin/edgeq.js'), 'quantize', ...quantizeArgs, '-o', out, '--overwrite', '--json', '--quiet'];
  try {
    const json = execFileSync(process.execPath, argv, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(json);
  } catch (e) {
    const tail = String(e.stderr ?? e.message).trim().split('\n').slice(-6).join('\n');
    throw new Error(`edgeq quantize failed: node ${argv.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n${tail}`);
  }
}

/**
 * --configs of the quantization benches: "bits:group[:sym],…" → { bits, group, sym, name (w4g32s), label
 * (w4 g32 sym), args (edgeq quantize's grid flags) }. Anything else is refused, never read as NaN.
 */
export function parseGridConfigs(spec) {
  return spec
    .split(',')
    .filter(Boolean)
    .map((s) => {
      const [b, g, sym, ...rest] = s.split(':');
      const bits = Number(b);
      const group = Number(g);
      if (!Number.isInteger(bits) || !Number.isInteger(group) || (sym !== undefined && sym !== 'sym') || rest.length)
        throw new Error(`--configs: "${s}" is not bits:group[:sym] (e.g. 4:128 or 4:32:sym)`);
      const isSym = sym === 'sym';
      return { bits, group, sym: isSym, name: `w${bits}g${group}${isSym ? 's' : ''}`, label: `w${bits} g${group}${isSym ? ' sym' : ''}`, args: ['--bits', String(bits), '-g', String(group), ...(isSym ? ['--sym'] : [])] };
    });
}

/**
 * What an evaluation against the FP16 model needs: the wasm backend, the baseline model, its tokenizer and
 * the tokenized evaluation text (default the bundled WikiText-2 test split; `textFile` relative to the repo).
 * `await ctx.backend.dispose()` when done.
 */
export async function openEval(baselineDir, threads, textFile = 'fixtures/text/wiki.test.raw') {
  const { createWasmBackend } = await dist('kernels/wasm-backend.js');
  const { loadModel } = await dist('model/load-model.js');
  const { EdgeqTokenizer } = await dist('tokenizer/tokenizer.js');
  const { readEvalText, tokenizeText } = await dist('eval/dataset.js');
  const { compareManyWithBaseline } = await dist('eval/compare.js');
  const backend = await createWasmBackend({ threads });
  const baseline = await loadModel(baselineDir, backend);
  const tok = EdgeqTokenizer.load(baselineDir, baseline.config.bosTokenId, baseline.config.eosTokenIds);
  const text = tokenizeText(tok, readEvalText(path.join(repoRoot, textFile)));
  return { backend, baseline, tok, text, loadModel, compareManyWithBaseline };
}

/** Rows of cells → aligned lines (columns in `left` padded on the right, the others right-aligned). */
export function formatTable(rows, left = [0]) {
  const w = rows[0].map((_, i) => Math.max(...rows.map((row) => String(row[i]).length)));
  return rows.map((row) => row.map((c, i) => (left.includes(i) ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  '));
}
