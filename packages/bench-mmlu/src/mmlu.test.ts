import { readFileSync } from 'node:fs';
import {
  createDeterministicLanguageModel,
  evaluate,
  formatPythonFloat,
  formatSampleLine,
  sha256Hex,
} from '@qlora/bench-core';
import { type LmEvalResults, toLmEvalResults } from '@qlora/metrics';
import { fixturePath, sharedDataPath } from '@qlora/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BenchMmluError,
  buildMmluPrompt,
  loadMmluCsvDocs,
  loadMmluParquetDocs,
  MMLU_CS_SUBJECTS,
  type MmluDoc,
  mmluDocToText,
  mmluTask,
  runMmlu,
} from './index';

interface SubjectFixture {
  count: number;
  requestSha256: string[];
  requestSha256FiveShot: string[];
  exampleContext: string;
  exampleContextFiveShot: string;
  acc: string;
  results: Record<string, string>;
  taskHash: string;
  sampleLines: string[];
  samplesFileSha256: string;
}
const fixture = JSON.parse(readFileSync(fixturePath('bench', 'mmlu.json'), 'utf8')) as {
  subjects: Record<string, SubjectFixture>;
  group: { 'acc,none': string; 'acc_stderr,none': string; sample_len: number };
};
const goldenResults = (
  JSON.parse(readFileSync(fixturePath('bench', 'results.json'), 'utf8')) as Record<string, string>
).mmlu;

/** Our results file with the sections lm-eval fills from its own config dump and environment emptied. */
function comparableResultsJson(results: LmEvalResults): string {
  return toLmEvalResults({ ...results, configs: {}, config: undefined, meta: {} });
}

const digest = (context: string): string =>
  sha256Hex([context, ' A', ' B', ' C', ' D'].join('\u0000'));

describe('prompt', () => {
  it('renders the description, stripped question, verbatim choices and Answer:', () => {
    const doc: MmluDoc = {
      question: '  2+2?\n',
      subject: 'college_computer_science',
      choices: [' 3', '4', '5', '6 '],
      answer: 1,
    };
    expect(buildMmluPrompt(doc)).toBe(
      'The following are multiple choice questions (with answers) about college computer science.\n\n2+2?\nA.  3\nB. 4\nC. 5\nD. 6 \nAnswer:',
    );
    expect(buildMmluPrompt(doc, { fewshot: [doc], numFewshot: 1 })).toContain(
      'D. 6 \nAnswer: B\n\n2+2?',
    );
    expect(() => buildMmluPrompt(doc, { numFewshot: 1 })).toThrow(BenchMmluError);
    expect(() => mmluDocToText({ question: 'q', choices: ['a'] })).toThrow(/4 choices/);
    expect(Object.values(MMLU_CS_SUBJECTS).reduce((a, b) => a + b, 0)).toBe(412);
  });
});

describe('parity with lm-eval v0.4.12 on the four CS subjects', () => {
  const test: Record<string, MmluDoc[]> = {};
  const dev: Record<string, MmluDoc[]> = {};
  beforeAll(async () => {
    for (const subject of Object.keys(MMLU_CS_SUBJECTS)) {
      test[subject] = await loadMmluCsvDocs(sharedDataPath('mmlu', 'test'), subject);
      dev[subject] = await loadMmluCsvDocs(sharedDataPath('mmlu', 'dev'), subject);
    }
  });

  it('builds every 0-shot and 5-shot prompt exactly', () => {
    for (const [subject, size] of Object.entries(MMLU_CS_SUBJECTS)) {
      const expected = fixture.subjects[subject]!;
      const docs = test[subject]!;
      expect(docs.length).toBe(size);
      const zero = docs.map((d) => buildMmluPrompt(d, { subject }));
      const five = docs.map((d) =>
        buildMmluPrompt(d, { subject, fewshot: dev[subject]!, numFewshot: 5 }),
      );
      expect(zero[0]).toBe(expected.exampleContext);
      expect(five[0]).toBe(expected.exampleContextFiveShot);
      expect(zero.map(digest)).toEqual(expected.requestSha256);
      expect(five.map(digest)).toEqual(expected.requestSha256FiveShot);
    }
  });

  it('scores acc per question, per subject and for the size-weighted group like lm-eval', async () => {
    const lm = createDeterministicLanguageModel();
    const { results, samples, evaluations, resultsJson } = await runMmlu(lm, test);
    for (const subject of Object.keys(MMLU_CS_SUBJECTS)) {
      const expected = fixture.subjects[subject]!;
      const name = `mmlu_${subject}`;
      expect(evaluations[name]!.metricValues['acc,none']!.join('')).toBe(expected.acc);
      const m = results.results[name]!.metrics['acc,none']!;
      expect(formatPythonFloat(m.value)).toBe(expected.results['acc,none']);
      expect(formatPythonFloat(m.stderr as number)).toBe(expected.results['acc_stderr,none']);
      expect(evaluations[name]!.taskHash).toBe(expected.taskHash);
      expect(formatSampleLine(samples[name]![0]!)).toBe(expected.sampleLines[0]);
      const jsonl = samples[name]!.map((s) => `${formatSampleLine(s)}\n`).join('');
      expect(sha256Hex(jsonl)).toBe(expected.samplesFileSha256);
    }
    const group = results.results.mmlu_cs!;
    expect(formatPythonFloat(group.metrics['acc,none']!.value)).toBe(fixture.group['acc,none']);
    expect(formatPythonFloat(group.metrics['acc,none']!.stderr as number)).toBe(
      fixture.group['acc_stderr,none'],
    );
    expect(group.sampleLen).toBe(412);
    expect(resultsJson).toContain('"mmlu_cs": [');
    expect(comparableResultsJson(results)).toBe(goldenResults);
  });

  it('evaluates 5-shot with the first dev docs', async () => {
    const subject = 'machine_learning';
    const run = await evaluate(
      createDeterministicLanguageModel(),
      mmluTask(subject, { fewshotDocs: dev[subject]!, numFewshot: 5 }),
      test[subject]!,
    );
    expect(run.samples.map((s) => digest(s.arguments.gen_args_0!.arg_0 as string))).toEqual(
      fixture.subjects[subject]!.requestSha256FiveShot,
    );
    expect(() => mmluTask(subject, { numFewshot: 5 })).toThrow(/numFewshot/);
  });
});

describe('cais/mmlu parquet loader', () => {
  it('reads rows as written by pyarrow (datasets fixture) and filters by subject', async () => {
    const expected = (
      JSON.parse(readFileSync(fixturePath('datasets', 'parquet_expected.json'), 'utf8')) as {
        mmlu: { rows: MmluDoc[] };
      }
    ).mmlu.rows;
    const path = fixturePath('datasets', 'synthetic_mmlu.parquet');
    expect(await loadMmluParquetDocs(path)).toEqual(expected);
    const logic = await loadMmluParquetDocs(path, { subject: 'synthetic_logic' });
    expect(logic).toEqual(expected.filter((d) => d.subject === 'synthetic_logic'));
    expect(buildMmluPrompt(logic[0]!)).toContain('about synthetic logic.\n\nSynthetic item 0');
    await expect(loadMmluParquetDocs(path, { subject: 'machine_learnin' })).rejects.toThrow(
      BenchMmluError,
    );
  });
});
