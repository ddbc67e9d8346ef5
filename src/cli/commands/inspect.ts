/** `edgeq inspect M`: architecture, parameter count, dtypes, sizes per tensor group. */
import type { Argv, CommandModule } from 'yargs';
import { inspectModel } from '../../model/inspect-model.js';
import { inspectGguf } from '../../formats/gguf/inspect-gguf.js';
import { createProgress } from '../progress.js';
import { fmt, printJson, resolveModelDir, table, type CommonArgs } from '../shared.js';

interface InspectArgs extends CommonArgs {
  model: string;
  'check-finite': boolean;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

export const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect [model]',
  describe: 'Show a model: architecture, parameters, dtypes, bytes per tensor group, low-rank linears',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', default: 'brown-llama-7m', describe: 'Local folder, bundled name or hub id' })
      .option('check-finite', { type: 'boolean', default: false, describe: 'Read every tensor and report NaN/Inf values by tensor name' })
      .option('json', { type: 'boolean', default: false, describe: 'Print JSON on stdout' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress output' })
      .example('$0 inspect', 'the bundled brown-llama-7m')
      .example('$0 inspect ./my-model --check-finite --json', 'scan a local checkpoint for NaN/Inf weights')
      .example('$0 inspect out/model.gguf', 'a GGUF file: header, metadata, tensors and types') as Argv<InspectArgs>,
  handler: async (argv) => {
    const progress = createProgress({ quiet: argv.quiet || argv.json });
    try {
      if (argv.model.toLowerCase().endsWith('.gguf')) {
        progress.stop();
        const g = await inspectGguf(argv.model);
        if (argv.json) return printJson(g);
        const meta = Object.entries(g.metadata).map(([k, v]) => `  ${k} = ${typeof v === 'string' ? v : JSON.stringify(v)}`);
        process.stdout.write(
          `gguf        ${g.file} · v${g.version} · ${mb(g.bytes)} · alignment ${g.alignment} · data at ${g.dataOffset} · ${fmt(g.bitsPerWeight)} bits/weight\n` +
            `types       ${Object.entries(g.types).map(([k, v]) => `${k} ${v.tensors} (${mb(v.bytes)})`).join(' · ')}\nmetadata\n${meta.join('\n')}\n\n` +
            `${table([['tensor', 'type', 'dims', 'bytes'], ...g.tensors.map((t) => [t.name, t.type, `[${t.dims.join(', ')}]`, t.bytes])])}\n`,
        );
        return;
      }
      const dir = await resolveModelDir(argv.model, progress);
      const r = await inspectModel(dir, { checkFinite: argv['check-finite'] });
      progress.stop();
      if (argv.json) return printJson(r);
      const c = r.config;
      const lines = [
        `model       ${r.dir}`,
        `arch        ${r.modelType}: ${r.architecture}`,
        `shape       ${c.numLayers} layers · hidden ${c.hiddenSize} · ffn ${c.intermediateSize} · heads ${c.numHeads} (kv ${c.numKvHeads}, head_dim ${c.headDim}) · vocab ${c.vocabSize}`,
        `rope        theta ${c.ropeTheta}${c.ropeScaling.type !== 'none' ? ` · scaling ${JSON.stringify(c.ropeScaling)}` : ''} · tied embeddings ${c.tieWordEmbeddings}`,
        `parameters  ${r.params.toLocaleString('en-US')} · ${mb(r.bytes)} · ${fmt(r.bitsPerWeight)} bits/weight`,
        `dtypes      ${Object.entries(r.dtypes).map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(' · ')}`,
      ];
      if (r.finiteChecked) lines.push('finite      all weights are finite');
      process.stdout.write(`${lines.join('\n')}\n\n`);
      process.stdout.write(
        `${table([
          ['group', 'tensors', 'params', 'size', 'dtypes'],
          ...r.groups.map((g) => [g.group, g.tensors, g.params.toLocaleString('en-US'), mb(g.bytes), Object.keys(g.dtypes).join(',')]),
        ])}\n`,
      );
      if (r.lowRank.length > 0) {
        process.stdout.write(
          `\nlow-rank linears (W ≈ U·V; bits/weight of the original n·k)\n${table([
            ['tensor', 'shape', 'rank', 'U', 'V', 'bytes', 'bits/w'],
            ...r.lowRank.map((t) => [t.name, `[${t.n}, ${t.k}]`, t.rank, t.u, t.v, t.bytes, fmt(t.bitsPerWeight)]),
          ])}\n`,
        );
      }
    } finally {
      progress.stop();
    }
  },
};
