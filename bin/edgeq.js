#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/cli/main.js (built by `npm install` through the prepare step).
import('../dist/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  process.stderr.write(`edgeq: ${err && err.message ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
