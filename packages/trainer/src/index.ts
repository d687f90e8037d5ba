export type { BackendAttempt, BackendName, BackendReport, InitBackendOptions } from './backend';
export { initBackend } from './backend';
export type { LossGradientOptions, LossGradients } from './checkpointing';
export { lossGradients, lossGradientsAsync } from './checkpointing';
export type { Llama3RopeScaling, LlamaConfig } from './config';
export { parseLlamaConfig } from './config';
export { ensureGradients } from './ensure-gradients';
export { TrainerError } from './errors';
export { useF16Inference } from './f16';
export type { HfTokenizerOptions } from './hf-tokenizer';
export { HfTokenizer } from './hf-tokenizer';
export { useInt8Inference } from './int8';
export { KvCache } from './kv-cache';
export type { EvaluationOptions, TokenPair } from './language-model';
export { encodePair } from './language-model';
export type { Linear } from './linear';
export { DenseLinear } from './linear';
export type {
  ForwardOptions,
  GreedyOptions,
  LlamaLayer,
  ProjectionFactory,
  ProjectionName,
  TokenBatch,
} from './llama-model';
export { LlamaModel } from './llama-model';
export type { ConvertLlama2cResult, Llama2cHeader, Llama2cToken } from './llama2c';
export {
  convertLlama2c,
  llama2cTokenizerJson,
  mergesFromScores,
  parseLlama2cHeader,
  parseLlama2cTokenizer,
} from './llama2c';
export type { LoadedModel, LoadModelOptions, ModelQuantization } from './load-model';
export { loadModel } from './load-model';
export type { CausalLmLossOptions } from './loss';
export { causalLmLoss } from './loss';
export type { AdamWArithmetic, AdamWOptions } from './optim/adamw';
export { AdamW } from './optim/adamw';
export type { AdamW8bitOptions } from './optim/adamw-8bit';
export { AdamW8bit } from './optim/adamw-8bit';
export {
  dequantizeBlockwise,
  OPTIMIZER_BLOCKSIZE,
  quantizeBlockwise,
  signedDynamicMap,
  unsignedDynamicMap,
} from './optim/dynamic-map';
export type { AccumulationMode, ClipResult, SkippedStep } from './optim/gradients';
export {
  clipCoefficient,
  clipGradNorm,
  clipGradNormAsync,
  findNonFiniteGradients,
  findNonFiniteGradientsAsync,
  GradientAccumulator,
  gradNormAsync,
  NonFiniteGuard,
} from './optim/gradients';
export type { ScheduleName, ScheduleOptions } from './optim/schedule';
export { createSchedule, warmupStepsFromRatio } from './optim/schedule';
export type {
  NamedGradients,
  NamedVariables,
  Optimizer,
  OptimizerState,
  OptimizerStepOptions,
  StateTensor,
} from './optim/types';
export type { TrainPresetName } from './presets';
export { TRAIN_PRESETS, trainPreset } from './presets';
export { computeInverseFrequencies, rotaryTables } from './rope';
export type {
  CheckpointData,
  CheckpointManifest,
  CheckpointPhase,
  FoundCheckpoint,
  JsonValue,
  LoadedCheckpoint,
  WriteCheckpointOptions,
} from './run/checkpoint';
export {
  findLatestCheckpoint,
  loadCheckpoint,
  pruneCheckpoints,
  verifyCheckpoint,
  writeCheckpoint,
} from './run/checkpoint';
export type { RngState } from './run/prng';
export { Rng } from './run/prng';
export type { StepLogContents, StepRecord } from './run/step-log';
export { appendStepLog, readStepLog, repairStepLog } from './run/step-log';
export type { SavedModel, SaveModelOptions } from './save-model';
export { saveModel, saveQuantized } from './save-model';
export type {
  TrainConfig,
  TrainDataset,
  TrainOptions,
  TrainProgress,
  TrainResult,
} from './train';
export { train } from './train';
