export { PythonRandom, sha256Hex } from '@qlora/metrics';
export type { RequestCache } from './cache';
export { createMemoryCache } from './cache';
export type { LanguageModelConformance } from './conformance';
export { testLanguageModel } from './conformance';
export type { FewshotContextParts, FewshotExample } from './context';
export { buildFewshotContext } from './context';
export { BenchCoreError } from './errors';
export type { DeterministicModelOptions } from './fake-model';
export { createDeterministicLanguageModel, deterministicLoglikelihood } from './fake-model';
export type { RegexFilterOptions, TaskFilter } from './filters';
export { createRegexFilter, findallPython, NONE_FILTER } from './filters';
export type { PythonJsonValue } from './python-format';
export {
  dumpsPythonJson,
  formatPythonFloat,
  PythonFloat,
  sanitizePythonList,
} from './python-format';
export {
  argmax,
  cutAtStopStrings,
  isPythonSpace,
  moveTrailingWhitespace,
  pythonRstrip,
  pythonStrip,
} from './python-text';
export type { RequestKind } from './request-hash';
export { canonicalJson, hashRequest } from './request-hash';
export type {
  BuildResultsOptions,
  MetricSummary,
  RunTaskOptions,
  SummarizeOptions,
  TaskOutput,
  TaskRun,
} from './results';
export {
  buildTaskResults,
  formatSampleLine,
  runTask,
  summarizeTask,
  toTaskInput,
} from './results';
export type { EvaluateOptions, EvaluationProgress, TaskEvaluation, TaskSample } from './runner';
export { evaluate } from './runner';
export type {
  GenerationKwargs,
  RequestBuildContext,
  TaskDefinition,
  TaskOutputType,
  TaskRequest,
  TaskResponse,
} from './task';
export { defineTask } from './task';
export type * from './types';
