import { describe, requireFinite, toNumbers } from './_validate';
import { MetricsError } from './errors';
import { PythonRandom } from './python-random';
import type { AccuracyEstimate, Outcomes, SubtaskEstimate } from './types';

/**
 * z for a two-sided 95% normal interval, the factor the paper's "±" intervals use.
 *
 * @example
 * const upper = 0.47 + Z_95 * 0.0502; // 0.5684
 */
export const Z_95 = 1.96;

/**
 * Arithmetic mean, summed left to right like lm-eval's `sum(arr) / len(arr)` (on CPython ≤ 3.11;
 * 3.12+ compensates the sum, which can move the last digit).
 *
 * @example
 * mean([1, 0, 1, 1]); // 0.75
 */
export function mean(values: Outcomes): number {
  const xs = toNumbers('mean(values)', values);
  if (xs.length === 0)
    throw new MetricsError('EMPTY', 'mean(values): expected at least 1 value, got 0');
  let sum = 0;
  for (const x of xs) sum += x;
  return sum / xs.length;
}

/** Sample standard deviation (n − 1), as lm-eval's `sample_stddev`; NaN for n < 2. */
function sampleStddev(xs: readonly number[]): number {
  if (xs.length < 2) return Number.NaN;
  let sum = 0;
  for (const x of xs) sum += x;
  const mu = sum / xs.length;
  let squares = 0;
  for (const x of xs) squares += (x - mu) ** 2;
  return Math.sqrt(squares / (xs.length - 1));
}

/**
 * Standard error of the mean as lm-eval computes it (`mean_stderr`): sample std with n − 1 over √n.
 * For 0/1 outcomes that is √(p(1−p)/(n−1)). NaN for fewer than 2 values (lm-eval writes "N/A").
 *
 * @example
 * sampleStderr([...Array(47).fill(1), ...Array(53).fill(0)]); // 0.050161… (the paper's ±5.02)
 */
export function sampleStderr(values: Outcomes): number {
  return sampleStddev(toNumbers('sampleStderr(values)', values)) / Math.sqrt(values.length);
}

/**
 * Accuracy of per-sample outcomes with lm-eval's stderr and the 95% interval `value ± 1.96·stderr`
 * (not clamped to [0, 1]; NaN bounds when n < 2).
 *
 * @example
 * const acc = accuracy([...Array(442).fill(true), ...Array(877).fill(false)]);
 * // { value: 0.33510…, stderr: 0.013001…, ci95: { lower: 0.30961…, upper: 0.36058… }, n: 1319 }
 */
export function accuracy(outcomes: Outcomes): AccuracyEstimate {
  const xs = toNumbers('accuracy(outcomes)', outcomes);
  if (xs.length === 0)
    throw new MetricsError('EMPTY', 'accuracy(outcomes): expected at least 1 outcome, got 0');
  let sum = 0;
  for (const x of xs) sum += x;
  const value = sum / xs.length;
  const stderr = sampleStddev(xs) / Math.sqrt(xs.length);
  return {
    value,
    stderr,
    ci95: { lower: value - Z_95 * stderr, upper: value + Z_95 * stderr },
    n: xs.length,
  };
}

/**
 * lm-eval's group stderr (`pooled_sample_stderr`): pools the within-subtask variances,
 * `√( Σ(nᵢ−1)·seᵢ²·nᵢ / (Σnᵢ − k) / Σnᵢ )`. NaN when any subtask stderr is NaN (lm-eval: "N/A").
 *
 * @example
 * pooledStderr([{ stderr: 0.0502, n: 100 }, { stderr: 0.0476, n: 100 }]); // ≈ 0.0346
 */
export function pooledStderr(subtasks: readonly Pick<SubtaskEstimate, 'stderr' | 'n'>[]): number {
  checkSubtasks('pooledStderr', subtasks);
  let numerator = 0;
  let total = 0;
  for (const { stderr, n } of subtasks) {
    numerator += (n - 1) * stderr ** 2 * n;
    total += n;
  }
  return Math.sqrt(numerator / (total - subtasks.length) / total);
}

/**
 * A group's value and stderr from its subtasks, as lm-eval aggregates `mmlu`: size-weighted mean
 * `Σ valueᵢ·nᵢ / Σ nᵢ` (or the plain mean with `weightBySize: false`) and the pooled stderr.
 *
 * @example
 * aggregateSubtasks([{ value: 0.47, stderr: 0.0502, n: 100 }, { value: 0.3, stderr: 0.0433, n: 112 }]);
 * // { value: 0.3801…, stderr: 0.0329…, n: 212 }
 */
export function aggregateSubtasks(
  subtasks: readonly SubtaskEstimate[],
  options: { weightBySize?: boolean } = {},
): SubtaskEstimate {
  checkSubtasks('aggregateSubtasks', subtasks);
  const weightBySize = options.weightBySize ?? true;
  let weighted = 0;
  let weights = 0;
  let n = 0;
  for (const s of subtasks) {
    const w = weightBySize ? s.n : 1;
    requireFinite('aggregateSubtasks: value', s.value);
    weighted += s.value * w;
    weights += w;
    n += s.n;
  }
  return { value: weighted / weights, stderr: pooledStderr(subtasks), n };
}

function checkSubtasks(
  fn: string,
  subtasks: readonly Pick<SubtaskEstimate, 'stderr' | 'n'>[],
): void {
  if (!Array.isArray(subtasks) || subtasks.length === 0) {
    throw new MetricsError(
      'EMPTY',
      `${fn}(subtasks): expected at least 1 subtask, got ${describe(subtasks)}`,
    );
  }
  subtasks.forEach((s, i) => {
    if (!Number.isInteger(s.n) || s.n < 1) {
      throw new MetricsError(
        'BAD_INPUT',
        `${fn}: subtasks[${i}].n: expected a positive integer, got ${describe(s.n)}`,
      );
    }
    if (typeof s.stderr !== 'number' || s.stderr < 0) {
      throw new MetricsError(
        'BAD_INPUT',
        `${fn}: subtasks[${i}].stderr: expected a number ≥ 0 or NaN, got ${describe(s.stderr)}`,
      );
    }
  });
}

/**
 * Options of {@link bootstrapStderr}.
 *
 * @example
 * bootstrapStderr(mean, xs, { iters: 2000, seed: 0 } satisfies BootstrapOptions);
 */
export interface BootstrapOptions {
  /** Number of resamples; lm-eval's default is 100000. Only whole chunks run, as in lm-eval. */
  iters?: number;
  /** Seed of the first chunk; chunk i uses `random.Random(seed + i)`. lm-eval uses 0. */
  seed?: number;
}

/**
 * Bootstrap standard error of `statistic(xs)`, reproducing lm-eval's `bootstrap_stderr` draw for
 * draw: chunks of min(1000, iters) resamples, chunk i drawn with CPython's `random.Random(i)
 * .choices(xs, k=len(xs))`, result = sample std (n − 1) of all replicates. Deterministic.
 *
 * @example
 * const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
 * bootstrapStderr(median, [3, 1, 4, 1, 5, 9, 2, 6], { iters: 1000 }); // 1.3650… (lm-eval's value)
 */
export function bootstrapStderr<T>(
  statistic: (sample: readonly T[]) => number,
  xs: readonly T[],
  options: BootstrapOptions = {},
): number {
  const iters = options.iters ?? 100_000;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(iters) || iters < 1) {
    throw new MetricsError(
      'BAD_INPUT',
      `bootstrapStderr: iters: expected a positive integer, got ${describe(iters)}`,
    );
  }
  if (!Number.isInteger(seed)) {
    throw new MetricsError(
      'BAD_INPUT',
      `bootstrapStderr: seed: expected an integer, got ${describe(seed)}`,
    );
  }
  if (xs.length === 0)
    throw new MetricsError('EMPTY', 'bootstrapStderr(xs): expected at least 1 item, got 0');
  const chunk = Math.min(1000, iters);
  const replicates: number[] = [];
  for (let i = 0; i < Math.floor(iters / chunk); i++) {
    const rnd = new PythonRandom(seed + i);
    for (let j = 0; j < chunk; j++) replicates.push(statistic(rnd.choices(xs, xs.length)));
  }
  return sampleStddev(replicates);
}
