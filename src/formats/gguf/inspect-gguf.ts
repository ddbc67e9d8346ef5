/** `edgeq inspect file.gguf`: the header, the scalar metadata, and the tensors with their types and sizes. */
import { plainValue } from './metadata-values.js';
import { GgufFile } from './reader.js';
import { ggmlBitsPerWeight } from './tensor-types.js';

export interface GgufInspection {
  file: string;
  version: number;
  bytes: number;
  alignment: number;
  dataOffset: number;
  /** Scalar values in full; arrays as "[type × n]" with their first elements. */
  metadata: Record<string, unknown>;
  tensors: { name: string; type: string; dims: number[]; elements: number; bytes: number; offset: number }[];
  /** Weights and bytes per GGML type. */
  types: Record<string, { tensors: number; elements: number; bytes: number; bitsPerWeight: number }>;
  bitsPerWeight: number;
}

export async function inspectGguf(file: string): Promise<GgufInspection> {
  const g = await GgufFile.open(file);
  try {
    const metadata: Record<string, unknown> = {};
    for (const [k, v] of g.metadata) {
      if (v.type !== 'array') metadata[k] = plainValue(v);
      else {
        const arr = plainValue(v) as unknown[];
        metadata[k] = `[${v.elemType} × ${arr.length}]${arr.length ? ` ${JSON.stringify(arr.slice(0, 4)).slice(0, 80)}${arr.length > 4 ? '…' : ''}` : ''}`;
      }
    }
    const types: GgufInspection['types'] = {};
    let elements = 0;
    let bytes = 0;
    for (const t of g.tensors) {
      const e = (types[t.type.name] ??= { tensors: 0, elements: 0, bytes: 0, bitsPerWeight: ggmlBitsPerWeight(t.type) });
      e.tensors++;
      e.elements += t.elements;
      e.bytes += t.bytes;
      elements += t.elements;
      bytes += t.bytes;
    }
    return {
      file,
      version: g.version,
      bytes: g.size,
      alignment: g.alignment,
      dataOffset: g.dataOffset,
      metadata,
      tensors: g.tensors.map((t) => ({ name: t.name, type: t.type.name, dims: t.dims, elements: t.elements, bytes: t.bytes, offset: t.offset })),
      types,
      bitsPerWeight: elements ? (bytes * 8) / elements : 0,
    };
  } finally {
    await g.close();
  }
}
