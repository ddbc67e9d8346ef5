/**
 * `edgeq export --target onnx` through the real CLI (in-process): a quantized checkpoint becomes an ONNX
 * folder that `--verify` runs in onnxruntime-node next to edgeq's core; an existing output is refused
 * without --overwrite; a 3-bit checkpoint is refused (exit 2/3, the reason named) unless
 * --allow-requantize, which warns per linear.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateEncodings } from '../../src/formats/qnn/index.js';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-onnx-cli-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('edgeq export --target onnx', () => {
  it('int4 g32 stories260K: folder written, --verify agrees with edgeq; refuses an existing folder', async () => {
    const q = path.join(tmp, 'q4');
    const qr = await runCli(['quantize', '-m', 'stories260K', '--method', 'rtn', '--bits', '4', '-g', '32', '--fallback', '-o', q, '--json', '--threads', '1']);
    expect(qr.code, qr.stderr).toBe(0);
    const out = path.join(tmp, 'q4-onnx');
    const r = await runCli(['export', '-m', q, '--target', 'onnx', '-o', out, '--verify', '--verify-windows', '2', '--ctx', '64', '--json', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.target).toBe('onnx');
    expect(fs.existsSync(path.join(out, 'model.onnx'))).toBe(true);
    expect(fs.statSync(path.join(out, 'model.onnx.data')).size).toBe(j.details.dataBytes);
    expect(j.verify.available).toBe(true);
    expect(j.verify.windows).toBe(2);
    expect(j.verify.logitsRelL2).toBeLessThan(1e-2);
    expect(j.verify.pplRelDiff).toBeLessThan(1e-3);
    const again = await runCli(['export', '-m', q, '--target', 'onnx', '-o', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists/);
  });

  it('3-bit: refused with the reason; --allow-requantize writes it with a warning per linear', async () => {
    const q = path.join(tmp, 'q3');
    expect((await runCli(['quantize', '-m', 'stories260K', '--method', 'rtn', '--bits', '3', '-g', '32', '--fallback', '-o', q, '--threads', '1'])).code).toBe(0);
    const out = path.join(tmp, 'q3-onnx');
    const refused = await runCli(['export', '-m', q, '--target', 'onnx', '-o', out]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/3-bit/);
    expect(fs.existsSync(out)).toBe(false);
    const ok = await runCli(['export', '-m', q, '--target', 'onnx', '-o', out, '--allow-requantize']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr.match(/re-quantized int3_g32_asym → int4_g32_asym/g)?.length).toBeGreaterThan(0);
  });

  it('--target qnn: ONNX + model.encodings (valid 1.0.0, one entry per quantized linear, calibrated activations)', async () => {
    const q = path.join(tmp, 'q4sym');
    expect((await runCli(['quantize', '-m', 'stories260K', '--method', 'rtn', '--bits', '4', '-g', '32', '--sym', '--fallback', '-o', q, '--threads', '1'])).code).toBe(0);
    const out = path.join(tmp, 'q4sym-qnn');
    const r = await runCli(['export', '-m', q, '--target', 'qnn', '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    const enc = JSON.parse(fs.readFileSync(path.join(out, 'model.encodings'), 'utf8'));
    expect(validateEncodings(enc)).toEqual([]);
    expect(enc.param_encodings).toHaveLength(35);
    expect(j.details.weights).toHaveLength(35);
    expect(enc.activation_encodings.length).toBe(j.details.activationEncodings);
    expect(enc.activation_encodings.length).toBe(3 + 5 * 5);
    expect(fs.existsSync(path.join(out, 'model.onnx'))).toBe(true);
  });
});
