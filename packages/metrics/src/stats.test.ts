import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { parseLmEvalResults } from './lm-eval-results';
import {
  accuracy,
  aggregateSubtasks,
  bootstrapStderr,
  mean,
  pooledStderr,
  sampleStderr,
} from './stats';

const ones = (k: number, n: number): number[] => [...Array(k).fill(1), ...Array(n - k).fill(0)];

describe("the paper's standard errors", () => {
  it('47/100 → 0.0502 (MMLU CS) and 442/1319 → 0.0130 (GSM8K)', () => {
    expect(sampleStderr(ones(47, 100)).toFixed(4)).toBe('0.0502');
    expect(sampleStderr(ones(442, 1319)).toFixed(4)).toBe('0.0130');
    // √(p(1−p)/(n−1)), the closed form the paper quotes
    expect(sampleStderr(ones(47, 100))).toBeCloseTo(Math.sqrt((0.47 * 0.53) / 99), 15);
  });

  it('accuracy returns value, stderr, the unclamped 95% interval and n', () => {
    const acc = accuracy(ones(442, 1319).map((x) => x === 1));
    expect(acc.n).toBe(1319);
    expect(acc.value).toBe(442 / 1319);
    expect(acc.ci95.lower).toBe(acc.value - 1.96 * acc.stderr);
    expect(acc.ci95.upper).toBe(acc.value + 1.96 * acc.stderr);
    const perfect = accuracy([1, 1, 1]);
    expect(perfect.stderr).toBe(0);
    expect(perfect.ci95.upper).toBe(1);
    const single = accuracy([1]);
    expect(single.stderr).toBeNaN(); // lm-eval writes "N/A"
  });

  it('mean/accuracy refuse empty and non-finite input, naming the index', () => {
    expect(() => mean([])).toThrow(/at least 1 value, got 0/);
    expect(() => accuracy([1, Number.NaN])).toThrow(
      /accuracy\(outcomes\)\[1\]: expected a finite number or boolean, got NaN/,
    );
  });
});

describe('against the lm-eval reference files (tools/reference/lm_eval_results.py)', () => {
  const base = parseLmEvalResults(
    readFileSync(fixturePath('metrics', 'results-base.json'), 'utf8'),
  );
  const outcomes = JSON.parse(
    readFileSync(fixturePath('metrics', 'outcomes.json'), 'utf8'),
  ) as Record<string, Record<string, string>>;
  const bits = (s: string | undefined): number[] => [...(s ?? '')].map(Number);

  it('accuracy over the per-sample outcomes reproduces value and stderr of the file', () => {
    const cases: [string, string, string][] = [
      ['gsm8k/exact_match,flexible-extract', 'gsm8k', 'exact_match,flexible-extract'],
      ['hellaswag/acc,none', 'hellaswag', 'acc,none'],
      ['hellaswag/acc_norm,none', 'hellaswag', 'acc_norm,none'],
      ['mmlu_college_computer_science/acc,none', 'mmlu_college_computer_science', 'acc,none'],
    ];
    for (const [id, task, key] of cases) {
      const acc = accuracy(bits(outcomes.base?.[id]));
      const m = base.results[task]?.metrics[key];
      expect(acc.value).toBe(m?.value);
      expect(Math.abs(acc.stderr - (m?.stderr as number))).toBeLessThan(1e-17);
    }
  });

  it('aggregateSubtasks/pooledStderr reproduce the mmlu groups', () => {
    for (const group of ['mmlu_stem', 'mmlu_humanities', 'mmlu']) {
      const leaves = (base.groupSubtasks[group] ?? []).flatMap((t) => base.groupSubtasks[t] ?? [t]);
      const parts = leaves.map((t) => {
        const e = base.results[t];
        const m = e?.metrics['acc,none'];
        return {
          value: m?.value as number,
          stderr: m?.stderr as number,
          n: e?.sampleLen as number,
        };
      });
      const agg = aggregateSubtasks(parts);
      const want = base.results[group]?.metrics['acc,none'];
      expect(agg.value).toBe(want?.value);
      expect(
        Math.abs(agg.stderr - (want?.stderr as number)) / (want?.stderr as number),
      ).toBeLessThan(1e-14);
      expect(agg.n).toBe(base.results[group]?.sampleLen);
    }
  });

  it('bootstrapStderr reproduces lm-eval bootstrap_stderr draw for draw', () => {
    const ref = JSON.parse(readFileSync(fixturePath('metrics', 'bootstrap.json'), 'utf8')) as {
      xs: number[];
      bits: string;
      cases: { f: 'mean' | 'median'; data: 'xs' | 'bits'; iters: number; stderr: number }[];
    };
    const median = (arr: readonly number[]): number =>
      [...arr].sort((a, b) => a - b)[arr.length >> 1] as number;
    const avg = (arr: readonly number[]): number => arr.reduce((s, x) => s + x, 0) / arr.length;
    for (const c of ref.cases) {
      const data = c.data === 'xs' ? ref.xs : bits(ref.bits);
      const got = bootstrapStderr(c.f === 'mean' ? avg : median, data, { iters: c.iters });
      expect(Math.abs(got - c.stderr) / c.stderr, `${c.f} ${c.data} ${c.iters}`).toBeLessThan(
        1e-13,
      );
    }
    const again = bootstrapStderr(avg, ref.xs, { iters: 1000 });
    expect(bootstrapStderr(avg, ref.xs, { iters: 1000 })).toBe(again);
    expect(bootstrapStderr(avg, ref.xs, { iters: 1000, seed: 7 })).not.toBe(again);
  });
});

describe('pooledStderr', () => {
  it('is lm-eval’s formula and equals the subtask stderr for one subtask', () => {
    expect(pooledStderr([{ stderr: 0.05, n: 100 }])).toBeCloseTo(0.05, 15);
    const want = Math.sqrt((99 * 0.0502 ** 2 * 100 + 99 * 0.0476 ** 2 * 100) / (200 - 2) / 200);
    expect(
      pooledStderr([
        { stderr: 0.0502, n: 100 },
        { stderr: 0.0476, n: 100 },
      ]),
    ).toBe(want);
    expect(
      pooledStderr([
        { stderr: Number.NaN, n: 10 },
        { stderr: 0.1, n: 10 },
      ]),
    ).toBeNaN();
    expect(() => pooledStderr([])).toThrow(/at least 1 subtask/);
    expect(() => pooledStderr([{ stderr: 0.1, n: 0 }])).toThrow(
      /subtasks\[0\]\.n: expected a positive integer, got 0/,
    );
  });
});

describe('properties', () => {
  test.prop(
    [fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 2, maxLength: 300 })],
    {
      seed: 20260525,
    },
  )('sampleStderr ≥ 0', (xs) => {
    expect(sampleStderr(xs)).toBeGreaterThanOrEqual(0);
  });

  test.prop(
    [
      fc.array(
        fc.record({
          stderr: fc.double({ min: 0, max: 1, noNaN: true }),
          n: fc.integer({ min: 2, max: 5000 }),
        }),
        { minLength: 1, maxLength: 20 },
      ),
    ],
    {
      seed: 20260525,
    },
  )('pooledStderr ≥ 0', (parts) => {
    expect(pooledStderr(parts)).toBeGreaterThanOrEqual(0);
  });
});
