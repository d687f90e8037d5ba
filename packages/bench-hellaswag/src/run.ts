import {
  type LanguageModel,
  type RunTaskOptions,
  runTask,
  type TaskOutput,
} from '@qlora/bench-core';
import type { HellaswagDoc } from './process';
import { type HellaswagTaskOptions, hellaswagTask } from './task';

/** Options of {@link runHellaswag}: the task's few-shot options plus the runner's. */
export interface RunHellaswagOptions extends HellaswagTaskOptions, RunTaskOptions {}

/**
 * Scores HellaSwag on a model exactly as lm-eval does and returns the results object (`acc`,
 * `acc_norm` with stderr), the results file text and the samples rows.
 *
 * @example
 * ```ts
 * const docs = await loadHellaswagDocs(path);
 * const { results, samples } = await runHellaswag(lm, docs, { limit: 200 });
 * results.results.hellaswag?.metrics['acc_norm,none']; // { value: …, stderr: … }
 * ```
 */
export function runHellaswag(
  lm: LanguageModel,
  docs: readonly HellaswagDoc<object>[],
  options: RunHellaswagOptions = {},
): Promise<TaskOutput> {
  const { numFewshot, fewshotDocs, ...runOptions } = options;
  const taskOptions: HellaswagTaskOptions = {};
  if (numFewshot !== undefined) taskOptions.numFewshot = numFewshot;
  if (fewshotDocs !== undefined) taskOptions.fewshotDocs = fewshotDocs;
  return runTask(lm, hellaswagTask(taskOptions), docs, runOptions);
}
