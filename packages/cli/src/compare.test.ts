import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { qlora, useTempDir, writePaperResults } from './_test-helpers';

const dir = useTempDir();
const paper = writePaperResults(dir);

describe("qlora compare on the paper's Table 2 inputs", () => {
  it('prints FR 88.93%, ΔA +0.43 and ΔK 13.00 ± 6.92', async () => {
    const { status, stdout, stderr } = await qlora(['compare', paper.base, paper.ft]);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout).toContain('| GSM8K | flexible accuracy | 33.51 ± 1.30 | 3.71 ± 0.52 |');
    expect(stdout).toContain('| GSM8K | strict accuracy | 33.51 ± 1.30 | 3.11 ± 0.48 |');
    expect(stdout).toContain('| GSM8K | Forgetting Rate | – | 88.93% |');
    expect(stdout).toContain('| HellaSwag | Ability Augmentation | – | +0.43% |');
    expect(stdout).toContain('| MMLU CS | accuracy | 47.00 ± 5.02 | 34.00 ± 4.76 |');
    expect(stdout).toContain('| MMLU CS | Knowledge Loss | – | 13.00% ± 6.92 |');
    expect(stdout).toMatch(/^FR 88\.93%/m);
    expect(stdout).toMatch(/^ΔA \+0\.43 points/m);
    expect(stdout).toMatch(/^ΔK 13\.00 ± 6\.92 points/m);
  });

  it('--json gives the same figures as fractions, recomputable from the inputs', async () => {
    const { status, stdout } = await qlora(['compare', paper.base, paper.ft, '--json']);
    expect(status).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.summary.forgettingRate).toBeCloseTo(1 - 0.0371 / 0.3351, 14);
    expect(out.summary.abilityAugmentation).toBeCloseTo(0.612 - 0.6077, 14);
    expect(out.summary.knowledgeLoss.delta).toBeCloseTo(0.13, 14);
    expect(out.summary.knowledgeLoss.margin).toBeCloseTo(Math.hypot(0.0502, 0.0476), 14);
    expect(out.rows).toHaveLength(8);
  });

  it('--markdown writes the table to a file (relative to the working directory)', async () => {
    const { status } = await qlora(
      ['compare', 'paper-base.json', 'paper-ft.json', '--markdown', 'out/table2.md'],
      { cwd: dir },
    );
    expect(status).toBe(0);
    const md = readFileSync(join(dir, 'out/table2.md'), 'utf8');
    expect(md.split('\n')[0]).toBe('| Task | Metric | Base | Fine-tuned |');
    expect(md).toContain('88.93%');
  });
});

describe('qlora compare on lm-eval fixtures (test-fixtures/metrics)', () => {
  const base = fixturePath('metrics', 'results-base.json');
  const ft = fixturePath('metrics', 'results-ft.json');

  it('reads the mmlu group by default and the CS subject with --mmlu-subtasks', async () => {
    const all = await qlora(['compare', base, ft]);
    expect(all.status).toBe(0);
    expect(all.stdout).toContain('| MMLU | accuracy |');
    const cs = await qlora([
      'compare',
      base,
      ft,
      '--mmlu-subtasks',
      'mmlu_college_computer_science',
    ]);
    expect(cs.stdout).toContain('| MMLU CS | Knowledge Loss | – | 13.00% ± 6.92 |');
    expect(cs.stdout).toContain('| GSM8K | Forgetting Rate | – | 88.91% |');
  });

  it('adds paired t-test and McNemar p-values from an outcomes file', async () => {
    const { status, stdout } = await qlora([
      'compare',
      base,
      ft,
      '--mmlu-subtasks',
      'mmlu_college_computer_science',
      '--outcomes',
      fixturePath('metrics', 'outcomes.json'),
      '--json',
    ]);
    expect(status).toBe(0);
    const out = JSON.parse(stdout);
    const mmlu = out.rows.find((r: { id: string }) => r.id === 'mmlu/acc,none');
    expect(mmlu.tests.pairedTTest.n).toBe(100);
    const gsm = out.rows.find((r: { id: string }) => r.id === 'gsm8k/exact_match,flexible-extract');
    expect(gsm.tests.mcnemar.b).toBeGreaterThan(gsm.tests.mcnemar.c);
    expect(out.warnings).toEqual([]);
  });

  it('reads lm-eval --log_samples folders for paired tests', async () => {
    const mk = (name: string, bits: number[]) => {
      const d = join(dir, name);
      const lines = bits.map((b, i) =>
        JSON.stringify({
          doc_id: bits.length - 1 - i,
          filter: 'none',
          metrics: ['acc', 'acc_norm'],
          acc: b,
          acc_norm: b,
        }),
      );
      mkdirSync(d, { recursive: true });
      writeFileSync(
        join(d, 'samples_hellaswag_2026-05-25T05-58-49.123456.jsonl'),
        `${lines.join('\n')}\n`,
      );
      return d;
    };
    const b = mk('samples-base', [1, 1, 0, 1, 0, 1]);
    const f = mk('samples-ft', [0, 1, 0, 1, 1, 1]);
    const { stdout } = await qlora([
      'compare',
      base,
      ft,
      '--base-samples',
      b,
      '--ft-samples',
      f,
      '--json',
    ]);
    const row = JSON.parse(stdout).rows.find((r: { id: string }) => r.id === 'hellaswag/acc,none');
    expect(row.tests.mcnemar).toMatchObject({ b: 1, c: 1 });
    expect(row.tests.pairedTTest.n).toBe(6);
  });
});

describe('qlora compare errors', () => {
  it('a missing file: exit 3, one line plus a hint, no stack', async () => {
    const { status, stdout, stderr } = await qlora(['compare', 'missing.json', paper.ft], {
      cwd: dir,
    });
    expect(status).toBe(3);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^qlora: error: \[@qlora\/cli\] reading base lm-eval results .*missing\.json: expected a readable file, got ENOENT$/,
    );
    expect(lines[1]).toMatch(/^hint: /);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('a file that is not lm-eval results: exit 3 with the JSON path from @qlora/metrics', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ results: { gsm8k: { 'acc,none': 'high' } } }));
    const { status, stderr } = await qlora(['compare', bad, paper.ft]);
    expect(status).toBe(3);
    expect(stderr).toMatch(
      /^qlora: error: \[@qlora\/metrics\] lm-eval results at \$\.results\.gsm8k/,
    );
    expect(stderr).toContain('hint: ');
  });

  it('--json errors are one JSON object on stderr; --debug adds the stack', async () => {
    const json = await qlora(['compare', 'missing.json', paper.ft, '--json'], { cwd: dir });
    expect(JSON.parse(json.stderr)).toMatchObject({
      error: { code: 'INPUT_MISSING', exitCode: 3 },
    });
    const debug = await qlora(['compare', 'missing.json', paper.ft, '--debug'], { cwd: dir });
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('usage errors exit 2', async () => {
    const missingArg = await qlora(['compare', paper.base]);
    expect(missingArg.status).toBe(2);
    expect(missingArg.stderr).toMatch(/^qlora: error: missing required argument 'ft'\nhint: /);
    const unknown = await qlora(['compare', paper.base, paper.ft, '--nope']);
    expect(unknown.status).toBe(2);
  });
});
