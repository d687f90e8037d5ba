import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import {
  binomialCdf,
  chiSquareSurvival,
  logGamma,
  regularizedIncompleteBeta,
  studentTSurvival,
} from './_special';

type Num = number | 'NaN' | 'Infinity' | '-Infinity';
const num = (x: Num): number => (typeof x === 'number' ? x : Number(x));
const scipy = JSON.parse(readFileSync(fixturePath('metrics', 'scipy-stats.json'), 'utf8')) as {
  tsf: { t: number; df: number; sf: Num }[];
  betainc: { a: number; b: number; x: number; value: Num }[];
  binomtest: { k: number; n: number; p: Num }[];
  chi2sf: { x: number; df: number; sf: Num }[];
};

/** |got − want| ≤ 1e-10 · max(|want|, tiny): relative, so tails like 1e-67 are checked too. */
function expectClose(got: number, want: number, rel = 1e-10): void {
  if (Number.isNaN(want)) {
    expect(got).toBeNaN();
    return;
  }
  if (want === 0) {
    expect(Math.abs(got)).toBeLessThan(1e-300);
    return;
  }
  expect(Math.abs(got - want) / Math.abs(want)).toBeLessThanOrEqual(rel);
}

describe('special functions against SciPy (scipy-stats.json)', () => {
  it('logGamma matches closed forms', () => {
    expectClose(logGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-14);
    expectClose(logGamma(10), Math.log(362880), 1e-14);
    expectClose(logGamma(3), Math.log(2), 1e-14);
    expectClose(logGamma(25.5), 56.389167643719944, 1e-14); // Python math.lgamma(25.5)
  });

  it.each(scipy.betainc)('betainc($a, $b, $x)', ({ a, b, x, value }) => {
    expectClose(regularizedIncompleteBeta(a, b, x), num(value));
  });

  it('t.sf to 1e-10 relative for every (t, df) case', () => {
    for (const { t, df, sf } of scipy.tsf) {
      const got = studentTSurvival(t, df);
      const want = num(sf);
      if (want === 0) expect(got, `t=${t} df=${df}`).toBeLessThan(1e-300);
      else
        expect(Math.abs(got - want) / Math.abs(want), `t=${t} df=${df}`).toBeLessThanOrEqual(1e-10);
    }
  });

  it.each(scipy.binomtest)('binomtest($k, $n, 0.5) two-sided', ({ k, n, p }) => {
    const want = num(p);
    const got = k * 2 === n ? 1 : Math.min(1, 2 * binomialCdf(Math.min(k, n - k), n, 0.5));
    expectClose(got, want);
  });

  it.each(scipy.chi2sf)('chi2.sf($x, 1)', ({ x, df, sf }) => {
    expectClose(chiSquareSurvival(x, df), num(sf));
  });
});
