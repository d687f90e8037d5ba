import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { mcnemar, pairedTTest } from './hypothesis-tests';

type Num = number | 'NaN' | 'Infinity' | '-Infinity';
const num = (x: Num): number => (typeof x === 'number' ? x : Number(x));
const bits = (s: string | number[]): number[] => (typeof s === 'string' ? [...s].map(Number) : s);
const scipy = JSON.parse(readFileSync(fixturePath('metrics', 'scipy-stats.json'), 'utf8')) as {
  ttest: { name: string; a: string | number[]; b: string | number[]; t: Num; df: Num; p: Num }[];
  mcnemar: {
    name: string;
    a: string;
    b: string;
    b01: number;
    c10: number;
    exact: { statistic: Num; p: Num };
    chi2: { statistic: Num; p: Num };
    statsmodels?: { exact: { statistic: Num; p: Num }; chi2: { statistic: Num; p: Num } };
  }[];
};

function close(got: number, want: number, rel = 1e-10): void {
  if (Number.isNaN(want)) expect(got).toBeNaN();
  else if (!Number.isFinite(want) || want === 0) expect(got).toBe(want);
  else expect(Math.abs(got - want) / Math.abs(want)).toBeLessThanOrEqual(rel);
}

describe('pairedTTest against scipy.stats.ttest_rel', () => {
  it.each(scipy.ttest)('$name', ({ a, b, t, df, p }) => {
    const r = pairedTTest(bits(a), bits(b));
    close(r.t, num(t), 1e-12);
    expect(r.df).toBe(num(df));
    close(r.p, num(p));
  });

  it('refuses unequal lengths and a single pair', () => {
    expect(() => pairedTTest([1, 0], [1])).toThrow(/equal lengths.*got 2 and 1/);
    expect(() => pairedTTest([1], [0])).toThrow(/at least 2 pairs/);
  });
});

describe('mcnemar against scipy binomtest / chi2.sf and statsmodels', () => {
  it.each(scipy.mcnemar)('$name', (c) => {
    const a = bits(c.a);
    const b = bits(c.b);
    const exact = mcnemar(a, b, { method: 'exact' });
    expect([exact.b, exact.c]).toEqual([c.b01, c.c10]);
    expect(exact.statistic).toBe(num(c.exact.statistic));
    close(exact.p, num(c.exact.p));
    const chi2 = mcnemar(a, b, { method: 'chi2' });
    close(chi2.statistic, num(c.chi2.statistic), 1e-14);
    close(chi2.p, num(c.chi2.p));
    if (c.statsmodels) {
      close(exact.p, num(c.statsmodels.exact.p));
      close(chi2.statistic, num(c.statsmodels.chi2.statistic), 1e-14);
      close(chi2.p, num(c.statsmodels.chi2.p));
    }
    const auto = mcnemar(a, b);
    expect(auto.method).toBe(c.b01 + c.c10 < 25 ? 'exact' : 'chi2');
  });

  it('switches at b + c = 25 and refuses non-0/1 outcomes', () => {
    const a24 = [...Array(17).fill(1), ...Array(7).fill(0)];
    const b24 = [...Array(17).fill(0), ...Array(7).fill(1)];
    expect(mcnemar(a24, b24).method).toBe('exact');
    expect(mcnemar([...a24, 1], [...b24, 0]).method).toBe('chi2');
    expect(mcnemar(a24, b24, { exactBelow: 10 }).method).toBe('chi2');
    expect(() => mcnemar([0.5], [1])).toThrow(/item 0: expected 0\/1 outcomes/);
  });
});

const pairs = fc
  .integer({ min: 2, max: 200 })
  .chain((n) =>
    fc.tuple(
      fc.array(fc.integer({ min: 0, max: 1 }), { minLength: n, maxLength: n }),
      fc.array(fc.integer({ min: 0, max: 1 }), { minLength: n, maxLength: n }),
    ),
  );

describe('properties', () => {
  test.prop([pairs], { seed: 20260525, numRuns: 300 })(
    't-test: antisymmetric, p ∈ [0, 1] or NaN only for all-zero differences',
    ([a, b]) => {
      const ab = pairedTTest(a, b);
      const ba = pairedTTest(b, a);
      if (Number.isNaN(ab.p)) {
        expect(a).toEqual(b);
        expect(ba.p).toBeNaN();
        return;
      }
      expect(ab.p).toBeGreaterThanOrEqual(0);
      expect(ab.p).toBeLessThanOrEqual(1);
      expect(ba.t === -ab.t).toBe(true); // exact negation (±0 compare equal)
      expect(ba.p).toBe(ab.p);
    },
  );

  test.prop([pairs], { seed: 20260525, numRuns: 300 })(
    'McNemar: p ∈ [0, 1], symmetric in (a, b)',
    ([a, b]) => {
      const ab = mcnemar(a, b);
      const ba = mcnemar(b, a);
      if (ab.method === 'exact' || ab.b + ab.c > 0) {
        expect(ab.p).toBeGreaterThanOrEqual(0);
        expect(ab.p).toBeLessThanOrEqual(1);
      }
      expect(ba.p).toBe(ab.p);
      expect([ba.b, ba.c]).toEqual([ab.c, ab.b]);
    },
  );
});
