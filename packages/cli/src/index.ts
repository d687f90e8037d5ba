export type { MergedEvalOutput } from './_merge-shards';
export { mergeEvalShards } from './_merge-shards';
export type { LossPoint } from './charts';
export {
  lossChartSpec,
  metricsChartData,
  metricsChartSpec,
  parseLossLog,
  renderSvg,
} from './charts';
export type { CompareCommandOptions, CompareCommandResult } from './commands/compare';
export { runCompare } from './commands/compare';
export type { ConvertCommandOptions } from './commands/convert';
export { runConvert } from './commands/convert';
export type { EvalCommandOptions } from './commands/eval';
export { parseShard, runEval } from './commands/eval';
export type { ExperimentCommandOptions } from './commands/experiment';
export { EMBEDDED_CONFIG_PATH, runExperiment } from './commands/experiment';
export type {
  AdapterSummary,
  Bnb4bitSummary,
  DirectorySummary,
  InspectCommandOptions,
  InspectResult,
  ModelSummary,
  SafetensorsSummary,
  TensorSummary,
} from './commands/inspect';
export { formatInspect, inspectPath, inspectSafetensors, runInspect } from './commands/inspect';
export type { MergeCommandOptions } from './commands/merge';
export { runMerge } from './commands/merge';
export type { QuantizeCommandOptions, QuantizeCommandResult } from './commands/quantize';
export {
  bnbQuantizationConfig,
  LLAMA_PROJECTION_WEIGHT,
  runQuantize,
  withQuantizationConfig,
} from './commands/quantize';
export type { TrainCommandOptions } from './commands/train';
export { runTrain } from './commands/train';
export type {
  ExperimentConfig,
  ExperimentConfigInput,
  FinetuneHyperparameters,
} from './config';
export {
  experimentConfigSchema,
  experimentJsonSchema,
  loadExperimentConfig,
  MMLU_CS_SUBJECTS,
  parseExperimentConfig,
  resolveConfigPaths,
  resolveFinetune,
} from './config';
export type { CliErrorCode } from './errors';
export { CliError, EXIT_CODES } from './errors';
export type { CliIo, CliOutput } from './io';
export { createBufferedIo, createNodeIo } from './io';
export type { OutcomeTasks, PairedOutcomes } from './outcomes';
export { pairOutcomes, parseOutcomesFile, readLmEvalSamplesDir } from './outcomes';
export { createProgram, runCli } from './program';
export type { Progress, ProgressMode, ProgressOptions } from './progress';
export { createProgress } from './progress';
export type {
  Report,
  ReportFile,
  ReportInput,
  ReportJson,
  ReportModelInput,
} from './report';
export { buildReport, stringifyReportJson, writeReport } from './report';
export type { Table2Summary } from './table2';
export { formatSummaryLines, summarizeTable2 } from './table2';
