import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { compareResults, formatTable2Markdown } from './compare';
import { mcnemar, pairedTTest } from './hypothesis-tests';
import { parseLmEvalResults } from './lm-eval-results';

const read = (name: string) =>
  parseLmEvalResults(readFileSync(fixturePath('metrics', name), 'utf8'));
const base = read('results-base.json');
const ft = read('results-ft.json');
const outcomes = JSON.parse(
  readFileSync(fixturePath('metrics', 'outcomes.json'), 'utf8'),
) as Record<string, Record<string, string>>;
const bits = (s: string | undefined): number[] => [...(s ?? '')].map(Number);

describe('compareResults on lm-eval files → Table 2', () => {
  const rows = compareResults(base, ft, {
    mmlu: { subtasks: ['mmlu_college_computer_science'], label: 'MMLU CS' },
  });

  it('produces the paper rows with base ± se, ft ± se and the derived figures', () => {
    expect(rows.map((r) => r.id)).toEqual([
      'gsm8k/exact_match,flexible-extract',
      'gsm8k/exact_match,strict-match',
      'gsm8k/forgetting-rate',
      'hellaswag/acc,none',
      'hellaswag/acc_norm,none',
      'hellaswag/ability-augmentation',
      'mmlu/acc,none',
      'mmlu/knowledge-loss',
    ]);
    const fr = rows.find((r) => r.id === 'gsm8k/forgetting-rate');
    expect(fr?.derived?.value).toBe(1 - 49 / 1319 / (442 / 1319));
    const kl = rows.find((r) => r.id === 'mmlu/knowledge-loss');
    expect(kl?.derived?.value).toBeCloseTo(0.13, 15);
    expect(kl?.derived?.margin).toBe(
      Math.sqrt(0.050161355804659205 ** 2 + 0.04760952285695235 ** 2),
    );
    expect(kl?.base).toEqual({ value: 0.47, stderr: 0.050161355804659205, n: 100 });
  });

  it('prints like the paper (percent, 2 decimals)', () => {
    expect(formatTable2Markdown(rows)).toBe(
      [
        '| Task | Metric | Base | Fine-tuned |',
        '|---|---|---|---|',
        '| GSM8K | flexible accuracy | 33.51 ± 1.30 | 3.71 ± 0.52 |',
        '| GSM8K | strict accuracy | 33.51 ± 1.30 | 3.11 ± 0.48 |',
        '| GSM8K | Forgetting Rate | – | 88.91% |',
        '| HellaSwag | accuracy | 45.23 ± 0.50 | 45.61 ± 0.50 |',
        '| HellaSwag | normalized accuracy | 60.77 ± 0.49 | 61.20 ± 0.49 |',
        '| HellaSwag | Ability Augmentation | – | +0.43% |',
        '| MMLU CS | accuracy | 47.00 ± 5.02 | 34.00 ± 4.76 |',
        '| MMLU CS | Knowledge Loss | – | 13.00% ± 6.92 |', // √(0.05016² + 0.04761²)
        '',
      ].join('\n'),
    );
  });

  it('uses the mmlu group by default and the CS subtasks when asked by task list', () => {
    const byGroup = compareResults(base, ft);
    const mm = byGroup.find((r) => r.id === 'mmlu/acc,none');
    expect(mm?.task).toBe('MMLU');
    expect(mm?.base.value).toBe(base.results.mmlu?.metrics['acc,none']?.value);
    const cs = compareResults(base, ft, {
      mmlu: {
        subtasks: [
          'mmlu_college_computer_science',
          'mmlu_high_school_computer_science',
          'mmlu_computer_security',
          'mmlu_machine_learning',
        ],
      },
    }).find((r) => r.id === 'mmlu/acc,none');
    expect(cs?.base.n).toBe(412);
  });

  it('adds paired tests when per-sample outcomes are given', () => {
    const pick = (id: string, src = id) => ({
      base: bits(outcomes.base?.[src]),
      ft: bits(outcomes.ft?.[src]),
    });
    const withTests = compareResults(base, ft, {
      mmlu: { subtasks: ['mmlu_college_computer_science'] },
      outcomes: {
        'gsm8k/exact_match,flexible-extract': pick('gsm8k/exact_match,flexible-extract'),
        'mmlu/acc,none': pick('mmlu/acc,none', 'mmlu_college_computer_science/acc,none'),
      },
    });
    const gsm = withTests.find((r) => r.id === 'gsm8k/exact_match,flexible-extract');
    const o = pick('gsm8k/exact_match,flexible-extract');
    expect(gsm?.tests?.pairedTTest).toEqual(pairedTTest(o.base, o.ft));
    expect(gsm?.tests?.mcnemar).toEqual(mcnemar(o.base, o.ft));
    expect(gsm?.tests?.pairedTTest.p).toBeLessThan(1e-50);
    const md = formatTable2Markdown(withTests);
    expect(md.split('\n')[0]).toBe(
      '| Task | Metric | Base | Fine-tuned | paired t-test p | McNemar p |',
    );
  });

  it('prints "N/A" stderrs and names missing tasks and metrics', () => {
    const na = read('results-bootstrap0.json');
    const rows2 = compareResults(base, na, {
      mmlu: { subtasks: ['mmlu_college_computer_science'] },
    });
    expect(formatTable2Markdown(rows2)).toContain(
      '| GSM8K | flexible accuracy | 33.51 ± 1.30 | 2.81 ± N/A |',
    );
    expect(formatTable2Markdown(rows2)).toContain(
      '| MMLU CS | Knowledge Loss | – | 20.00% ± N/A |',
    );
    const noGsm = { ...ft, results: { ...ft.results } };
    delete noGsm.results.gsm8k;
    expect(() => compareResults(base, noGsm)).toThrow(
      /results\.gsm8k: expected in both files, got it only in the base results/,
    );
    const noNorm = parseLmEvalResults(
      readFileSync(fixturePath('metrics', 'results-ft.json'), 'utf8'),
    );
    delete noNorm.results.hellaswag?.metrics['acc_norm,none'];
    expect(() => compareResults(base, noNorm)).toThrow(
      /compareResults\(ft\): results\.hellaswag\["acc_norm,none"\]: expected a metric, got none \(metrics there: acc,none\)/,
    );
  });
});
