import {
  argmax,
  buildFewshotContext,
  canonicalJson,
  defineTask,
  type LoglikelihoodResult,
  type PythonRandom,
  type TaskDefinition,
} from '@qlora/bench-core';
import { BenchHellaswagError } from './errors';
import type { HellaswagDoc } from './process';

/** Options of {@link hellaswagTask}. */
export interface HellaswagTaskOptions {
  /** Shots per prompt (lm-eval default 0; the old Open LLM Leaderboard used 10). */
  numFewshot?: number;
  /** Processed docs to draw shots from (lm-eval: the train split). Required when numFewshot > 0. */
  fewshotDocs?: readonly HellaswagDoc<object>[];
}

/**
 * lm-eval's `hellaswag` task version (`metadata.version`).
 *
 * @example
 * ```ts
 * hellaswagTask().version === HELLASWAG_TASK_VERSION; // true (1.0)
 * ```
 */
export const HELLASWAG_TASK_VERSION = 1.0;

/**
 * The `hellaswag` task as lm-eval v0.4.12 defines it: context = `query` (after few-shot blocks
 * `query + " " + choices[label] + "\n\n"`), four loglikelihood requests `" " + choice`, and per doc
 * `acc` (argmax of the log-likelihoods) and `acc_norm` (argmax of log-likelihood divided by the
 * choice's length in code points). Shots are drawn like lm-eval's default sampler: since
 * HellaSwag's few-shot split equals its test split (both unset), it draws k+1 docs, drops the
 * evaluated doc and keeps k.
 *
 * @example
 * ```ts
 * const run = await evaluate(lm, hellaswagTask(), docs);
 * run.metricValues['acc_norm,none']; // [1, 0, …]
 * ```
 */
export function hellaswagTask(
  options: HellaswagTaskOptions = {},
): TaskDefinition<HellaswagDoc<object>> {
  const numFewshot = options.numFewshot ?? 0;
  if (!Number.isInteger(numFewshot) || numFewshot < 0) {
    throw new BenchHellaswagError(
      'E_OPTION',
      `hellaswag numFewshot: expected a non-negative integer, got ${numFewshot}`,
    );
  }
  const pool = options.fewshotDocs ?? [];
  if (numFewshot > 0 && pool.length < numFewshot + 1) {
    throw new BenchHellaswagError(
      'E_FEWSHOT_DOCS',
      `hellaswag ${numFewshot}-shot: expected at least ${numFewshot + 1} fewshotDocs, got ${pool.length}. Hint: pass processed train docs (not the docs you evaluate).`,
    );
  }
  return defineTask<HellaswagDoc<object>>({
    name: 'hellaswag',
    version: HELLASWAG_TASK_VERSION,
    outputType: 'multiple_choice',
    numFewshot,
    docToRequests(doc, { rng }) {
      const shots = sampleShots(pool, numFewshot, doc, rng).map((shot) => ({
        text: shot.query,
        target: choiceAt(shot, Number(shot.label)),
      }));
      const context = buildFewshotContext({ shots, text: doc.query });
      return doc.choices.map((choice) => ({
        kind: 'loglikelihood' as const,
        context,
        continuation: ` ${choice}`,
      }));
    },
    docToTarget: (doc) => Number(doc.label),
    processResults(doc, responses) {
      const lls = responses.map((r) => (r as LoglikelihoodResult).logprob);
      const gold = Number(doc.label);
      const normalized = lls.map((ll, i) => ll / [...doc.choices[i]!].length);
      return {
        acc: argmax(lls) === gold ? 1 : 0,
        acc_norm: argmax(normalized) === gold ? 1 : 0,
      };
    },
    aggregation: { acc: 'mean', acc_norm: 'mean' },
    higherIsBetter: { acc: true, acc_norm: true },
    config: {
      task: 'hellaswag',
      tag: ['multiple_choice'],
      dataset_path: 'Rowan/hellaswag',
      training_split: 'train',
      validation_split: 'validation',
      doc_to_text: '{{query}}',
      doc_to_target: '{{label}}',
      doc_to_choice: 'choices',
      description: '',
      target_delimiter: ' ',
      fewshot_delimiter: '\n\n',
      num_fewshot: numFewshot,
      metric_list: [
        { metric: 'acc', aggregation: 'mean', higher_is_better: true },
        { metric: 'acc_norm', aggregation: 'mean', higher_is_better: true },
      ],
      output_type: 'multiple_choice',
      repeats: 1,
      should_decontaminate: false,
      metadata: { version: HELLASWAG_TASK_VERSION },
    },
  });
}

function sampleShots(
  pool: readonly HellaswagDoc<object>[],
  k: number,
  doc: HellaswagDoc<object>,
  rng: PythonRandom,
): HellaswagDoc<object>[] {
  if (k === 0) return [];
  // lm-eval's ContextSampler.rm_eval_doc compares dicts with `!=`: equal content, any key order.
  const self = canonicalJson(doc);
  return rng
    .sample(pool, k + 1)
    .filter((shot) => canonicalJson(shot) !== self)
    .slice(0, k);
}

function choiceAt(doc: HellaswagDoc<object>, index: number): string {
  const choice = doc.choices[index];
  if (choice === undefined) {
    throw new BenchHellaswagError(
      'E_LABEL',
      `hellaswag few-shot doc: expected label 0–${doc.choices.length - 1}, got ${index}`,
    );
  }
  return choice;
}
