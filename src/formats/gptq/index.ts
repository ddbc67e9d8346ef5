/** AutoGPTQ / GPTQModel v1 ("gptq") checkpoints. */
export { packGptqV1, checkGptqShape, defaultGIdx, type GptqV1Tensors } from './pack.js';
export { GptqCheckpointWriter, checkGptqPlan, gptqLayout, gptqQuantizationConfig, type GptqWriterOptions } from './writer.js';
