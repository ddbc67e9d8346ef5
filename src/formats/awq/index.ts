/** AutoAWQ GEMM checkpoints. */
export { AWQ_ORDER, packAwqGemm, checkAwqShape, type AwqGemmTensors } from './pack.js';
export { AwqCheckpointWriter, awqLayout, awqQuantizationConfig, type AwqWriterOptions } from './writer.js';
