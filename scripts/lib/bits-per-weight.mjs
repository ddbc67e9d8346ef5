// Bits per weight counted the same way for an edgeq checkpoint (safetensors) and a GGUF file, for tables that put
// edgeq's quantizations next to llama.cpp's (scripts/bench-quality.mjs):
//   linear bits/w = bytes of the block linears (q, k, v, o, gate, up, down: codes + scales + zero points, or the
//                   GGUF blocks) × 8 / their parameter count;
//   tensor bits/w = bytes of all tensor data × 8 / all parameters;
//   file bits/w   = file bytes × 8 / all parameters (GGUF: + metadata and tokenizer; safetensors: + JSON header).
import fs from 'node:fs';
import path from 'node:path';
import { dist } from './bench-common.mjs';

const GGUF_LINEAR = /^blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$/;
const HF_LINEAR = /^(model\.layers\.\d+\.(?:self_attn\.(?:q|k|v|o)_proj|mlp\.(?:gate|up|down)_proj))\./;

function result(fileBytes, params, tensorBytes, linearParams, linearBytes, types) {
  return {
    fileBytes,
    params,
    tensorBytes,
    linearParams,
    linearBytes,
    fileBitsPerWeight: (fileBytes * 8) / params,
    tensorBitsPerWeight: (tensorBytes * 8) / params,
    linearBitsPerWeight: (linearBytes * 8) / linearParams,
    types,
  };
}

/** GGUF, read with edgeq's GGUF reader; types: the ggml type of token_embd, output and the set over the linears. */
export async function ggufBits(file) {
  const { GgufFile } = await dist('formats/gguf/reader.js');
  const g = await GgufFile.open(file);
  try {
    let params = 0, tensorBytes = 0, linearParams = 0, linearBytes = 0;
    const linearTypes = new Set();
    const types = {};
    for (const t of g.tensors) {
      params += t.elements;
      tensorBytes += t.bytes;
      if (GGUF_LINEAR.test(t.name)) {
        linearParams += t.elements;
        linearBytes += t.bytes;
        linearTypes.add(t.type.name);
      } else if (t.name === 'token_embd.weight') types.embedding = t.type.name;
      else if (t.name === 'output.weight') types.head = t.type.name;
    }
    types.linears = [...linearTypes].join('+');
    return result(fs.statSync(file).size, params, tensorBytes, linearParams, linearBytes, types);
  } finally {
    await g.close();
  }
}

/**
 * edgeq checkpoint folder (model.safetensors): sizes from the safetensors header, a quantized linear's parameter
 * count from its `edgeq.qtypes` entry (n × k), a dense tensor's from its shape.
 */
export function checkpointBits(dir) {
  const file = path.join(dir, 'model.safetensors');
  const fd = fs.openSync(file, 'r');
  let header;
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const buf = Buffer.alloc(n);
    fs.readSync(fd, buf, 0, n, 8);
    header = JSON.parse(buf.toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
  const qtypes = header.__metadata__?.['edgeq.qtypes'] ? JSON.parse(header.__metadata__['edgeq.qtypes']) : {};
  let params = 0, tensorBytes = 0, linearParams = 0, linearBytes = 0;
  const linearTypes = new Set();
  const types = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bytes = t.data_offsets[1] - t.data_offsets[0];
    tensorBytes += bytes;
    const lin = HF_LINEAR.exec(name);
    if (lin) {
      linearBytes += bytes;
      const q = qtypes[`${lin[1]}.weight`];
      if (name === `${lin[1]}.weight`) {
        const e = t.shape.reduce((a, b) => a * b, 1);
        linearParams += e;
        params += e;
        linearTypes.add(t.dtype);
      } else if (q && name.endsWith('.qweight')) {
        linearParams += q.n * q.k;
        params += q.n * q.k;
        linearTypes.add(q.qtype);
      }
      continue;
    }
    params += t.shape.reduce((a, b) => a * b, 1);
    if (name === 'model.embed_tokens.weight') types.embedding = t.dtype;
    else if (name === 'lm_head.weight') types.head = t.dtype;
  }
  types.linears = [...linearTypes].join('+');
  return result(fs.statSync(file).size, params, tensorBytes, linearParams, linearBytes, types);
}
