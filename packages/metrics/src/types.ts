/**
 * A fraction (0.4523, not 45.23) with its standard error. `stderr` is NaN when unknown ("N/A").
 *
 * @example
 * const mmluBase: Estimate = { value: 0.47, stderr: 0.0502 };
 */
export interface Estimate {
  value: number;
  stderr: number;
}

/**
 * A 95% normal interval, `value ± 1.96·stderr`, never clamped to [0, 1].
 *
 * @example
 * accuracy([1, 0, 1, 1]).ci95; // { lower: 0.26…, upper: 1.24… } (not clamped)
 */
export interface Interval {
  lower: number;
  upper: number;
}

/**
 * What `accuracy` returns: the mean, lm-eval's stderr, the 95% interval and the item count.
 *
 * @example
 * const acc: AccuracyEstimate = accuracy([true, false, true]); // acc.n === 3
 */
export interface AccuracyEstimate extends Estimate {
  ci95: Interval;
  n: number;
}

/**
 * One subtask of a group: its value, stderr and evaluated item count (lm-eval's `sample_len`).
 *
 * @example
 * const cs: SubtaskEstimate = { value: 0.47, stderr: 0.0502, n: 100 };
 */
export interface SubtaskEstimate {
  value: number;
  stderr: number;
  n: number;
}

/**
 * Per-sample outcomes: booleans, or numbers (0/1 for accuracy, any finite score otherwise).
 *
 * @example
 * const correct: Outcomes = [true, false, 1, 0];
 */
export type Outcomes = readonly (number | boolean)[];
