import {
  type LanguageModel,
  type RunTaskOptions,
  runTask,
  type TaskOutput,
} from '@qlora/bench-core';
import type { Gsm8kDoc } from './prompts';
import { type Gsm8kTaskOptions, gsm8kTask } from './task';

/** Options of {@link runGsm8k}. */
export interface RunGsm8kOptions extends Gsm8kTaskOptions, RunTaskOptions {}

/**
 * Scores GSM8K on a model exactly as lm-eval does: returns the results object
 * (`exact_match,strict-match` and `exact_match,flexible-extract` with stderr), the results file
 * text and the samples rows (strict-match rows, then flexible-extract rows).
 *
 * @example
 * ```ts
 * const { results } = await runGsm8k(lm, test, { trainDocs: train, eosText: '</s>', limit: 50 });
 * results.results.gsm8k?.metrics['exact_match,flexible-extract']; // { value: …, stderr: … }
 * ```
 */
export function runGsm8k(
  lm: LanguageModel,
  testDocs: readonly Gsm8kDoc[],
  options: RunGsm8kOptions = {},
): Promise<TaskOutput> {
  const { trainDocs, numFewshot, eosText, maxGenTokens, ...runOptions } = options;
  const taskOptions: Gsm8kTaskOptions = {};
  if (trainDocs !== undefined) taskOptions.trainDocs = trainDocs;
  if (numFewshot !== undefined) taskOptions.numFewshot = numFewshot;
  if (eosText !== undefined) taskOptions.eosText = eosText;
  if (maxGenTokens !== undefined) taskOptions.maxGenTokens = maxGenTokens;
  return runTask(lm, gsm8kTask(taskOptions), testDocs, runOptions);
}
