export { exportOnnx, ONNX_DATA_FILE, ONNX_MODEL_FILE, ONNX_OPSET, type OnnxExportOptions, type OnnxExportResult } from './export-onnx.js';
export {
  buildLlamaGraph,
  denseWeightName,
  pastKeyName,
  pastValueName,
  presentKeyName,
  presentValueName,
  ATTENTION_MASK,
  INPUT_IDS,
  LOGITS,
  POSITION_IDS,
  type LlamaGraphInfo,
  type OnnxLinearInfo,
} from './llama-graph.js';
export { packMatMulNBits, matmulNBitsProblem, matmulNBitsBlockSize, MATMUL_NBITS_BITS, type MatMulNBitsWeight } from './matmul-nbits.js';
export { verifyOnnx, verifyOnnxExport, loadOnnxRuntime, type OnnxExportVerifyOptions, type OnnxVerifyOptions, type OnnxVerifyResult } from './verify-onnx.js';
