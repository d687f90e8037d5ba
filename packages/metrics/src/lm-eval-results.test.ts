import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { formatPythonFloat, parsePythonJson, stringifyPythonJson } from './_python-json';
import {
  buildLmEvalResults,
  type LmEvalResultsInput,
  parseLmEvalResults,
  toLmEvalResults,
  toLmEvalSampleLine,
} from './lm-eval-results';
import { sha256Hex } from './sha256';

const read = (name: string): string => readFileSync(fixturePath('metrics', name), 'utf8');
const FILES = ['results-base.json', 'results-ft.json', 'results-bootstrap0.json'];

describe('parseLmEvalResults on files in lm-eval 0.4.x shape', () => {
  it('reads metric,filter keys, stderrs, groups and metadata', () => {
    const r = parseLmEvalResults(read('results-base.json'));
    expect(Object.keys(r.results.gsm8k?.metrics ?? {})).toEqual([
      'exact_match,strict-match',
      'exact_match,flexible-extract',
    ]);
    expect(r.results.gsm8k?.metrics['exact_match,flexible-extract']).toEqual({
      value: 442 / 1319,
      stderr: 0.013001948176422947,
    });
    expect(r.results.gsm8k?.sampleLen).toBe(1319);
    expect(r.results.mmlu_college_computer_science?.alias).toBe('college_computer_science');
    expect(r.results.mmlu?.isGroup).toBe(true);
    expect(r.results.mmlu?.sampleCount).toEqual({ 'acc,none': 14042 });
    expect(Object.keys(r.groups)).toEqual([
      'mmlu',
      'mmlu_stem',
      'mmlu_other',
      'mmlu_social_sciences',
      'mmlu_humanities',
    ]);
    expect(r.groupSubtasks.mmlu).toEqual([
      'mmlu_stem',
      'mmlu_other',
      'mmlu_social_sciences',
      'mmlu_humanities',
    ]);
    expect(r.versions.gsm8k).toBe(3);
    expect(r.versions.mmlu).toBe('2');
    expect(r.nShot.gsm8k).toBe(5);
    expect(r.higherIsBetter.hellaswag).toEqual({ acc: true, acc_norm: true });
    expect(r.nSamples.hellaswag).toEqual({ original: 10042, effective: 10042 });
    expect(r.config?.bootstrap_iters).toBe(100000);
    expect(r.meta.model_name).toBe('meta-llama/Llama-3.2-1B');
    expect(r.meta.total_evaluation_time_seconds).toBe('3030.0412931442261');
  });

  it('reads "N/A" stderrs (bootstrap_iters=0)', () => {
    const r = parseLmEvalResults(read('results-bootstrap0.json'));
    expect(r.results.hellaswag?.metrics['acc_norm,none']?.stderr).toBe('N/A');
    expect(r.results.mmlu?.metrics['acc,none']?.stderr).toBe('N/A');
  });

  it('tolerates unknown fields and older files without name/sample_len', () => {
    const text = JSON.stringify({
      results: {
        hellaswag: { alias: 'hellaswag', 'acc,none': 0.5, 'acc_stderr,none': 0.01, shiny: [1] },
      },
      group_subtasks: { hellaswag: [] },
      brand_new_field: { x: 1 },
    });
    const r = parseLmEvalResults(text);
    expect(r.results.hellaswag?.extra).toEqual({ shiny: [1] });
    expect(r.results.hellaswag?.name).toBe('hellaswag');
    expect(r.meta.brand_new_field).toEqual({ x: 1 });
    expect(JSON.parse(toLmEvalResults(r)).results.hellaswag).toEqual({
      alias: 'hellaswag',
      'acc,none': 0.5,
      'acc_stderr,none': 0.01,
      shiny: [1],
    });
  });

  it('errors name the JSON path, what was expected and what came', () => {
    expect(() =>
      parseLmEvalResults('{"results": {"gsm8k": {"exact_match,none": "high"}}}'),
    ).toThrow(
      '[@qlora/metrics] lm-eval results at $.results.gsm8k["exact_match,none"]: expected a number, got "high"',
    );
    expect(() =>
      parseLmEvalResults('{"results": {"a": {"acc,none": 0.5, "acc_stderr,none": true}}}'),
    ).toThrow(/\$\.results\.a\["acc_stderr,none"\]: expected a number or "N\/A", got true/);
    expect(() =>
      parseLmEvalResults('{"results": {}, "n-samples": {"a": {"original": 1.5, "effective": 1}}}'),
    ).toThrow(/\$\["n-samples"\]\.a\.original: expected an integer, got 1\.5/);
    expect(() => parseLmEvalResults('{"samples": []}')).toThrow(
      /\$\.results: expected a "results" object, got undefined/,
    );
    expect(() => parseLmEvalResults('{"results": {')).toThrow(/JSON text at offset 13/);
  });
});

describe('toLmEvalResults', () => {
  it.each(FILES)('round-trips %s byte for byte (keys, order, Python floats, non-ASCII)', (name) => {
    const text = read(name);
    expect(toLmEvalResults(parseLmEvalResults(text))).toBe(text);
  });

  it('round-trips the schema from a JSON.parse object too (values and key order)', () => {
    const text = read('results-ft.json');
    const again = JSON.parse(toLmEvalResults(parseLmEvalResults(JSON.parse(text) as object)));
    const orig = JSON.parse(text);
    expect(again).toEqual(orig);
    expect(Object.keys(again)).toEqual(Object.keys(orig));
    expect(Object.keys(again.results.gsm8k)).toEqual(Object.keys(orig.results.gsm8k));
    expect(Object.keys(again.results.mmlu)).toEqual(Object.keys(orig.results.mmlu));
  });

  it('writes a fresh run like lm-eval: groups aggregated over leaves with the pooled stderr', () => {
    const base = parseLmEvalResults(read('results-base.json'));
    const leafNames = Object.keys(base.results).filter((k) => !base.results[k]?.isGroup);
    const input: LmEvalResultsInput = {
      tasks: Object.fromEntries(
        leafNames.map((k) => {
          const e = base.results[k];
          return [
            k,
            {
              alias: e?.alias,
              sampleLen: e?.sampleLen,
              metrics: e?.metrics ?? {},
              config: base.configs[k],
              version: base.versions[k] as number,
              numFewshot: base.nShot[k],
              higherIsBetter: base.higherIsBetter[k],
              nSamples: base.nSamples[k],
            },
          ];
        }),
      ),
      groups: {
        mmlu: {
          subtasks: base.groupSubtasks.mmlu ?? [],
          aggregate: [{ metric: 'acc' }],
          version: '2',
        },
        ...Object.fromEntries(
          ['mmlu_stem', 'mmlu_other', 'mmlu_social_sciences', 'mmlu_humanities'].map((g) => [
            g,
            { subtasks: base.groupSubtasks[g] ?? [], aggregate: [{ metric: 'acc' }], version: '2' },
          ]),
        ),
      },
      model: {
        name: 'meta-llama/Llama-3.2-1B',
        source: 'hf',
        args: { pretrained: 'meta-llama/Llama-3.2-1B', dtype: 'bfloat16' },
      },
      config: base.config,
      timing: { date: 1777023202.3612823, totalEvaluationTimeSeconds: '3030.0412931442261' },
    };
    const built = buildLmEvalResults(input);
    const want = JSON.parse(read('results-base.json'));
    const got = JSON.parse(toLmEvalResults(input));
    // Same section order and the same results/groups (bottom-up group order, pooled stderr).
    expect(Object.keys(got).slice(0, 9)).toEqual(Object.keys(want).slice(0, 9));
    expect(Object.keys(got.results)).toEqual(Object.keys(want.results));
    for (const g of Object.keys(want.groups)) {
      expect(Object.keys(got.results[g])).toEqual(Object.keys(want.results[g]));
      expect(got.results[g]['acc,none']).toBe(want.results[g]['acc,none']);
      expect(
        Math.abs(got.results[g]['acc_stderr,none'] - want.results[g]['acc_stderr,none']),
      ).toBeLessThan(1e-17);
    }
    expect(got.versions).toEqual(want.versions);
    expect(got['n-shot']).toEqual(want['n-shot']);
    expect(got.higher_is_better).toEqual(want.higher_is_better);
    expect(got.configs).toEqual(want.configs);
    expect(got.model_name_sanitized).toBe('meta-llama__Llama-3.2-1B');
    expect(built.results.mmlu?.sampleLen).toBe(14042);
    // A version 3 number is written as the float 3.0, as lm-eval does.
    expect(toLmEvalResults(input)).toContain('"gsm8k": 3.0');
  });

  it('writes "N/A" for a group with an "N/A" leaf and for NaN/null stderrs', () => {
    const text = toLmEvalResults({
      tasks: {
        a: {
          metrics: { 'acc,none': { value: 0.5, stderr: Number.NaN } },
          nSamples: { original: 2, effective: 2 },
        },
        b: {
          metrics: { 'acc,none': { value: 1, stderr: 0 } },
          nSamples: { original: 3, effective: 3 },
        },
      },
      groups: { g: { subtasks: ['a', 'b'], aggregate: [{ metric: 'acc' }] } },
    });
    const doc = JSON.parse(text);
    expect(doc.results.a['acc_stderr,none']).toBe('N/A');
    expect(doc.results.g).toEqual({
      alias: 'g',
      name: 'g',
      sample_len: 5,
      'acc,none': 0.8,
      'acc_stderr,none': 'N/A',
      sample_count: { 'acc,none': 5 },
    });
    expect(text).toContain('"acc,none": 1.0');
  });
});

describe('toLmEvalSampleLine', () => {
  const lines = read('samples-lines.jsonl')
    .split('\n')
    .filter((l) => l !== '');
  const rows = lines.map((l) => JSON.parse(l));

  it('writes hellaswag and gsm8k rows exactly as lm-eval (fields, order, hashes, stringified resps)', () => {
    const hs = rows[0];
    const hsLine = toLmEvalSampleLine({
      docId: 0,
      doc: hs.doc,
      target: 3,
      arguments: hs.doc.choices.map((c: string) => [hs.doc.query, ` ${c}`]),
      resps: [[[-35.125, false]], [[-21.5, false]], [[-27.75, false]], [[-14.0625, false]]],
      filteredResps: [
        [-35.125, false],
        [-21.5, false],
        [-27.75, false],
        [-14.0625, false],
      ],
      filter: 'none',
      metrics: { acc: 1, acc_norm: 1 },
    });
    expect(hsLine).toBe(lines[0]);
    for (const i of [1, 2]) {
      const r = rows[i];
      const line = toLmEvalSampleLine({
        docId: r.doc_id,
        doc: r.doc,
        target: r.target,
        arguments: [
          [
            r.arguments.gen_args_0.arg_0,
            { until: ['Question:', '</s>', '<|im_end|>'], do_sample: false, temperature: 0 },
          ],
        ],
        resps: r.resps,
        filteredResps: r.filtered_resps,
        filter: r.filter,
        metrics: { exact_match: r.exact_match },
      });
      expect(line).toBe(lines[i]);
    }
  });
});

describe('Python JSON and hashing helpers', () => {
  it('formats floats like Python repr', () => {
    const cases: [number, string][] = [
      [1, '1.0'],
      [0.1, '0.1'],
      [1e-4, '0.0001'],
      [1e-5, '1e-05'],
      [1.5e-7, '1.5e-07'],
      [1e15, '1000000000000000.0'],
      [1e16, '1e+16'],
      [1.2345e22, '1.2345e+22'],
      [-0, '-0.0'],
      [-3030.04, '-3030.04'],
      [0.013001948176422947, '0.013001948176422947'],
      [Number.NaN, 'NaN'],
    ];
    for (const [x, want] of cases) expect(formatPythonFloat(x)).toBe(want);
  });

  test.prop([fc.double({ noNaN: true, noDefaultInfinity: true })], { seed: 20260525 })(
    'Python float text parses back to the same number',
    (x) => {
      expect(Number(formatPythonFloat(x))).toBe(x);
    },
  );

  it('keeps int vs float literals through parse → stringify', () => {
    const text = '{"a": 1, "b": 1.0, "c": [2, 2.0, 1e-05], "d": NaN}';
    expect(stringifyPythonJson(parsePythonJson(text))).toBe(text);
  });

  it('sha256 matches node:crypto on ASCII and non-ASCII text', () => {
    for (const s of ['', 'abc', 'Janet’s ducks', 'x'.repeat(1000), '😀 naïve']) {
      expect(sha256Hex(s)).toBe(createHash('sha256').update(s, 'utf8').digest('hex'));
    }
  });
});
