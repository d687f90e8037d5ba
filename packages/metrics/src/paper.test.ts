import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { abilityAugmentation, forgettingRate, formatPercent, knowledgeLoss } from './paper';

describe("the paper's Table 2 arithmetic from its printed inputs", () => {
  it('FR = 88.93% from 33.51 → 3.71 (the paper prints 88.92% from unrounded inputs)', () => {
    expect(formatPercent(forgettingRate(0.3351, 0.0371))).toBe('88.93%');
    expect(
      forgettingRate({ value: 0.3351, stderr: 0.013 }, { value: 0.0371, stderr: 0.0052 }),
    ).toBe(1 - 0.0371 / 0.3351);
  });

  it('ΔA = +0.43% from 60.77 → 61.20', () => {
    expect(formatPercent(abilityAugmentation(0.6077, 0.612), { sign: true })).toBe('+0.43%');
  });

  it('ΔK = 13.00% ± 6.92 from 47.00 ± 5.02 and 34.00 ± 4.76', () => {
    const k = knowledgeLoss({ value: 0.47, stderr: 0.0502 }, { value: 0.34, stderr: 0.0476 });
    expect(formatPercent(k.delta)).toBe('13.00%');
    expect(formatPercent(k.margin, { suffix: false })).toBe('6.92');
    expect(k.margin).toBe(Math.sqrt(0.0502 ** 2 + 0.0476 ** 2));
  });

  it('refuses FR from a base accuracy of 0', () => {
    expect(() => forgettingRate(0, 0.1)).toThrow(/expected a base accuracy > 0, got 0/);
  });
});

describe('formatPercent', () => {
  it('formats fractions as percents only here', () => {
    expect(formatPercent(0.3351)).toBe('33.51%');
    expect(formatPercent(0.013, { suffix: false })).toBe('1.30');
    expect(formatPercent(-0.0043, { sign: true })).toBe('-0.43%');
    expect(formatPercent(-0.00001)).toBe('0.00%');
    expect(formatPercent(Number.NaN)).toBe('N/A');
    expect(formatPercent(0.5, { decimals: 0 })).toBe('50%');
  });
});

describe('properties', () => {
  test.prop(
    [fc.double({ min: 1e-9, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })],
    {
      seed: 20260525,
    },
  )('FR ≤ 1 for accuracies in [0, 1] with base > 0', (base, ft) => {
    expect(forgettingRate(base, ft)).toBeLessThanOrEqual(1);
  });

  // min 1e-100 keeps the squares out of the subnormal range
  test.prop(
    [
      fc.double({ min: 1e-100, max: 1, noNaN: true }),
      fc.double({ min: 1e-100, max: 1, noNaN: true }),
    ],
    { seed: 20260525 },
  )('knowledge-loss margin ≥ max of the two stderrs', (a, b) => {
    const { margin } = knowledgeLoss({ value: 0.5, stderr: a }, { value: 0.4, stderr: b });
    expect(margin).toBeGreaterThanOrEqual(Math.max(a, b));
  });
});
