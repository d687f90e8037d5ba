export type { BackendAttempt, BackendName, BackendReport, InitBackendOptions } from './backend';
export { initBackend } from './backend';
export type { Llama3RopeScaling, LlamaConfig } from './config';
export { parseLlamaConfig } from './config';
export { TrainerError } from './errors';
export type { HfTokenizerOptions } from './hf-tokenizer';
export { HfTokenizer } from './hf-tokenizer';
export { KvCache } from './kv-cache';
export type { EvaluationOptions, TokenPair } from './language-model';
export { encodePair } from './language-model';
export type { Linear } from './linear';
export { DenseLinear } from './linear';
export type {
  ForwardOptions,
  GreedyOptions,
  LlamaLayer,
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
export type { LoadedModel, LoadModelOptions } from './load-model';
export { loadModel } from './load-model';
export { computeInverseFrequencies, rotaryTables } from './rope';
