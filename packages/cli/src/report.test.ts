import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLmEvalResults } from '@qlora/metrics';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { paperResultsJson, useTempDir } from './_test-helpers';
import { parseLossLog } from './charts';
import { pairOutcomes, parseOutcomesFile } from './outcomes';
import { buildReport, writeReport } from './report';

const readText = (name: string) => readFileSync(fixturePath('metrics', name), 'utf8');
const baseText = readText('results-base.json');
const ftText = readText('results-ft.json');
const base = parseLmEvalResults(baseText);
const ft = parseLmEvalResults(ftText);
const sides = parseOutcomesFile(readText('outcomes.json'), 'outcomes.json');
const cs = ['mmlu_college_computer_science'];
const { outcomes } = pairOutcomes(sides.base, sides.ft, { mmluSubtasks: cs });
const lossLines = Array.from({ length: 30 }, (_, i) =>
  JSON.stringify({ step: i + 1, loss: 2.5 * Math.exp(-i / 10) + 0.8, lr: 2e-4 }),
);
// An evaluation line without `loss` is skipped.
const lossLog = parseLossLog(
  `${lossLines.join('\n')}\n{"step": 30, "eval_loss": 1.1}\n`,
  'train-log.jsonl',
);

const dir = useTempDir();

describe('buildReport / writeReport on the metrics fixtures', () => {
  it('writes report.md, report.json and SVG charts whose numbers match the results files', async () => {
    const written = await writeReport(dir, {
      title: 'Llama 3.2 1B, 2k Alpaca',
      models: [
        {
          name: 'Llama 3.2 1B (2k)',
          base,
          ft,
          baseFile: { path: 'results-base.json', sha256: 'a'.repeat(64) },
          ftFile: { path: 'results-ft.json', sha256: 'b'.repeat(64) },
          compare: { mmlu: { subtasks: cs } },
          outcomes,
          lossLog,
        },
      ],
      config: { finetune: { dataset: { n: 2000 } } },
      dataHashes: { 'alpaca-2k.jsonl': 'c'.repeat(64) },
      seeds: { subset: 3407, fewshot: 1234 },
    });
    expect(written.map((p) => p.slice(dir.length + 1))).toEqual([
      'report.md',
      'report.json',
      'metrics.svg',
      'loss.svg',
    ]);
    for (const svg of ['metrics.svg', 'loss.svg']) {
      expect(readFileSync(join(dir, svg), 'utf8').startsWith('<svg')).toBe(true);
    }
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));

    // Recompute from the results files directly (not through the report code).
    const raw = (text: string) => JSON.parse(text).results;
    const b = raw(baseText);
    const f = raw(ftText);
    const fr =
      1 - f.gsm8k['exact_match,flexible-extract'] / b.gsm8k['exact_match,flexible-extract'];
    const da = f.hellaswag['acc_norm,none'] - b.hellaswag['acc_norm,none'];
    const bm = b.mmlu_college_computer_science;
    const fm = f.mmlu_college_computer_science;
    const dk = bm['acc,none'] - fm['acc,none'];
    const margin = Math.sqrt(bm['acc_stderr,none'] ** 2 + fm['acc_stderr,none'] ** 2);

    const summary = json.models[0].summary;
    expect(summary.forgettingRate).toBeCloseTo(fr, 15);
    expect(summary.abilityAugmentation).toBeCloseTo(da, 15);
    expect(summary.knowledgeLoss.delta).toBeCloseTo(dk, 15);
    expect(summary.knowledgeLoss.margin).toBeCloseTo(margin, 15);

    const pct = (x: number) => (x * 100).toFixed(2);
    expect(md).toContain(`| GSM8K | Forgetting Rate | – | ${pct(fr)}% |`);
    expect(md).toContain(`| HellaSwag | Ability Augmentation | – | +${pct(da)}% |`);
    expect(md).toContain(`| MMLU CS | Knowledge Loss | – | ${pct(dk)}% ± ${pct(margin)} |`);
    expect(md).toContain(
      `| Llama 3.2 1B (2k) | ${pct(fr)}% | +${pct(da)}% | ${pct(dk)}% ± ${pct(margin)} |`,
    );
    expect(md).toContain(
      `| GSM8K | flexible accuracy | ${pct(b.gsm8k['exact_match,flexible-extract'])} ± ${pct(b.gsm8k['exact_match_stderr,flexible-extract'])} |`,
    );

    // Paired tests: one per accuracy row with outcomes, McNemar counts consistent with the outcomes.
    expect(md).toContain('## Paired tests');
    const mmluRow = json.models[0].rows.find((r: { id: string }) => r.id === 'mmlu/acc,none');
    const bo = sides.base['mmlu_college_computer_science/acc,none'] as number[];
    const fo = sides.ft['mmlu_college_computer_science/acc,none'] as number[];
    const bCount = bo.filter((v, i) => v === 1 && fo[i] === 0).length;
    expect(mmluRow.tests.mcnemar.b).toBe(bCount);
    expect(md).toMatch(
      new RegExp(
        `\\| Llama 3\\.2 1B \\(2k\\) \\| MMLU CS \\| accuracy \\| 100 \\| [-0-9.]+ \\| [-0-9.]+ \\| [0-9.e-]+ \\| ${bCount} \\|`,
      ),
    );

    // Reproducibility section.
    expect(md).toContain('"n": 2000');
    expect(md).toContain(`| \`alpaca-2k.jsonl\` | \`${'c'.repeat(64)}\` |`);
    expect(md).toContain('| subset | 3407 |');
    expect(json.versions['@qlora/cli']).toMatch(/^\d+\.\d+\.\d+/);
    expect(json.models[0].lossSteps).toBe(30);
  });

  it('puts several models side by side in one chart and the summary', async () => {
    const paperBase = parseLmEvalResults(paperResultsJson('base'));
    const paperFt = parseLmEvalResults(paperResultsJson('ft'));
    const report = await buildReport({
      models: [
        { name: 'Llama 3.2 1B', base: paperBase, ft: paperFt },
        { name: 'fixture model', base, ft, compare: { mmlu: { subtasks: cs } } },
      ],
    });
    expect(Object.keys(report.charts)).toEqual(['metrics.svg']);
    const svg = report.charts['metrics.svg'] as string;
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('Llama 3.2 1B · fine-tuned');
    expect(svg).toContain('fixture model · base');
    expect(report.markdown).toContain('### Llama 3.2 1B');
    expect(report.markdown).toContain('| Llama 3.2 1B | 88.93% | +0.43% | 13.00% ± 6.92 |');
    expect(report.json.models).toHaveLength(2);
  });
});

describe('parseLossLog', () => {
  it('keeps step/loss lines and rejects malformed JSON with file:line', () => {
    expect(lossLog).toHaveLength(30);
    expect(() => parseLossLog('{"step":1,"loss":1}\nnot json\n', 'log.jsonl')).toThrow(
      /log\.jsonl:2: expected one JSON object per line/,
    );
  });
});
