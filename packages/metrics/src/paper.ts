import { describe, toEstimate } from './_validate';
import { MetricsError } from './errors';
import type { Estimate } from './types';

/**
 * The paper's Forgetting Rate, `FR = 1 − A_flex(FT) / A_flex(Base)`, as a fraction (0.8893 =
 * 88.93%). Negative when the fine-tuned model is better. Throws when the base accuracy is 0.
 *
 * @example
 * forgettingRate(0.3351, 0.0371); // 0.88928678…  → formatPercent gives "88.93%"
 */
export function forgettingRate(baseFlex: number | Estimate, ftFlex: number | Estimate): number {
  const base = toEstimate('forgettingRate(baseFlex)', baseFlex).value;
  const ft = toEstimate('forgettingRate(ftFlex)', ftFlex).value;
  if (base === 0) {
    throw new MetricsError(
      'DIVISION_BY_ZERO',
      'forgettingRate(baseFlex): expected a base accuracy > 0, got 0. Nothing can be forgotten from 0; report the fine-tuned accuracy instead',
    );
  }
  return 1 - ft / base;
}

/**
 * The paper's Ability Augmentation, `ΔA = A_norm(FT) − A_norm(Base)`, as a fraction.
 *
 * @example
 * abilityAugmentation(0.6077, 0.612); // 0.0043 (+0.43 points)
 */
export function abilityAugmentation(
  baseNorm: number | Estimate,
  ftNorm: number | Estimate,
): number {
  return (
    toEstimate('abilityAugmentation(ftNorm)', ftNorm).value -
    toEstimate('abilityAugmentation(baseNorm)', baseNorm).value
  );
}

/**
 * What {@link knowledgeLoss} returns: `delta = base − ft` and `margin = √(se_base² + se_ft²)`.
 *
 * @example
 * const { delta, margin }: KnowledgeLoss = knowledgeLoss(base, ft);
 */
export interface KnowledgeLoss {
  delta: number;
  margin: number;
}

/**
 * The paper's Knowledge Loss, `ΔK = A(Base) − A(FT) ± √(se_Base² + se_FT²)` (fractions). The margin
 * is the stderr of the difference of two independent estimates; multiply by 1.96 for a 95% interval.
 *
 * @example
 * knowledgeLoss({ value: 0.47, stderr: 0.0502 }, { value: 0.34, stderr: 0.0476 });
 * // { delta: 0.13, margin: 0.06918… }  → "13.00% ± 6.92"
 */
export function knowledgeLoss(base: Estimate, ft: Estimate): KnowledgeLoss {
  const b = toEstimate('knowledgeLoss(base)', base);
  const f = toEstimate('knowledgeLoss(ft)', ft);
  for (const [what, se] of [
    ['base.stderr', b.stderr],
    ['ft.stderr', f.stderr],
  ] as const) {
    if (typeof se !== 'number' || se < 0) {
      throw new MetricsError(
        'BAD_INPUT',
        `knowledgeLoss(${what}): expected a number ≥ 0 or NaN, got ${describe(se)}`,
      );
    }
  }
  return { delta: b.value - f.value, margin: Math.sqrt(b.stderr ** 2 + f.stderr ** 2) };
}

/**
 * Options of {@link formatPercent}.
 *
 * @example
 * formatPercent(0.0043, { decimals: 1, sign: true, suffix: false }); // "+0.4"
 */
export interface FormatPercentOptions {
  /** Digits after the decimal point (default 2). */
  decimals?: number;
  /** Prefix "+" on positive numbers (default false). */
  sign?: boolean;
  /** Append "%" (default true). */
  suffix?: boolean;
}

/**
 * A fraction as a percent string: the only place fractions become percents.
 * NaN prints as "N/A".
 *
 * @example
 * formatPercent(0.889286); // "88.93%"
 * formatPercent(0.0043, { sign: true }); // "+0.43%"
 * formatPercent(0.013, { suffix: false }); // "1.30"
 */
export function formatPercent(fraction: number, options: FormatPercentOptions = {}): string {
  if (typeof fraction !== 'number') {
    throw new MetricsError(
      'BAD_INPUT',
      `formatPercent(fraction): expected a number, got ${describe(fraction)}`,
    );
  }
  if (Number.isNaN(fraction)) return 'N/A';
  const decimals = options.decimals ?? 2;
  let text = (fraction * 100).toFixed(decimals);
  if (/^-0\.?0*$/.test(text)) text = text.slice(1);
  if (options.sign === true && fraction > 0 && !/^0\.?0*$/.test(text)) text = `+${text}`;
  return options.suffix === false ? text : `${text}%`;
}
