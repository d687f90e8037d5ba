import {
  buildTaskResults,
  type EvaluateOptions,
  evaluate,
  type LanguageModel,
  type SummarizeOptions,
  type TaskEvaluation,
  type TaskRun,
  type TaskSample,
} from '@qlora/bench-core';
import { type LmEvalResults, toLmEvalResults } from '@qlora/metrics';
import { BenchMmluError } from './errors';
import type { MmluDoc } from './prompt';
import { mmluTask } from './task';

/** Options of {@link runMmlu}. */
export interface RunMmluOptions extends EvaluateOptions, SummarizeOptions {
  /** Dev docs per subject, for k-shot (first k, in order). */
  fewshotBySubject?: Record<string, readonly MmluDoc[]>;
  /** Shots (lm-eval default 0). */
  numFewshot?: number;
  /** Name of the group entry aggregating the subjects (default `mmlu_cs`). */
  groupName?: string;
  /** Extra `config` fields of the results file. */
  config?: Record<string, unknown>;
}

/** What {@link runMmlu} returns. */
export interface MmluOutput {
  /** Results with one `mmlu_<subject>` entry per subject plus the size-weighted group entry. */
  results: LmEvalResults;
  resultsJson: string;
  /** Samples rows per task name (`mmlu_<subject>`), one JSONL file each in lm-eval. */
  samples: Record<string, TaskSample[]>;
  evaluations: Record<string, TaskEvaluation>;
}

/**
 * Scores MMLU subjects on a model as lm-eval does: per-subject `acc` with stderr, and a group
 * whose `acc` is weighted by subject size (the micro average over questions) with lm-eval's
 * pooled stderr.
 *
 * @example
 * ```ts
 * const docs = { machine_learning: await loadMmluCsvDocs(testDir, 'machine_learning') };
 * const { results } = await runMmlu(lm, docs);
 * results.results.mmlu_cs?.metrics['acc,none']; // { value: …, stderr: … }
 * ```
 */
export async function runMmlu(
  lm: LanguageModel,
  docsBySubject: Record<string, readonly MmluDoc[]>,
  options: RunMmluOptions = {},
): Promise<MmluOutput> {
  const subjects = Object.keys(docsBySubject);
  if (subjects.length === 0) {
    throw new BenchMmluError('E_NO_DOCS', 'runMmlu: expected at least one subject, got none');
  }
  const { fewshotBySubject, numFewshot, groupName = 'mmlu_cs', config, ...evalOptions } = options;
  const runs: TaskRun[] = [];
  const samples: Record<string, TaskSample[]> = {};
  const evaluations: Record<string, TaskEvaluation> = {};
  for (const subject of subjects) {
    const task = mmluTask(subject, {
      fewshotDocs: fewshotBySubject?.[subject] ?? [],
      numFewshot: numFewshot ?? 0,
    });
    const evaluation = await evaluate(lm, task, docsBySubject[subject]!, evalOptions);
    runs.push({ task: task as TaskRun['task'], evaluation });
    samples[task.name] = evaluation.samples;
    evaluations[task.name] = evaluation;
  }
  const results = buildTaskResults(runs, {
    modelName: lm.name ?? 'unknown',
    limit: options.limit ?? null,
    bootstrapIters: options.bootstrapIters ?? 100000,
    fewshotSeed: options.fewshotSeed ?? 1234,
    groups: {
      // lm-eval writes a group's version as "N/A" when its YAML has no metadata version.
      [groupName]: {
        subtasks: runs.map((r) => r.task.name),
        aggregate: [{ metric: 'acc', weightBySize: true }],
        version: 'N/A',
      },
    },
    ...(config ? { config } : {}),
  });
  return { results, resultsJson: toLmEvalResults(results), samples, evaluations };
}
