import type { AlpacaRecord, Gsm8kRecord } from './schemas';

/**
 * Options of {@link gsm8kToAlpaca}.
 *
 * @example
 * ```ts
 * gsm8kToAlpaca(record, { stripCalculatorAnnotations: false });
 * ```
 */
export interface Gsm8kToAlpacaOptions {
  /** Remove `<<48/2=24>>` calculator annotations from the answer (default true). */
  stripCalculatorAnnotations?: boolean;
  /** Instruction text; default: the question itself (with an empty input). */
  instruction?: string;
}

const CALCULATOR_ANNOTATION = /<<[^>]*>>/g;

/**
 * Turns a GSM8K train record into an Alpaca record, for mixing math into instruction tuning. The
 * question becomes the instruction (input empty), or, with `options.instruction`, the input. The
 * answer keeps its reasoning and the final `#### N` line (the format lm-eval's strict-match
 * filter reads); calculator annotations are removed unless told otherwise.
 *
 * @example
 * ```ts
 * gsm8kToAlpaca({ question: 'What is 2+3?', answer: '2+3=<<2+3=5>>5\n#### 5' });
 * // { instruction: 'What is 2+3?', input: '', output: '2+3=5\n#### 5' }
 * ```
 */
export function gsm8kToAlpaca(
  record: Gsm8kRecord,
  options: Gsm8kToAlpacaOptions = {},
): AlpacaRecord {
  const output =
    options.stripCalculatorAnnotations === false
      ? record.answer
      : record.answer.replace(CALCULATOR_ANNOTATION, '');
  return options.instruction === undefined
    ? { instruction: record.question, input: '', output }
    : { instruction: options.instruction, input: record.question, output };
}
