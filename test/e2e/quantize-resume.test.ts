/**
 * Resuming an interrupted quantization through the real CLI (`node bin/edgeq.js`, built dist/): GPTQ on
 * brown-llama-7m (6 blocks, calibration 8 × 128) is killed with SIGKILL once at least one block is
 * journaled in OUT.partial/, refused without --resume and with a different --seed, then resumed: the
 * resumed run reports the journaled blocks as skipped and every file of its folder is byte-identical to
 * an uninterrupted run's. A second run is stopped with SIGINT (exit 130, the resume command on stderr)
 * and resumed to the same bytes.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/core/paths.js';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'edgeq.js');
const ARGS = ['quantize', '-m', 'brown-llama-7m', '--method', 'gptq', '--bits', '4', '--calib-samples', '8', '--calib-seqlen', '128', '--threads', '1', '--quiet'];
const BLOCKS = 6;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ReturnType<typeof spawn>>();

function start(args: string[]): { pid: number; kill: (s: NodeJS.Signals) => void; done: Promise<Exit> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  const done = new Promise<Exit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { pid: child.pid!, kill: (s) => child.kill(s), done };
}

const run = (args: string[]): Promise<Exit> => start(args).done;

function journalOf(out: string): { blocks: { done: number; total: number } } | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(`${out}.partial`, 'edgeq-resume.json'), 'utf8'));
  } catch {
    return null;
  }
}

/** Polls the journal until at least one block is done (the process must still be running). */
async function waitForJournal(out: string, running: Promise<Exit>): Promise<number> {
  let exited = false;
  void running.then(() => (exited = true));
  for (;;) {
    const j = journalOf(out);
    if (j && j.blocks.done >= 1) return j.blocks.done;
    if (exited) throw new Error(`the run ended before a block was journaled: ${JSON.stringify(await running)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every file of a folder: name → bytes. */
function folderFiles(dir: string): Map<string, Buffer> {
  return new Map(fs.readdirSync(dir).sort().map((n) => [n, fs.readFileSync(path.join(dir, n))]));
}

function expectSameFolder(dir: string, ref: string): void {
  const a = folderFiles(dir);
  const b = folderFiles(ref);
  expect([...a.keys()]).toEqual([...b.keys()]);
  expect(a.has('model.safetensors')).toBe(true);
  for (const [name, bytes] of b) expect(a.get(name)!.equals(bytes), `${name} differs from the uninterrupted run's`).toBe(true);
}

let tmp: string;
let reference: Promise<Exit>;
const ref = () => path.join(tmp, 'ref');

beforeAll(() => {
  if (!fs.existsSync(path.join(PACKAGE_ROOT, 'dist', 'pipeline', 'resume', 'session.js'))) throw new Error('dist/ is not built: run `npm run build:ts`');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-resume-e2e-'));
  reference = run([...ARGS, '-o', ref()]); // the uninterrupted run, alongside the interrupted ones
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL'); // a failed test leaves nothing running
  await reference.catch(() => undefined);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const TIMEOUT = 300_000; // several quantization runs on a shared 2-core machine

describe('edgeq quantize --resume', () => {
  it('SIGKILL after a journaled block: refused without --resume or with another seed; resumed, it skips the journaled blocks and writes the same bytes', async () => {
    const out = path.join(tmp, 'killed');
    const p = start([...ARGS, '-o', out]);
    await waitForJournal(out, p.done);
    p.kill('SIGKILL');
    const killed = await p.done;
    expect(killed.signal).toBe('SIGKILL');
    const journaled = journalOf(out)!.blocks.done;
    expect(journaled).toBeGreaterThanOrEqual(1);
    expect(journaled).toBeLessThan(BLOCKS); // killed mid-run
    expect(fs.existsSync(out)).toBe(false);

    const again = await run([...ARGS, '-o', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`an interrupted run left ${out}.partial`);
    expect(again.stderr).toMatch(/hint: pass --resume/);

    const otherSeed = await run([...ARGS, '--seed', '7', '-o', out, '--resume']);
    expect(otherSeed.code).toBe(2);
    expect(otherSeed.stderr).toContain('the interrupted run had --seed 0, this run has 7');
    expect(journalOf(out)!.blocks.done).toBe(journaled); // refusals leave the partial output as it was

    const resumed = await run([...ARGS, '-o', out, '--resume', '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const report = JSON.parse(resumed.stdout);
    expect(report.resume).toMatchObject({ skippedBlocks: journaled, blocks: BLOCKS });
    expect(report.layers).toHaveLength(BLOCKS * 7); // the journaled blocks' reports included
    expect(fs.existsSync(`${out}.partial`)).toBe(false);

    const r = await reference;
    expect(r.code, r.stderr).toBe(0);
    expectSameFolder(out, ref());
  }, TIMEOUT);

  it('SIGINT stops once the current block is journaled (exit 130, resume command printed); the resume writes the same bytes', async () => {
    const out = path.join(tmp, 'ctrl-c');
    const p = start([...ARGS, '-o', out]);
    await waitForJournal(out, p.done);
    p.kill('SIGINT');
    const stopped = await p.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    const m = /edgeq: interrupted after block (\d+) of 6; resume with: edgeq quantize (.*) --resume\n/.exec(stopped.stderr);
    expect(m, stopped.stderr).not.toBeNull();
    const n = Number(m![1]);
    expect(journalOf(out)!.blocks.done).toBe(n);
    expect(m![2]).toContain(`-o ${out}`);

    const resumed = await run([...ARGS, '-o', out, '--resume', '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout).resume.skippedBlocks).toBe(n);
    const r = await reference;
    expect(r.code, r.stderr).toBe(0);
    expectSameFolder(out, ref());
  }, TIMEOUT);
});
