export { exportQnnOnnx, ENCODINGS_FILE, type QnnExportOptions, type QnnExportResult, type QnnWeightReport } from './export-qnn.js';
export { collectActivationRanges, type ActivationRanges, type Range } from './activation-ranges.js';
export { activationEncoding, encodingsFile, paramEncoding, ENCODINGS_VERSION, type EncodingsFile, type ParamEncoding, type LpbqEncoding, type PerChannelEncoding, type ActivationEncoding } from './encodings.js';
export { validateEncodings, ENC_TYPES } from './encodings-schema.js';
export { toLpbq, dequantizeLpbq, lpbqAsQuantized, lpbqBlockSizeFor, LPBQ_BLOCK_SIZES, type LpbqWeight, type LpbqFit } from './lpbq.js';
export { exportQnnCalibrated, type CalibratedQnnExportOptions } from './export-qnn-calibrated.js';
