/**
 * The eval record `<checkpoint>/edgeq-eval.json` (what `edgeq eval --json` prints, plus `date`, and
 * `peer` when a benchmark compared with llama.cpp: {name, prefillTokPerSec, decodeTokPerSec}, or
 * src/peer's PeerThroughput {name, prefill: {mean}, decode: {mean}}, also under `throughput.peer` or
 * `llamaCpp`), read tolerantly: every field is optional and a
 * field of the wrong type counts as missing. Only JSON that is not an object is an error.
 */
import { FormatError } from '../core/errors.js';

export const EVAL_RECORD_FILE = 'edgeq-eval.json';

export interface PeerThroughput {
  name: string;
  prefillTokPerSec?: number;
  decodeTokPerSec?: number;
}

export interface EvalRecord {
  date?: string;
  model?: string;
  ctx?: number;
  windows?: number;
  ppl?: number;
  baselineModel?: string;
  baselinePpl?: number;
  deltaPpl?: number;
  meanKl?: number;
  top1Agreement?: number;
  prefillTokPerSec?: number;
  decodeTokPerSec?: number;
  promptTokens?: number;
  genTokens?: number;
  threads?: number;
  sizeBytes?: number;
  params?: number;
  bitsPerWeight?: number;
  peakRssBytes?: number;
  peer?: PeerThroughput;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Drop undefined fields (keeps the record's JSON and `in` checks honest). */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function parseEvalRecord(text: string, file: string): EvalRecord {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw new FormatError('E_EVAL_RECORD', `not valid JSON (${(err as Error).message})`, file, `re-run 'edgeq eval' on the checkpoint to rewrite it`);
  }
  const r = obj(root);
  if (!r) throw new FormatError('E_EVAL_RECORD', 'not a JSON object', file, `re-run 'edgeq eval' on the checkpoint to rewrite it`);
  const ev = obj(r['eval']) ?? {};
  const base = obj(r['baseline']) ?? {};
  const tp = obj(r['throughput']) ?? {};
  const size = obj(r['size']) ?? {};
  const peerObj = obj(r['peer']) ?? obj(tp['peer']) ?? obj(r['llamaCpp']);
  let peer: PeerThroughput | undefined;
  if (peerObj) {
    // {prefillTokPerSec, decodeTokPerSec} as eval prints, or src/peer's {prefill: Rate, decode: Rate}
    const rate = (flat: string, nested: string): number | undefined => num(peerObj[flat]) ?? num(peerObj[nested]) ?? num(obj(peerObj[nested])?.['mean']);
    const name = str(peerObj['name']) ?? (obj(r['llamaCpp']) === peerObj ? 'llama.cpp' : 'peer');
    const p = compact({ name, prefillTokPerSec: rate('prefillTokPerSec', 'prefill'), decodeTokPerSec: rate('decodeTokPerSec', 'decode') });
    if (p.prefillTokPerSec !== undefined || p.decodeTokPerSec !== undefined) peer = p;
  }
  return compact({
    date: str(r['date']),
    model: str(r['model']),
    ctx: num(r['ctx']),
    windows: num(ev['windows']) ?? num(base['windows']),
    ppl: num(ev['ppl']) ?? num(base['ppl']),
    baselineModel: str(base['model']),
    baselinePpl: num(base['baselinePpl']),
    deltaPpl: num(base['deltaPpl']),
    meanKl: num(base['meanKl']),
    top1Agreement: num(base['top1Agreement']),
    prefillTokPerSec: num(tp['prefillTokPerSec']),
    decodeTokPerSec: num(tp['decodeTokPerSec']),
    promptTokens: num(tp['promptTokens']),
    genTokens: num(tp['genTokens']),
    threads: num(r['threads']),
    sizeBytes: num(size['bytes']),
    params: num(size['params']),
    bitsPerWeight: num(size['bitsPerWeight']),
    peakRssBytes: num(r['peakRssBytes']),
    peer,
  });
}
