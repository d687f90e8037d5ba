/**
 * The computer-science MMLU subjects the project evaluates, with their test-split sizes
 * (412 questions in all), in lm-eval's order.
 *
 * @example
 * ```ts
 * Object.keys(MMLU_CS_SUBJECTS); // ['college_computer_science', …, 'machine_learning']
 * MMLU_CS_SUBJECTS.machine_learning; // 112
 * ```
 */
export const MMLU_CS_SUBJECTS: Readonly<Record<string, number>> = Object.freeze({
  college_computer_science: 100,
  high_school_computer_science: 100,
  computer_security: 100,
  machine_learning: 112,
});

/**
 * lm-eval's description line for a subject: underscores become spaces, and the trailing blank
 * line is kept (`keep_trailing_newline`, task version 1.0).
 *
 * @example
 * ```ts
 * mmluDescription('machine_learning');
 * // 'The following are multiple choice questions (with answers) about machine learning.\n\n'
 * ```
 */
export function mmluDescription(subject: string): string {
  return `The following are multiple choice questions (with answers) about ${subject.split('_').join(' ')}.\n\n`;
}
