import type { PythonRandom } from '@qlora/metrics';
import type { TaskFilter } from './filters';
import type { PythonJsonValue } from './python-format';
import type { LoglikelihoodResult } from './types';

/** lm-eval's `output_type` values this runner supports. */
export type TaskOutputType = 'loglikelihood' | 'multiple_choice' | 'generate_until';

/** lm-eval's `generation_kwargs` as a task config states them (logged in samples as `arg_1`). */
export interface GenerationKwargs {
  until: string[];
  do_sample?: boolean;
  temperature?: number;
  max_gen_toks?: number;
  [key: string]: PythonJsonValue | undefined;
}

/** A request a task asks for, as lm-eval logs it (`arguments`), before whitespace handling. */
export type TaskRequest =
  | { kind: 'loglikelihood'; context: string; continuation: string }
  | {
      kind: 'generate_until';
      context: string;
      generationKwargs: GenerationKwargs;
      /** Stop strings actually sent: `generationKwargs.until` plus, e.g., the model's EOS text. */
      until?: string[];
      /** Maximum new tokens; lm-eval's HF default is 256. */
      maxGenTokens?: number;
    };

/** What `processResults` gets per request: `[logprob, isGreedy]`, or the filtered generation. */
export type TaskResponse = LoglikelihoodResult | string;

/** What `docToRequests` may use: the doc index and the task's few-shot RNG (one per run). */
export interface RequestBuildContext {
  docId: number;
  /** `random.Random(fewshotSeed)`, shared by all docs of one run in doc order (lm-eval). */
  rng: PythonRandom;
}

/**
 * A benchmark task in the shape of an lm-eval `ConfigurableTask`, small enough that each bench
 * package is a thin definition plus its prompt code.
 */
export interface TaskDefinition<Doc> {
  /** lm-eval task name, e.g. `hellaswag`, `mmlu_machine_learning`. */
  name: string;
  /** Display alias in results (defaults to `name`). */
  alias?: string;
  /** `metadata.version`. */
  version: number | string;
  outputType: TaskOutputType;
  /** Few-shot count this task was built with (`n-shot` in results). */
  numFewshot: number;
  /** Requests for one doc; called once per doc in doc order, so RNG draws match lm-eval. */
  docToRequests(doc: Doc, context: RequestBuildContext): TaskRequest[];
  /** `doc_to_target(doc)`; written to samples as `str(target)`. */
  docToTarget(doc: Doc): string | number;
  /** Per-doc metric values from one response per request (after the filter). */
  processResults(doc: Doc, responses: readonly TaskResponse[]): Record<string, number>;
  /** Filter pipelines for generations; multiple-choice tasks use `none` only. */
  filters?: readonly TaskFilter<Doc>[];
  /** Aggregation per metric; every metric of the three bench tasks is `mean`. */
  aggregation: Record<string, 'mean'>;
  higherIsBetter: Record<string, boolean>;
  /** The doc as lm-eval logs and hashes it (defaults to the doc itself). */
  docToLog?(doc: Doc): PythonJsonValue;
  /** The `configs[task]` entry for results files. */
  config?: Record<string, PythonJsonValue>;
}

/**
 * Identity helper that checks a task definition's type and fills defaults (`alias`, the `none`
 * filter for non-generation tasks).
 *
 * @example
 * ```ts
 * const task = defineTask<{ q: string; a: number }>({
 *   name: 'toy', version: 1, outputType: 'multiple_choice', numFewshot: 0,
 *   docToRequests: (doc) => ['no', 'yes'].map((c) => ({ kind: 'loglikelihood', context: doc.q, continuation: ` ${c}` })),
 *   docToTarget: (doc) => doc.a,
 *   processResults: (doc, rs) => ({ acc: argmax(rs.map((r) => (r as LoglikelihoodResult).logprob)) === doc.a ? 1 : 0 }),
 *   aggregation: { acc: 'mean' }, higherIsBetter: { acc: true },
 * });
 * ```
 */
export function defineTask<Doc>(definition: TaskDefinition<Doc>): TaskDefinition<Doc> {
  return { alias: definition.name, ...definition };
}
