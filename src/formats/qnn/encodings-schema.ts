/**
 * A structural validator for AIMET/QNN encodings files, version 1.0.0, written from FORMATS.md §3(e) (the
 * AIMET encoding specification and fastforward's export): returns every violation found (empty = valid),
 * each prefixed with its JSON path. Checked: the top-level keys; per entry the name (non-empty, unique in
 * its list), dtype INT/FLOAT (FLOAT entries need only dtype + bw), enc_type, bw 4–32, is_sym boolean,
 * scale (positive, finite) and offset (integers) arrays of equal length — one entry for PER_TENSOR —,
 * symmetric offsets −2^(bw−1); PER_BLOCK needs block_size; LPBQ needs compressed_bw < bw, block_size,
 * and per_block_int_scale integers in [1, 2^compressed_bw], a whole number of blocks per channel.
 */

export const ENC_TYPES = ['PER_TENSOR', 'PER_CHANNEL', 'PER_BLOCK', 'LPBQ', 'VECTOR'] as const;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function checkEntry(e: unknown, at: string, errors: string[]): void {
  if (!isObj(e)) {
    errors.push(`${at}: must be an object`);
    return;
  }
  if (typeof e.name !== 'string' || e.name.length === 0) errors.push(`${at}.name: must be a non-empty string`);
  if (e.dtype !== 'INT' && e.dtype !== 'FLOAT') errors.push(`${at}.dtype: must be "INT" or "FLOAT" (got ${JSON.stringify(e.dtype)})`);
  if (!isInt(e.bw) || e.bw < 4 || e.bw > 32) errors.push(`${at}.bw: must be an integer from 4 to 32 (got ${JSON.stringify(e.bw)})`);
  if (e.dtype === 'FLOAT') {
    if (e.bw !== 16 && e.bw !== 32) errors.push(`${at}.bw: FLOAT encodings are 16 or 32 bits`);
    return;
  }
  if (typeof e.enc_type !== 'string' || !(ENC_TYPES as readonly string[]).includes(e.enc_type))
    errors.push(`${at}.enc_type: must be one of ${ENC_TYPES.join(', ')} (got ${JSON.stringify(e.enc_type)})`);
  if (typeof e.is_sym !== 'boolean') errors.push(`${at}.is_sym: must be a boolean (1.0.0; "True"/"False" strings are the 0.x format)`);
  const scale = e.scale;
  const offset = e.offset;
  if (!Array.isArray(scale) || scale.length === 0 || !scale.every((s) => typeof s === 'number' && Number.isFinite(s) && s > 0))
    errors.push(`${at}.scale: must be a non-empty array of positive finite numbers`);
  if (!Array.isArray(offset) || !offset.every(isInt)) errors.push(`${at}.offset: must be an array of integers`);
  if (Array.isArray(scale) && Array.isArray(offset) && scale.length !== offset.length)
    errors.push(`${at}: scale has ${scale.length} entries but offset has ${offset.length}`);
  if (e.enc_type === 'PER_TENSOR' && Array.isArray(scale) && scale.length !== 1) errors.push(`${at}.scale: PER_TENSOR has exactly one scale`);
  if (e.is_sym === true && isInt(e.bw) && Array.isArray(offset) && offset.some((o) => o !== -(2 ** ((e.bw as number) - 1))))
    errors.push(`${at}.offset: symmetric ${e.bw}-bit entries have offset ${-(2 ** ((e.bw as number) - 1))}`);
  if ((e.enc_type === 'PER_BLOCK' || e.enc_type === 'LPBQ') && (!isInt(e.block_size) || e.block_size <= 0))
    errors.push(`${at}.block_size: ${e.enc_type} needs a positive integer block_size`);
  if (e.enc_type === 'LPBQ') {
    if (e.is_sym !== true) errors.push(`${at}.is_sym: LPBQ is symmetric`);
    const cbw = e.compressed_bw;
    if (!isInt(cbw) || cbw < 1 || !isInt(e.bw) || cbw >= e.bw) errors.push(`${at}.compressed_bw: must be an integer below bw`);
    const pbs = e.per_block_int_scale;
    if (!Array.isArray(pbs) || pbs.length === 0) errors.push(`${at}.per_block_int_scale: LPBQ needs the per-block integer scales`);
    else {
      const hi = isInt(cbw) ? 2 ** cbw : Infinity;
      const bad = pbs.findIndex((m) => !isInt(m) || m < 1 || m > hi);
      if (bad >= 0) errors.push(`${at}.per_block_int_scale[${bad}]: must be an integer in [1, ${hi}] (got ${JSON.stringify(pbs[bad])})`);
      if (Array.isArray(scale) && scale.length > 0 && pbs.length % scale.length !== 0)
        errors.push(`${at}.per_block_int_scale: ${pbs.length} entries is not a whole number of blocks for ${scale.length} channels`);
    }
  }
}

function checkList(v: unknown, key: string, errors: string[]): void {
  if (!Array.isArray(v)) {
    errors.push(`${key}: must be an array (1.0.0 list format)`);
    return;
  }
  const seen = new Set<string>();
  v.forEach((e, i) => {
    checkEntry(e, `${key}[${i}]`, errors);
    const name = isObj(e) ? e.name : undefined;
    if (typeof name === 'string') {
      if (seen.has(name)) errors.push(`${key}[${i}].name: duplicate '${name}'`);
      seen.add(name);
    }
  });
}

/** Every violation of the 1.0.0 encodings schema in `json` (empty when valid). */
export function validateEncodings(json: unknown): string[] {
  const errors: string[] = [];
  if (!isObj(json)) return ['(root): must be a JSON object'];
  if (json.version !== '1.0.0') errors.push(`version: must be "1.0.0" (got ${JSON.stringify(json.version)})`);
  checkList(json.activation_encodings, 'activation_encodings', errors);
  checkList(json.param_encodings, 'param_encodings', errors);
  if (json.quantizer_args !== undefined && !isObj(json.quantizer_args)) errors.push('quantizer_args: must be an object');
  if (json.excluded_layers !== undefined && (!Array.isArray(json.excluded_layers) || !json.excluded_layers.every((x) => typeof x === 'string')))
    errors.push('excluded_layers: must be an array of strings');
  const known = new Set(['version', 'activation_encodings', 'param_encodings', 'quantizer_args', 'excluded_layers']);
  for (const k of Object.keys(json)) if (!known.has(k)) errors.push(`${k}: unknown top-level key`);
  return errors;
}
