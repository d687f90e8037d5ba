import {
  argmax,
  defineTask,
  type LoglikelihoodResult,
  type TaskDefinition,
} from '@qlora/bench-core';
import { buildMmluPrompt, MMLU_LETTERS, type MmluDoc } from './prompt';
import { mmluDescription } from './subjects';

/**
 * lm-eval's MMLU subtask version (1.0 since the trailing-newline fix).
 *
 * @example
 * ```ts
 * mmluTask('machine_learning').version === MMLU_TASK_VERSION; // true
 * ```
 */
export const MMLU_TASK_VERSION = 1.0;

/** Options of {@link mmluTask}. */
export interface MmluTaskOptions {
  /** The subject's dev docs (5 per subject), for k-shot. */
  fewshotDocs?: readonly MmluDoc[];
  /** Shots (lm-eval default 0). */
  numFewshot?: number;
}

/**
 * One `mmlu_<subject>` task as lm-eval v0.4.12 defines it: four loglikelihood requests
 * (`" A"` … `" D"`) after {@link buildMmluPrompt}'s context, `acc` = first argmax equals `answer`.
 *
 * @example
 * ```ts
 * const run = await evaluate(lm, mmluTask('machine_learning'), docs);
 * run.metricValues['acc,none'].length; // 112
 * ```
 */
export function mmluTask(subject: string, options: MmluTaskOptions = {}): TaskDefinition<MmluDoc> {
  const numFewshot = options.numFewshot ?? 0;
  const fewshot = options.fewshotDocs ?? [];
  // Checks k against the dev docs up front, with the same message as per-doc building.
  const probe: MmluDoc = { question: '', subject, choices: ['', '', '', ''], answer: 0 };
  buildMmluPrompt(probe, { subject, fewshot, numFewshot });
  return defineTask<MmluDoc>({
    name: `mmlu_${subject}`,
    alias: subject,
    version: MMLU_TASK_VERSION,
    outputType: 'multiple_choice',
    numFewshot,
    docToRequests(doc) {
      const context = buildMmluPrompt(doc, { subject, fewshot, numFewshot });
      return MMLU_LETTERS.map((letter) => ({
        kind: 'loglikelihood' as const,
        context,
        continuation: ` ${letter}`,
      }));
    },
    docToTarget: (doc) => doc.answer,
    processResults: (doc, responses) => ({
      acc: argmax(responses.map((r) => (r as LoglikelihoodResult).logprob)) === doc.answer ? 1 : 0,
    }),
    aggregation: { acc: 'mean' },
    higherIsBetter: { acc: true },
    docToLog: (doc) => ({
      question: doc.question,
      subject: doc.subject,
      choices: [...doc.choices],
      answer: doc.answer,
    }),
    config: {
      task: `mmlu_${subject}`,
      task_alias: subject,
      dataset_path: 'cais/mmlu',
      dataset_name: subject,
      test_split: 'test',
      fewshot_split: 'dev',
      doc_to_text:
        '{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:',
      doc_to_target: 'answer',
      doc_to_choice: [...MMLU_LETTERS],
      unsafe_code: false,
      description: mmluDescription(subject),
      target_delimiter: ' ',
      fewshot_delimiter: '\n\n',
      fewshot_config: { sampler: 'first_n' },
      num_fewshot: numFewshot,
      metric_list: [{ metric: 'acc', aggregation: 'mean', higher_is_better: true }],
      output_type: 'multiple_choice',
      repeats: 1,
      should_decontaminate: false,
      metadata: { version: MMLU_TASK_VERSION },
    },
  });
}
