import { buildFewshotContext, pythonStrip } from '@qlora/bench-core';
import type { MmluItem } from '@qlora/datasets';
import { BenchMmluError } from './errors';
import { mmluDescription } from './subjects';

/** An MMLU doc shaped like a `cais/mmlu` row: `{ question, subject, choices[4], answer 0–3 }`. */
export type MmluDoc = MmluItem;

/**
 * The answer letters, `doc_to_choice` of lm-eval's MMLU.
 *
 * @example
 * ```ts
 * MMLU_LETTERS.map((l) => ` ${l}`); // [' A', ' B', ' C', ' D'] (the continuations)
 * ```
 */
export const MMLU_LETTERS: readonly string[] = ['A', 'B', 'C', 'D'];

/**
 * `doc_to_text` of lm-eval's MMLU: the stripped question, the four choices as `A. …` lines
 * (verbatim, not stripped), then `Answer:`.
 *
 * @example
 * ```ts
 * mmluDocToText({ question: ' 2+2? ', subject: 'x', choices: ['3', '4', '5', '6'], answer: 1 });
 * // '2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:'
 * ```
 */
export function mmluDocToText(doc: Pick<MmluDoc, 'question' | 'choices'>): string {
  if (doc.choices.length !== 4) {
    throw new BenchMmluError(
      'E_CHOICES',
      `mmlu doc: expected 4 choices, got ${doc.choices.length}. Hint: question ${JSON.stringify(doc.question.slice(0, 60))}`,
    );
  }
  const [a, b, c, d] = doc.choices as [string, string, string, string];
  return `${pythonStrip(doc.question)}\nA. ${a}\nB. ${b}\nC. ${c}\nD. ${d}\nAnswer:`;
}

/** Options of {@link buildMmluPrompt}. */
export interface MmluPromptOptions {
  /** Subject for the description line (default: `doc.subject`). */
  subject?: string;
  /** The subject's dev docs, in order; lm-eval's `first_n` sampler takes the first k. */
  fewshot?: readonly MmluDoc[];
  /** k (default: 0 without `fewshot`, all of `fewshot` with it). */
  numFewshot?: number;
}

/**
 * lm-eval's MMLU context: description, then k dev shots `text + " " + letter + "\n\n"`, then the
 * question's text ending in `Answer:`. The continuations are `" A"` … `" D"`.
 *
 * @example
 * ```ts
 * buildMmluPrompt(doc, { subject: 'machine_learning' });
 * // 'The following are multiple choice questions (with answers) about machine learning.\n\n…\nAnswer:'
 * buildMmluPrompt(doc, { fewshot: devDocs }); // 5-shot
 * ```
 */
export function buildMmluPrompt(doc: MmluDoc, options: MmluPromptOptions = {}): string {
  const pool = options.fewshot ?? [];
  const k = options.numFewshot ?? pool.length;
  if (!Number.isInteger(k) || k < 0 || k > pool.length) {
    throw new BenchMmluError(
      'E_FEWSHOT',
      `mmlu ${k}-shot: expected 0 ≤ numFewshot ≤ ${pool.length} (the dev docs given), got ${k}. Hint: pass the subject's dev split as fewshot.`,
    );
  }
  return buildFewshotContext({
    description: mmluDescription(options.subject ?? doc.subject),
    shots: pool.slice(0, k).map((shot) => ({ text: mmluDocToText(shot), target: letterOf(shot) })),
    text: mmluDocToText(doc),
  });
}

function letterOf(doc: MmluDoc): string {
  const letter = MMLU_LETTERS[doc.answer];
  if (letter === undefined) {
    throw new BenchMmluError('E_ANSWER', `mmlu doc answer: expected 0–3, got ${doc.answer}`);
  }
  return letter;
}
