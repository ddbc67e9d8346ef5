/** `edgeq report RUN_DIR`: one self-contained HTML report of every run in a folder. */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { REPORT_FILE, writeReport } from '../../report/index.js';
import { fmt, printJson, table, type CommonArgs } from '../shared.js';

interface ReportArgs extends CommonArgs {
  'run-dir': string;
  out?: string;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <run-dir>',
  describe: 'Write an HTML report of the runs in a folder: size vs Δppl Pareto, throughput, per-layer error and bits, provenance',
  builder: (y: Argv) =>
    y
      .positional('run-dir', {
        type: 'string',
        demandOption: true,
        describe: 'Folder of edgeq checkpoints (itself one, or subfolders up to 2 levels) with their edgeq-eval.json records',
      })
      .option('out', { alias: 'o', type: 'string', describe: `HTML file to write [default: RUN_DIR/${REPORT_FILE}]` })
      .option('json', { type: 'boolean', default: false, describe: 'Print a machine-readable JSON result on stdout' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Print nothing but errors' })
      .example('$0 report out', `every checkpoint under out/ → out/${REPORT_FILE}`)
      .example('$0 report out -o report.html --json', 'choose the file; the runs found and what each lacks as JSON')
      .example(
        '$0 quantize -m stories260K --method rtn --bits 4 -g 32 --fallback -o out/rtn4 && $0 eval --model out/rtn4 --baseline stories260K && $0 report out',
        'quantize, evaluate (writes out/rtn4/edgeq-eval.json), report',
      ) as Argv<ReportArgs>,
  handler: async (argv) => {
    const r = await writeReport(argv['run-dir'], argv.out);
    if (argv.json) return printJson(r);
    if (argv.quiet) return;
    const dash = (v: number | undefined, d = 3): string => (v === undefined ? '-' : fmt(v, d));
    process.stdout.write(
      `${table([
        ['run', 'method', 'bits/weight', 'Δppl', 'mean KL', 'decode tok/s', 'missing'],
        ...r.runs.map((s) => [s.id, s.method ?? '-', dash(s.bitsPerWeight), dash(s.deltaPpl, 4), s.meanKl === undefined ? '-' : s.meanKl.toExponential(3), dash(s.decodeTokPerSec, 1), s.missing.length ? String(s.missing.length) : '']),
      ])}\n`,
    );
    for (const s of r.runs) for (const m of s.missing) process.stdout.write(`  ${s.id}: ${m}\n`);
    const rel = path.relative(process.cwd(), r.file);
    process.stdout.write(`report: ${rel.startsWith('..') || path.isAbsolute(rel) ? r.file : rel}\n`);
  },
};
