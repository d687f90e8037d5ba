import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { compareResults } from './compare';
import { parseLmEvalResults, toLmEvalResults } from './lm-eval-results';

// Results files written by lm-evaluation-harness v0.4.12's own code (its evaluator and results
// serialisation, run by tools/reference/lm_eval_prompts.py), not by ours.
const written = JSON.parse(readFileSync(fixturePath('bench', 'results.json'), 'utf8')) as Record<
  string,
  string
>;

describe('results files written by lm-evaluation-harness itself', () => {
  it.each(Object.keys(written))('%s: parses and writes back byte for byte', (task) => {
    const text = written[task]!;
    const parsed = parseLmEvalResults(text);
    expect(Object.keys(parsed.results).length).toBeGreaterThan(0);
    expect(toLmEvalResults(parsed)).toBe(text);
  });

  it('reads the values lm-eval wrote', () => {
    const hellaswag = parseLmEvalResults(written.hellaswag!);
    const metrics = hellaswag.results.hellaswag?.metrics;
    expect(metrics?.['acc,none']).toEqual({ value: 0.238, stderr: 0.013473586661967216 });
    expect(metrics?.['acc_norm,none']?.stderr).toBe(0.013644675781314121);
  });

  it('compares two of them into Table 2 rows', () => {
    const base = parseLmEvalResults(written.hellaswag!);
    const rows = compareResults(base, base);
    const accNorm = rows.find((row) => row.id === 'hellaswag/acc_norm,none');
    expect(accNorm?.base.value).toBe(0.247);
    expect(accNorm?.ft.value).toBe(0.247);
  });
});
