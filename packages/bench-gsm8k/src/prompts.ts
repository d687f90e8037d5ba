import { buildFewshotContext, PythonRandom } from '@qlora/bench-core';
import type { Gsm8kRecord } from '@qlora/datasets';
import { BenchGsm8kError } from './errors';

/** A GSM8K doc (`openai/gsm8k` `main`): the question and the full answer ending in `#### N`. */
export type Gsm8kDoc = Pick<Gsm8kRecord, 'question' | 'answer'>;

/** Options of {@link buildGsm8kPrompts}. */
export interface Gsm8kPromptOptions {
  /** Shots per prompt (lm-eval's gsm8k YAML: 5). */
  numFewshot?: number;
  /** Seed of the one `random.Random` shared by all test docs in order (lm-eval: 1234). */
  seed?: number;
}

/**
 * `doc_to_text` of lm-eval's gsm8k: `"Question: {question}\nAnswer:"` (no trailing space).
 *
 * @example
 * ```ts
 * gsm8kDocToText({ question: 'What is 2+2?', answer: '#### 4' }); // 'Question: What is 2+2?\nAnswer:'
 * ```
 */
export function gsm8kDocToText(doc: Pick<Gsm8kDoc, 'question'>): string {
  return `Question: ${doc.question}\nAnswer:`;
}

/**
 * The context of one test doc given its shots: each shot `Question: …\nAnswer: <full answer>\n\n`,
 * then the test question.
 *
 * @example
 * ```ts
 * gsm8kContext({ question: 'q2', answer: '' }, [{ question: 'q1', answer: 'a\n#### 1' }]);
 * // 'Question: q1\nAnswer: a\n#### 1\n\nQuestion: q2\nAnswer:'
 * ```
 */
export function gsm8kContext(doc: Pick<Gsm8kDoc, 'question'>, shots: readonly Gsm8kDoc[]): string {
  return buildFewshotContext({
    shots: shots.map((shot) => ({ text: gsm8kDocToText(shot), target: shot.answer })),
    text: gsm8kDocToText(doc),
  });
}

/**
 * lm-eval's gsm8k contexts for a list of test docs: one `PythonRandom(seed)` stream over the test
 * docs in order, `sample(trainDocs, numFewshot)` per doc (the train split is not the test split, so
 * no k+1 draw). With lm-eval's defaults, doc 0 takes train indices [6374, 3610, 957, 61, 742].
 *
 * @example
 * ```ts
 * const prompts = buildGsm8kPrompts(test, train, { numFewshot: 5, seed: 1234 });
 * prompts[0].startsWith('Question: '); // true
 * ```
 */
export function buildGsm8kPrompts(
  testDocs: readonly Pick<Gsm8kDoc, 'question'>[],
  trainDocs: readonly Gsm8kDoc[],
  options: Gsm8kPromptOptions = {},
): string[] {
  const numFewshot = checkFewshot(options.numFewshot ?? 5, trainDocs.length);
  const rng = new PythonRandom(options.seed ?? 1234);
  return testDocs.map((doc) => gsm8kContext(doc, drawGsm8kShots(trainDocs, numFewshot, rng)));
}

/**
 * One doc's shots from the shared stream: `rng.sample(trainDocs, k)` (nothing for k = 0).
 *
 * @example
 * ```ts
 * drawGsm8kShots(train, 5, new PythonRandom(1234)); // train[6374], train[3610], …
 * ```
 */
export function drawGsm8kShots<T>(
  trainDocs: readonly T[],
  numFewshot: number,
  rng: PythonRandom,
): T[] {
  return numFewshot === 0 ? [] : rng.sample(trainDocs, numFewshot);
}

/** Validates a shot count against the pool. */
export function checkFewshot(numFewshot: number, poolSize: number): number {
  if (!Number.isInteger(numFewshot) || numFewshot < 0) {
    throw new BenchGsm8kError(
      'E_OPTION',
      `gsm8k numFewshot: expected a non-negative integer, got ${numFewshot}`,
    );
  }
  if (numFewshot > poolSize) {
    throw new BenchGsm8kError(
      'E_FEWSHOT_DOCS',
      `gsm8k ${numFewshot}-shot: expected at least ${numFewshot} train docs, got ${poolSize}. Hint: pass the train split (7473 docs) as trainDocs.`,
    );
  }
  return numFewshot;
}
