export type { CompareOptions, ResultEstimate, Table2FormatOptions, Table2Row } from './compare';
export { compareResults, formatTable2Markdown } from './compare';
export { MetricsError } from './errors';
export type { McNemarOptions, McNemarTest, PairedTTest } from './hypothesis-tests';
export { mcnemar, pairedTTest } from './hypothesis-tests';
export type {
  LmEvalGroupInput,
  LmEvalMetricValue,
  LmEvalResults,
  LmEvalResultsInput,
  LmEvalSampleCount,
  LmEvalSampleInput,
  LmEvalStderr,
  LmEvalTaskInput,
  LmEvalTaskResult,
} from './lm-eval-results';
export {
  buildLmEvalResults,
  parseLmEvalResults,
  toLmEvalResults,
  toLmEvalSampleLine,
} from './lm-eval-results';
export type { FormatPercentOptions, KnowledgeLoss } from './paper';
export { abilityAugmentation, forgettingRate, formatPercent, knowledgeLoss } from './paper';
export { PythonRandom } from './python-random';
export { sha256Hex } from './sha256';
export type { BootstrapOptions } from './stats';
export {
  accuracy,
  aggregateSubtasks,
  bootstrapStderr,
  mean,
  pooledStderr,
  sampleStderr,
  Z_95,
} from './stats';
export type * from './types';
