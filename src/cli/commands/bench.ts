/** `edgeq bench`: throughput alone, in the style of llama-bench (pp512 / tg128, repetitions, mean ± sd). */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import fs from 'node:fs';
import { measureThroughput, summarizeRates, type Rate, type ThroughputResult } from '../../eval/throughput.js';
import type { WritableType } from '../../formats/gguf/tensor-types.js';
import { openLlamaCpp, type LlamaCppModel } from '../../peer/llama-cpp.js';
import { exportPeerGguf, type PeerGguf } from '../../peer/peer-gguf.js';
import { loadModel } from '../../model/load-model.js';
import { inspectModel } from '../../model/inspect-model.js';
import { createProgress, yieldToEventLoop } from '../progress.js';
import { createBackend, fmt, printJson, resolveModelDir, table, withCommonOptions, withModelOption, type CommonArgs } from '../shared.js';

interface BenchArgs extends CommonArgs {
  model: string;
  'n-prompt': number;
  'n-gen': number;
  repetitions: number;
  kernel?: 'lut' | 'int8';
  head: 'dense' | 'int8';
  peer?: 'llama.cpp';
  'peer-type'?: string;
}

export function rateCell(r: Rate | null): string {
  return r ? `${fmt(r.mean, 2)} ± ${fmt(r.sd, 2)}` : '-';
}

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench',
  describe: 'Throughput on edgeq\'s core, like llama-bench: prefill (pp) and decode (tg) tokens/s, mean ± sd',
  builder: (y: Argv) =>
    withCommonOptions(withModelOption(y))
      .option('n-prompt', { alias: 'p', type: 'number', default: 512, describe: 'Prompt tokens of the prefill test (0 = skip)' })
      .option('n-gen', { alias: 'n', type: 'number', default: 128, describe: 'Generated tokens of the decode test (0 = skip)' })
      .option('repetitions', { alias: 'r', type: 'number', default: 3, describe: 'Timed repetitions of each test (after one warm-up)' })
      .option('head', { type: 'string', choices: ['dense', 'int8'] as const, default: 'dense' as const, describe: 'LM head (tied embedding) in fp32, or int8 per channel on the int8-dot kernel (4× fewer bytes per token)' })
      .option('kernel', { type: 'string', choices: ['lut', 'int8'] as const, describe: 'Low-bit GEMV kernel for quantized linears [default: lut for ≤ 4 bits, int8 for 8 bits]' })
      .option('peer', { type: 'string', choices: ['llama.cpp'] as const, describe: 'Also run the model in llama.cpp (node-llama-cpp), exported to GGUF on the fly, alternating with edgeq' })
      .option('peer-type', { type: 'string', choices: ['auto', 'f32', 'f16', 'q8_0', 'q4_0', 'q4_k', 'q6_k', 'q3_k', 'q2_k'], default: 'auto', describe: 'GGUF type for the peer: auto = the lossless type of an edgeq checkpoint on a GGUF grid (else the nearest type, requantized), f16 for a Hugging Face model' })
      .example('$0 bench', 'pp512 / tg128 of the bundled brown-llama-7m on all cores')
      .example('$0 bench --model out/brown-q4_0 --peer llama.cpp -t 2', 'edgeq and llama.cpp side by side on the same model (GGUF exported on the fly)')
      .example('$0 bench --model out/brown-gptq4 -t 2 -r 5 --json', 'a quantized model, 2 threads, 5 repetitions, JSON')
      .example('$0 bench -p 128 -n 32', 'shorter tests') as Argv<BenchArgs>,
  handler: async (argv) => {
    const progress = createProgress({ quiet: argv.quiet || argv.json });
    try {
      const dir = await resolveModelDir(argv.model, progress);
      const info = await inspectModel(dir);
      const backend = await createBackend(argv.threads);
      progress.phase('Loading model');
      const model = await loadModel(dir, backend, { kernel: argv.kernel,
        head: argv.head, onProgress: (p) => progress.update(p.index, p.count, p.tensor) });
      let peerGguf: PeerGguf | undefined;
      let peer: LlamaCppModel | undefined;
      try {
        if (argv.peer) {
          progress.phase('Exporting GGUF for llama.cpp');
          await yieldToEventLoop();
          peerGguf = await exportPeerGguf(dir, argv['peer-type'] as WritableType | 'auto');
          peer = await openLlamaCpp(peerGguf.file, info.config.vocabSize);
        }
        progress.phase('Benchmarking');
        const opts = { threads: backend.threads, promptTokens: argv['n-prompt'], genTokens: argv['n-gen'] };
        const totalRuns = argv.repetitions * ((opts.promptTokens > 0 ? 1 : 0) + (opts.genTokens > 0 ? 1 : 0)) * (peer ? 2 : 1);
        let done = 0;
        const tick = async (): Promise<void> => {
          progress.update(++done, totalRuns);
          await yieldToEventLoop();
        };
        // one untimed run of each side first, then the sides alternate repetition by repetition
        await measureThroughput(model, { ...opts, reps: 1, warmup: false });
        if (peer) await peer.bench({ ...opts, reps: 1, warmup: false });
        const e = { pp: [] as number[], tg: [] as number[] };
        const l = { pp: [] as number[], tg: [] as number[] };
        for (let r = 0; r < argv.repetitions; r++) {
          for (const test of ['pp', 'tg'] as const) {
            const one = test === 'pp' ? { ...opts, genTokens: 0 } : { ...opts, promptTokens: 0 };
            if ((test === 'pp' ? opts.promptTokens : opts.genTokens) === 0) continue;
            const a = await measureThroughput(model, { ...one, reps: 1, warmup: false });
            e[test].push((test === 'pp' ? a.prefill : a.decode)!.samples[0]!);
            await tick();
            if (peer) {
              const b = await peer.bench({ ...one, reps: 1, warmup: false });
              l[test].push((test === 'pp' ? b.prefill : b.decode)!.samples[0]!);
              await tick();
            }
          }
        }
        const rate = (xs: number[]): Rate | null => (xs.length ? summarizeRates(xs) : null);
        const res: ThroughputResult = { ...opts, reps: argv.repetitions, prefill: rate(e.pp), decode: rate(e.tg) };
        const peerRes = peer && {
          name: 'llama.cpp',
          version: peer.version,
          ggufType: peerGguf!.type.toUpperCase(),
          lossless: peerGguf!.lossless,
          note: peerGguf!.note,
          prefill: rate(l.pp),
          decode: rate(l.tg),
        };
        progress.stop();
        const summary = {
          model: path.resolve(dir),
          params: info.params,
          bytes: info.bytes,
          bitsPerWeight: info.bitsPerWeight,
          weightBytesPerToken: model.weightBytesPerToken(),
          backend: backend.name,
          ...res,
          peakRssBytes: process.resourceUsage().maxRSS * 1024,
          ...(peerRes ? { peer: peerRes } : {}),
        };
        if (argv.json) printJson(summary);
        else {
          const rows: (string | number)[][] = [['model', 'size', 'params', 'bpw', 'backend', 'threads', 'test', 't/s', ...(peerRes ? ['llama.cpp t/s', 'ratio'] : [])]];
          const base = [path.basename(dir), `${fmt(info.bytes / 2 ** 20, 2)} MiB`, `${fmt(info.params / 1e6, 2)} M`, fmt(info.bitsPerWeight, 2), backend.name, backend.threads];
          const ratio = (a: Rate | null, b: Rate | null | undefined): string[] => (peerRes ? [rateCell(b ?? null), a && b ? `${fmt(a.mean / b.mean, 2)}×` : '-'] : []);
          if (res.prefill) rows.push([...base, `pp${res.promptTokens}`, rateCell(res.prefill), ...ratio(res.prefill, peerRes?.prefill)]);
          if (res.decode) rows.push([...base, `tg${res.genTokens}`, rateCell(res.decode), ...ratio(res.decode, peerRes?.decode)]);
          process.stdout.write(`${table(rows)}\n`);
          if (peerRes) process.stdout.write(`llama.cpp ${peerRes.version}, GGUF ${peerRes.ggufType}${peerRes.lossless ? ' (the same integers and scales as the edgeq checkpoint)' : ''}${peerRes.note ? `; ${peerRes.note}` : ''}\n`);
        }
      } finally {
        await peer?.dispose();
        if (peerGguf) fs.rmSync(peerGguf.dir, { recursive: true, force: true });
        model.dispose();
        await backend.dispose();
      }
    } finally {
      progress.stop();
    }
  },
};
