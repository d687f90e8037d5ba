import {
  buildLmEvalResults,
  type LmEvalGroupInput,
  type LmEvalResults,
  type LmEvalResultsInput,
  type LmEvalTaskInput,
  mean,
  sampleStderr,
  toLmEvalResults,
  toLmEvalSampleLine,
} from '@qlora/metrics';
import type { PythonJsonValue } from './python-format';
import { type EvaluateOptions, evaluate, type TaskEvaluation, type TaskSample } from './runner';
import type { TaskDefinition } from './task';
import type { LanguageModel } from './types';

/** A metric value with lm-eval's stderr (`"N/A"` when n ≤ 1 or bootstrap is off). */
export interface MetricSummary {
  value: number;
  stderr: number | 'N/A';
}

/** Options of {@link summarizeTask}. */
export interface SummarizeOptions {
  /** lm-eval `bootstrap_iters`; 0 or less makes every stderr `"N/A"` (default 100000). */
  bootstrapIters?: number;
}

/**
 * Aggregates per-doc values like lm-eval's `_compute_task_aggregations`: `mean` over docs in doc
 * order and `mean_stderr` (sample std with n − 1, over √n) from `@qlora/metrics`, keyed
 * `metric,filter` in first-seen order.
 *
 * @example
 * ```ts
 * summarizeTask(run);
 * // { 'acc,none': { value: 0.238, stderr: 0.01347… }, 'acc_norm,none': { … } }
 * ```
 */
export function summarizeTask(
  evaluation: TaskEvaluation,
  options: SummarizeOptions = {},
): Record<string, MetricSummary> {
  const bootstrapIters = options.bootstrapIters ?? 100000;
  const out: Record<string, MetricSummary> = {};
  for (const [key, values] of Object.entries(evaluation.metricValues)) {
    const stderr = bootstrapIters > 0 && values.length > 1 ? sampleStderr(values) : Number.NaN;
    out[key] = { value: mean(values), stderr: Number.isFinite(stderr) ? stderr : 'N/A' };
  }
  return out;
}

/**
 * One task's entry for `@qlora/metrics`' results builder: metrics with stderr, config, version,
 * n-shot, higher_is_better and n-samples.
 *
 * @example
 * ```ts
 * toTaskInput(task, run).metrics['acc,none']; // { value: 0.238, stderr: 0.0134… }
 * ```
 */
export function toTaskInput<Doc>(
  task: TaskDefinition<Doc>,
  evaluation: TaskEvaluation,
  options: SummarizeOptions = {},
): LmEvalTaskInput {
  return {
    alias: task.alias ?? task.name,
    sampleLen: evaluation.nSamples.effective,
    metrics: summarizeTask(evaluation, options),
    config: task.config ?? { task: task.name },
    version: task.version,
    numFewshot: task.numFewshot,
    higherIsBetter: { ...task.higherIsBetter },
    nSamples: { ...evaluation.nSamples },
  };
}

/** One evaluated task, for {@link buildTaskResults}. */
export interface TaskRun<Doc = unknown> {
  task: TaskDefinition<Doc>;
  evaluation: TaskEvaluation;
}

/** Options of {@link buildTaskResults}. */
export interface BuildResultsOptions extends SummarizeOptions {
  modelName?: string;
  /** Groups aggregated from their leaves, e.g. `{ mmlu_cs: { subtasks: [...], aggregate: [{ metric: 'acc' }] } }`. */
  groups?: Record<string, LmEvalGroupInput>;
  /** Extra `config` fields after `model` and `model_args`. */
  config?: Record<string, unknown>;
  limit?: number | null;
  fewshotSeed?: number;
  /** Unix seconds for `date`. */
  date?: number;
}

/**
 * The lm-eval results object (`@qlora/metrics`' normalised {@link LmEvalResults}) of evaluated
 * tasks: per-task metrics, groups (size-weighted mean, pooled stderr), configs, versions, n-shot,
 * higher_is_better, n-samples, config and task_hashes. Serialise it with `toLmEvalResults`.
 *
 * @example
 * ```ts
 * const results = buildTaskResults([{ task, evaluation }], { modelName: 'tiny' });
 * toLmEvalResults(results); // '{\n  "results": {\n    "hellaswag": {…'
 * ```
 */
export function buildTaskResults(
  runs: readonly TaskRun[],
  options: BuildResultsOptions = {},
): LmEvalResults {
  const tasks: Record<string, LmEvalTaskInput> = {};
  const taskHashes: Record<string, string> = {};
  for (const run of runs) {
    tasks[run.task.name] = toTaskInput(run.task, run.evaluation, options);
    taskHashes[run.task.name] = run.evaluation.taskHash;
  }
  const input: LmEvalResultsInput = {
    tasks,
    model: { name: options.modelName ?? 'unknown' },
    config: {
      limit: options.limit ?? null,
      bootstrap_iters: options.bootstrapIters ?? 100000,
      fewshot_seed: options.fewshotSeed ?? 1234,
      ...options.config,
    },
    taskHashes,
  };
  if (options.groups) input.groups = options.groups;
  if (options.date !== undefined) input.timing = { date: options.date };
  return buildLmEvalResults(input);
}

/**
 * One line of lm-eval's samples JSONL (no newline) for a runner sample, written by
 * `@qlora/metrics`' `toLmEvalSampleLine` with the runner's hashes.
 *
 * @example
 * ```ts
 * const jsonl = run.samples.map(formatSampleLine).join('\n') + '\n';
 * ```
 */
export function formatSampleLine(sample: TaskSample): string {
  const metrics: Record<string, number> = {};
  for (const key of sample.metrics) metrics[key] = sample[key] as number;
  return toLmEvalSampleLine({
    docId: sample.doc_id,
    doc: sample.doc as Record<string, unknown>,
    target: sample.target,
    arguments: Object.values(sample.arguments).map((args) => Object.values(args)),
    resps: sample.resps,
    filteredResps: sample.filtered_resps,
    filter: sample.filter,
    metrics,
    docHash: sample.doc_hash,
    promptHash: sample.prompt_hash,
    targetHash: sample.target_hash,
  });
}

/** Options of {@link runTask}. */
export interface RunTaskOptions extends EvaluateOptions, SummarizeOptions {
  /** Extra `config` fields of the results file (model_args, batch_size, …). */
  config?: Record<string, PythonJsonValue>;
}

/** What {@link runTask} returns. */
export interface TaskOutput {
  /** lm-eval results object (normalised, `@qlora/metrics` `LmEvalResults`). */
  results: LmEvalResults;
  /** The results file text (`toLmEvalResults`), byte-compatible with lm-eval's layout. */
  resultsJson: string;
  /** Samples rows (lm-eval JSONL fields); {@link formatSampleLine} writes one. */
  samples: TaskSample[];
  evaluation: TaskEvaluation;
}

/**
 * Evaluates one task and builds its lm-eval results and samples. Writing files is the caller's job.
 *
 * @example
 * ```ts
 * const { results, resultsJson, samples } = await runTask(lm, hellaswagTask(), docs, { limit: 100 });
 * results.results.hellaswag?.metrics['acc_norm,none']; // { value: 0.31, stderr: 0.046… }
 * samples.length; // 100
 * ```
 */
export async function runTask<Doc>(
  lm: LanguageModel,
  task: TaskDefinition<Doc>,
  docs: readonly Doc[],
  options: RunTaskOptions = {},
): Promise<TaskOutput> {
  const evaluation = await evaluate(lm, task, docs, options);
  const results = buildTaskResults([{ task: task as TaskDefinition<unknown>, evaluation }], {
    modelName: lm.name ?? 'unknown',
    limit: options.limit ?? null,
    bootstrapIters: options.bootstrapIters ?? 100000,
    fewshotSeed: options.fewshotSeed ?? 1234,
    ...(options.config ? { config: options.config } : {}),
  });
  return {
    results,
    resultsJson: toLmEvalResults(results),
    samples: evaluation.samples,
    evaluation,
  };
}
