export type { Batch, CollateOptions, MakeBatchesOptions, TokenSequence } from './batch';
export { collateBatch, makeBatches, packSequences, segmentCausalMask } from './batch';
export type { Gsm8kToAlpacaOptions } from './convert';
export { gsm8kToAlpaca } from './convert';
export type { LoadHellaswagOptions, MmluCsvRecord } from './datasets';
export { loadAlpaca, loadGsm8k, loadHellaswag, loadMmluCsv } from './datasets';
export type { DatasetsErrorCode, DatasetsErrorLocation } from './errors';
export { DatasetsError } from './errors';
export type { CsvOptions, DataFormat, LoadOptions, LoadResult, SkippedRecord } from './load';
export { formatFromPath, loadRecords, streamRecords } from './load';
export type { MixOrigin, MixResult, MixSource, Random } from './random';
export { createRandom, mixDatasets, sampleIndices, sampleSubset, shuffle } from './random';
export type {
  AlpacaRecord,
  Gsm8kRecord,
  HellaswagPreprocessed,
  HellaswagRaw,
  HellaswagRecord,
  MmluCsvRow,
  MmluItem,
} from './schemas';
export {
  alpacaRecordSchema,
  gsm8kRecordSchema,
  hellaswagPreprocessedSchema,
  hellaswagRawSchema,
  MMLU_CSV_COLUMNS,
  mmluCsvRowSchema,
  mmluParquetSchema,
  toMmluItem,
} from './schemas';
export type { SftExample, SftOptions } from './sft';
export { IGNORE_INDEX, tokenizeForSft } from './sft';
export type {
  ChatMessage,
  ChatTemplateOptions,
  PromptTemplate,
  RenderedPrompt,
  TokenizerConfigLike,
} from './templates';
export {
  renderChatTemplate,
  renderPrompt,
  STANFORD_ALPACA_TEMPLATE,
  UNSLOTH_ALPACA_TEMPLATE,
} from './templates';
export type { Tokenizer } from './tokenizer';
