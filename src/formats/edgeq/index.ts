/** edgeq's own quantized checkpoint format: writer, reader and shared plan/folder helpers. */
export { EdgeqCheckpointWriter, type EdgeqWriterOptions } from './writer.js';
export { EdgeqCheckpoint, isEdgeqCheckpoint, type LowRankWeight } from './reader.js';
export { factorGrid, lowRankFactorPrefix, type EdgeqLowRankType } from './lowrank-meta.js';
export {
  EDGEQ_FORMAT_VERSION,
  edgeqTensorNames,
  edgeqTensorShapes,
  type EdgeqCalibrationInfo,
  type EdgeqProvenance,
  type EdgeqTensorQType,
} from './metadata.js';
export {
  checkPlan,
  checkQuantizedWeight,
  effectiveGroupSize,
  lowRankEntryBytes,
  lowRankFactorEntry,
  lowRankFactorName,
  modulePrefix,
  numGroupsOf,
  type DensePlanEntry,
  type LowRankPlanEntry,
  type QuantizedPlanEntry,
  type TensorPlanEntry,
} from './plan.js';
export { MODEL_SIDE_FILES, copyModelSideFiles, readSourceConfig, type ModelSource } from './side-files.js';
export { openAtomicDir, withAtomicDir, tempDirFor, type AtomicDir, type AtomicDirOptions } from './atomic-dir.js';
export { PackedExportWriter, type ExportLayout, type ExportWriterOptions } from './export-writer.js';
