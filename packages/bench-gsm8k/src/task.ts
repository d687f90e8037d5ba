import {
  createRegexFilter,
  defineTask,
  type GenerationKwargs,
  type TaskDefinition,
  type TaskFilter,
} from '@qlora/bench-core';
import { exactMatch, GSM8K_REGEXES_TO_IGNORE } from './exact-match';
import { checkFewshot, drawGsm8kShots, type Gsm8kDoc, gsm8kContext } from './prompts';

/**
 * lm-eval's `gsm8k` task version (`metadata.version`).
 *
 * @example
 * ```ts
 * gsm8kTask({ numFewshot: 0 }).version === GSM8K_TASK_VERSION; // true (3.0)
 * ```
 */
export const GSM8K_TASK_VERSION = 3.0;

/**
 * Stop strings of lm-eval's gsm8k YAML (the model's EOS text is added at request time).
 *
 * @example
 * ```ts
 * cutAtStopStrings(' 72\n\nQuestion: next', GSM8K_UNTIL); // ' 72\n\n'
 * ```
 */
export const GSM8K_UNTIL: readonly string[] = ['Question:', '</s>', '<|im_end|>'];

/**
 * `strict-match`: `#### (\-?[0-9\.\,]+)`, first match, group 1, stripped; `[invalid]` if none.
 *
 * @example
 * ```ts
 * GSM8K_STRICT_MATCH.apply(' so #### -3', doc); // '-3'
 * ```
 */
export const GSM8K_STRICT_MATCH: TaskFilter = createRegexFilter({
  name: 'strict-match',
  pattern: /#### (-?[0-9.,]+)/,
});

/**
 * `flexible-extract`: `(-?[$0-9.,]{2,})|(-?[0-9]+)`, last match, first non-empty group, stripped.
 *
 * @example
 * ```ts
 * GSM8K_FLEXIBLE_EXTRACT.apply(' The total is $1,234.50.', doc); // '$1,234.50.'
 * ```
 */
export const GSM8K_FLEXIBLE_EXTRACT: TaskFilter = createRegexFilter({
  name: 'flexible-extract',
  pattern: /(-?[$0-9.,]{2,})|(-?[0-9]+)/,
  groupSelect: -1,
});

/** Options of {@link gsm8kTask}. */
export interface Gsm8kTaskOptions {
  /** The few-shot pool (lm-eval: the train split, 7473 docs, HF order). Required when numFewshot > 0. */
  trainDocs?: readonly Gsm8kDoc[];
  /** Shots per prompt (default 5). */
  numFewshot?: number;
  /** The model's decoded EOS (e.g. `<|end_of_text|>`), added to the stop strings as lm-eval's HF model does. */
  eosText?: string;
  /** Maximum new tokens (lm-eval's HF default 256). */
  maxGenTokens?: number;
}

/**
 * The `gsm8k` task as lm-eval v0.4.12 defines it: 5-shot contexts from the train split with one
 * seeded stream, greedy generation until `Question:`, `</s>`, `<|im_end|>` (plus the model's EOS)
 * for at most 256 tokens, then `exact_match` under the `strict-match` and `flexible-extract`
 * filters with ignore-case and GSM8K's ignore-regexes against the full answer.
 *
 * @example
 * ```ts
 * const run = await evaluate(lm, gsm8kTask({ trainDocs: train, eosText: '<|end_of_text|>' }), test);
 * run.metricValues['exact_match,flexible-extract'];
 * ```
 */
export function gsm8kTask(options: Gsm8kTaskOptions = {}): TaskDefinition<Gsm8kDoc> {
  const trainDocs = options.trainDocs ?? [];
  const numFewshot = checkFewshot(options.numFewshot ?? 5, trainDocs.length);
  const until = [...GSM8K_UNTIL];
  if (options.eosText && !until.includes(options.eosText)) until.push(options.eosText);
  const generationKwargs: GenerationKwargs = {
    until: [...GSM8K_UNTIL],
    do_sample: false,
    temperature: 0.0,
  };
  const metricOptions = {
    regexesToIgnore: GSM8K_REGEXES_TO_IGNORE,
    ignoreCase: true,
    ignorePunctuation: false,
  };
  return defineTask<Gsm8kDoc>({
    name: 'gsm8k',
    version: GSM8K_TASK_VERSION,
    outputType: 'generate_until',
    numFewshot,
    docToRequests(doc, { rng }) {
      const context = gsm8kContext(doc, drawGsm8kShots(trainDocs, numFewshot, rng));
      return [
        {
          kind: 'generate_until',
          context,
          generationKwargs,
          until,
          maxGenTokens: options.maxGenTokens ?? 256,
        },
      ];
    },
    docToTarget: (doc) => doc.answer,
    processResults: (doc, [filtered]) => ({
      exact_match: exactMatch(String(filtered), doc.answer, metricOptions),
    }),
    filters: [GSM8K_STRICT_MATCH, GSM8K_FLEXIBLE_EXTRACT] as TaskFilter<Gsm8kDoc>[],
    aggregation: { exact_match: 'mean' },
    higherIsBetter: { exact_match: true },
    docToLog: (doc) => ({ question: doc.question, answer: doc.answer }),
    config: {
      task: 'gsm8k',
      tag: ['math_word_problems'],
      dataset_path: 'openai/gsm8k',
      dataset_name: 'main',
      training_split: 'train',
      test_split: 'test',
      fewshot_split: 'train',
      doc_to_text: 'Question: {{question}}\nAnswer:',
      doc_to_target: '{{answer}}',
      unsafe_code: false,
      description: '',
      target_delimiter: ' ',
      fewshot_delimiter: '\n\n',
      num_fewshot: numFewshot,
      metric_list: [
        {
          metric: 'exact_match',
          aggregation: 'mean',
          higher_is_better: true,
          ignore_case: true,
          ignore_punctuation: false,
          regexes_to_ignore: [',', '\\$', '(?s).*#### ', '\\.$'],
        },
      ],
      output_type: 'generate_until',
      generation_kwargs: { until: [...GSM8K_UNTIL], do_sample: false, temperature: 0.0 },
      repeats: 1,
      filter_list: [
        {
          name: 'strict-match',
          filter: [
            { function: 'regex', regex_pattern: '#### (\\-?[0-9\\.\\,]+)' },
            { function: 'take_first' },
          ],
        },
        {
          name: 'flexible-extract',
          filter: [
            { function: 'regex', group_select: -1, regex_pattern: '(-?[$0-9.,]{2,})|(-?[0-9]+)' },
            { function: 'take_first' },
          ],
        },
      ],
      should_decontaminate: false,
      metadata: { version: GSM8K_TASK_VERSION },
    },
  });
}
