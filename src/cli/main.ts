/** The edgeq command line: a table of yargs command modules over the library. */
import yargs from 'yargs';
import { benchCommand } from './commands/bench.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { inspectCommand } from './commands/inspect.js';
import { planCommand } from './commands/plan.js';
import { quantizeCommand } from './commands/quantize.js';
import { reportCommand } from './commands/report.js';
import { exitCodeFor, formatError } from './errors.js';

const COMMANDS = [demoCommand, quantizeCommand, evalCommand, benchCommand, planCommand, reportCommand, inspectCommand, exportCommand];

export async function main(args: string[]): Promise<void> {
  const cli = yargs(args)
    .scriptName('edgeq')
    .usage('$0 <command> [options]\n\nMake LLMs fit and run on edge devices.')
    .strict()
    .demandCommand(1, 'Name a command: demo, quantize, eval, bench, plan, report or inspect (see --help)')
    .recommendCommands()
    .epilogue('Exit codes: 0 ok · 1 internal error · 2 usage error · 3 bad or missing input · 4 hub/network')
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err, y) => {
      if (err) throw err;
      process.stderr.write(`edgeq: ${msg}\nhint: run 'edgeq --help' for usage\n`);
      process.exitCode = 2;
      void y;
    });
  for (const c of COMMANDS) cli.command(c as never);
  try {
    await cli.parseAsync();
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}
