import { binomialCdf, chiSquareSurvival, studentTSurvival } from './_special';
import { describe, toNumbers } from './_validate';
import { MetricsError } from './errors';
import type { Outcomes } from './types';

/**
 * What {@link pairedTTest} returns.
 *
 * @example
 * const { t, df, p }: PairedTTest = pairedTTest(baseOutcomes, ftOutcomes);
 */
export interface PairedTTest {
  /** mean(a − b) / (sd(a − b) / √n), sd with n − 1. ±Infinity when all differences are equal and ≠ 0. */
  t: number;
  /** n − 1. */
  df: number;
  /** Two-sided p-value, 2·P(T_df > |t|). NaN when every difference is 0 (as SciPy). */
  p: number;
  /** mean(a − b). */
  meanDifference: number;
  n: number;
}

/**
 * Two-sided paired t-test on per-sample outcomes (or scores), as `scipy.stats.ttest_rel(a, b)`:
 * t flips sign when a and b swap, p stays. Degenerate cases follow SciPy: all differences 0 →
 * t = p = NaN; all differences equal and ≠ 0 → t = ±Infinity, p = 0.
 *
 * @example
 * pairedTTest([1, 1, 0, 1], [0, 1, 0, 0]); // { t: 1.7320…, df: 3, p: 0.1817…, meanDifference: 0.5, n: 4 }
 */
export function pairedTTest(a: Outcomes, b: Outcomes): PairedTTest {
  const xs = toNumbers('pairedTTest(a)', a);
  const ys = toNumbers('pairedTTest(b)', b);
  if (xs.length !== ys.length) {
    throw new MetricsError(
      'LENGTH_MISMATCH',
      `pairedTTest(a, b): expected outcomes of the same items (equal lengths), got ${xs.length} and ${ys.length}`,
    );
  }
  const n = xs.length;
  if (n < 2)
    throw new MetricsError('EMPTY', `pairedTTest(a, b): expected at least 2 pairs, got ${n}`);
  const d = xs.map((x, i) => x - (ys[i] as number));
  let sum = 0;
  for (const v of d) sum += v;
  const meanDifference = sum / n;
  let squares = 0;
  for (const v of d) squares += (v - meanDifference) ** 2;
  const sd = Math.sqrt(squares / (n - 1));
  const df = n - 1;
  const t = meanDifference / (sd / Math.sqrt(n)); // 0/0 → NaN, x/0 → ±Infinity, as NumPy
  const p = Number.isNaN(t) ? Number.NaN : Math.min(1, 2 * studentTSurvival(Math.abs(t), df));
  return { t, df, p, meanDifference, n };
}

/**
 * Options of {@link mcnemar}.
 *
 * @example
 * mcnemar(a, b, { method: 'auto', exactBelow: 25 });
 */
export interface McNemarOptions {
  /**
   * `auto` (default): exact binomial when discordant pairs b + c < `exactBelow`, else chi-square with
   * continuity correction. `exact` and `chi2` force one.
   */
  method?: 'auto' | 'exact' | 'chi2';
  /** Threshold on b + c for `auto` (default 25, the usual rule of thumb). */
  exactBelow?: number;
}

/**
 * What {@link mcnemar} returns.
 *
 * @example
 * const { b, c, p, method }: McNemarTest = mcnemar(baseOutcomes, ftOutcomes);
 */
export interface McNemarTest {
  /** Exact: min(b, c) (as statsmodels). Chi-square: (|b − c| − 1)² / (b + c). */
  statistic: number;
  /** Two-sided p-value. Exact: 1 when there are no discordant pairs; chi2 then gives NaN. */
  p: number;
  /** Items right in `a` and wrong in `b` (e.g. base right, fine-tuned wrong). */
  b: number;
  /** Items wrong in `a` and right in `b`. */
  c: number;
  method: 'exact' | 'chi2';
}

/**
 * McNemar's test of paired 0/1 outcomes (same items, two models). Exact two-sided binomial test
 * (p = min(1, 2·P(X ≤ min(b, c))), X ~ Bin(b + c, ½)) when b + c < 25, else chi-square with
 * continuity correction, (|b − c| − 1)²/(b + c) on 1 df, unclamped as in statsmodels.
 *
 * @example
 * mcnemar([1, 1, 1, 0, 0], [0, 0, 1, 0, 1]); // { statistic: 1, p: 1, b: 2, c: 1, method: 'exact' }
 */
export function mcnemar(a: Outcomes, b: Outcomes, options: McNemarOptions = {}): McNemarTest {
  const xs = toNumbers('mcnemar(a)', a);
  const ys = toNumbers('mcnemar(b)', b);
  if (xs.length !== ys.length) {
    throw new MetricsError(
      'LENGTH_MISMATCH',
      `mcnemar(a, b): expected outcomes of the same items (equal lengths), got ${xs.length} and ${ys.length}`,
    );
  }
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as number;
    const y = ys[i] as number;
    if ((x !== 0 && x !== 1) || (y !== 0 && y !== 1)) {
      throw new MetricsError(
        'BAD_INPUT',
        `mcnemar: item ${i}: expected 0/1 outcomes, got ${describe(x)} and ${describe(y)}`,
      );
    }
    if (x === 1 && y === 0) onlyA++;
    else if (x === 0 && y === 1) onlyB++;
  }
  const exactBelow = options.exactBelow ?? 25;
  const method = options.method ?? 'auto';
  const discordant = onlyA + onlyB;
  const useExact = method === 'exact' || (method === 'auto' && discordant < exactBelow);
  if (useExact) {
    const k = Math.min(onlyA, onlyB);
    const p = discordant === 0 ? 1 : Math.min(1, 2 * binomialCdf(k, discordant, 0.5));
    return { statistic: k, p, b: onlyA, c: onlyB, method: 'exact' };
  }
  if (discordant === 0) return { statistic: Number.NaN, p: Number.NaN, b: 0, c: 0, method: 'chi2' };
  const statistic = (Math.abs(onlyA - onlyB) - 1) ** 2 / discordant;
  return { statistic, p: chiSquareSurvival(statistic, 1), b: onlyA, c: onlyB, method: 'chi2' };
}
