import { readFileSync } from 'node:fs';
import {
  createDeterministicLanguageModel,
  createMemoryCache,
  evaluate,
  formatPythonFloat,
  formatSampleLine,
  sha256Hex,
} from '@qlora/bench-core';
import type { HellaswagRaw } from '@qlora/datasets';
import { type LmEvalResults, toLmEvalResults } from '@qlora/metrics';
import { fixturePath, sharedDataPath } from '@qlora/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BenchHellaswagError,
  type HellaswagDoc,
  hellaswagTask,
  loadHellaswagDocs,
  preprocessHellaswagText,
  processHellaswagDoc,
  processPreprocessedHellaswagDoc,
  pythonCapitalize,
  runHellaswag,
} from './index';

interface Fixture {
  count: number;
  requestSha256: string[];
  examples: { doc: Record<string, unknown>; context: string; continuations: string[] }[];
  acc: string;
  accNorm: string;
  results: Record<string, string>;
  taskHash: string;
  sampleLines: string[];
  kshot: {
    numFewshot: number;
    trainRange: [number, number];
    evalRange: [number, number];
    requestSha256: string[];
    exampleContext: string;
  };
  kshotSelf: { numFewshot: number; range: [number, number]; requestSha256: string[] };
  samplesFileSha256: string;
}

const fixture = JSON.parse(readFileSync(fixturePath('bench', 'hellaswag.json'), 'utf8')) as Fixture;
const goldenResults = (
  JSON.parse(readFileSync(fixturePath('bench', 'results.json'), 'utf8')) as Record<string, string>
).hellaswag;

/** Our results file with the sections lm-eval fills from its own config dump and environment emptied. */
function comparableResultsJson(results: LmEvalResults): string {
  return toLmEvalResults({ ...results, configs: {}, config: undefined, meta: {} });
}

const RAW_PATH = sharedDataPath('hellaswag', 'hellaswag_val_raw_subset1000.jsonl');
// The raw file's own key order, as the reference saw it (doc_hash depends on key order).
const rawInFileOrder = (): HellaswagRaw[] =>
  readFileSync(RAW_PATH, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as HellaswagRaw);

const digest = (context: string, continuations: readonly string[]): string =>
  sha256Hex([context, ...continuations].join('\u0000'));

describe('process_docs', () => {
  it('matches the spec example and Python capitalize', () => {
    const doc = processHellaswagDoc({
      activity_label: 'Home and Garden',
      ctx_a: '[header] How to clean a grill [title] Heat the grill.',
      ctx_b: 'THEN scrape it',
      endings: ['[step] Use a brush.', 'a  b   c', ' x [title] y ', '[a]\n[b]'],
      label: '2',
    });
    expect(doc.query).toBe('Home and Garden: How to clean a grill. Heat the grill. Then scrape it');
    expect(doc.choices).toEqual([' Use a brush.', 'a b  c', 'x. y', '\n']);
    expect(doc.gold).toBe(2);
    const vectors = JSON.parse(
      readFileSync(fixturePath('bench-core', 'python-text.json'), 'utf8'),
    ) as { capitalize: [string, string][] };
    for (const [input, output] of vectors.capitalize) expect(pythonCapitalize(input)).toBe(output);
    expect(preprocessHellaswagText('[a\rb] kept')).toBe(' kept');
  });

  it('handles the preprocessed variant and rejects missing labels', () => {
    const doc = processPreprocessedHellaswagDoc({
      idx: 0,
      activity_label: 'Roof shingle removal',
      ctx: 'A man is sitting on a roof. he',
      endings: ['a', 'b', 'c', 'd'],
      label: 3,
    });
    expect(doc.query).toBe('Roof shingle removal: A man is sitting on a roof. he');
    expect(() =>
      processHellaswagDoc({ activity_label: 'x', ctx_a: 'a', ctx_b: 'b', endings: [], label: '' }),
    ).toThrow(BenchHellaswagError);
  });
});

describe('parity with lm-eval v0.4.12 on the 1000 raw records (tools/reference/lm_eval_prompts.py)', () => {
  let docs: HellaswagDoc[];
  beforeAll(async () => {
    docs = await loadHellaswagDocs(RAW_PATH);
  });

  it('builds every context and continuation exactly', async () => {
    expect(docs.length).toBe(fixture.count);
    const run = await evaluate(createDeterministicLanguageModel(), hellaswagTask(), docs);
    const got = run.samples.map((s) =>
      digest(
        s.arguments.gen_args_0!.arg_0 as string,
        Object.values(s.arguments).map((a) => a.arg_1 as string),
      ),
    );
    const mismatches = got.flatMap((d, i) => (d === fixture.requestSha256[i] ? [] : [i]));
    expect(mismatches).toEqual([]);
    for (const [i, example] of fixture.examples.entries()) {
      expect(run.samples[i]!.arguments.gen_args_0!.arg_0).toBe(example.context);
    }
  });

  it('scores acc and acc_norm per sample, aggregates, hashes and writes samples like lm-eval', async () => {
    const lm = createDeterministicLanguageModel();
    const docsInFileOrder = rawInFileOrder().map(processHellaswagDoc);
    const { results, resultsJson, samples, evaluation } = await runHellaswag(lm, docsInFileOrder);
    const bits = (key: string) => evaluation.metricValues[key]!.map((v) => String(v)).join('');
    expect(bits('acc,none')).toBe(fixture.acc);
    expect(bits('acc_norm,none')).toBe(fixture.accNorm);
    const metrics = results.results.hellaswag!.metrics;
    for (const key of ['acc,none', 'acc_norm,none']) {
      const stderrKey = key.replace(',', '_stderr,');
      expect(formatPythonFloat(metrics[key]!.value)).toBe(fixture.results[key]);
      expect(formatPythonFloat(metrics[key]!.stderr as number)).toBe(fixture.results[stderrKey]);
    }
    expect(evaluation.taskHash).toBe(fixture.taskHash);
    expect(fixture.sampleLines.map((_, i) => formatSampleLine(samples[i]!))).toEqual(
      fixture.sampleLines,
    );
    const jsonl = samples.map((s) => `${formatSampleLine(s)}\n`).join('');
    expect(sha256Hex(jsonl)).toBe(fixture.samplesFileSha256);
    expect(resultsJson).toBe(toLmEvalResults(results));
    expect(comparableResultsJson(results)).toBe(goldenResults);
    expect(resultsJson).toContain('"acc,none": 0.238');
  });

  it('draws k-shot contexts with the k+1 rule and seed 1234', async () => {
    const raw = rawInFileOrder().map(processHellaswagDoc);
    const { numFewshot, trainRange, evalRange } = fixture.kshot;
    const task = hellaswagTask({ numFewshot, fewshotDocs: raw.slice(...trainRange) });
    const run = await evaluate(createDeterministicLanguageModel(), task, raw.slice(...evalRange));
    const got = run.samples.map((s) =>
      digest(
        s.arguments.gen_args_0!.arg_0 as string,
        Object.values(s.arguments).map((a) => a.arg_1 as string),
      ),
    );
    expect(run.samples[0]!.arguments.gen_args_0!.arg_0).toBe(fixture.kshot.exampleContext);
    expect(got).toEqual(fixture.kshot.requestSha256);
    expect(() => hellaswagTask({ numFewshot: 3 })).toThrow(/fewshotDocs/);
  });

  it('drops the evaluated doc from k+1 draws when the pool holds it', async () => {
    const raw = rawInFileOrder().map(processHellaswagDoc);
    const { numFewshot, range } = fixture.kshotSelf;
    const pool = raw.slice(...range);
    const run = await evaluate(
      createDeterministicLanguageModel(),
      hellaswagTask({ numFewshot, fewshotDocs: pool }),
      pool,
    );
    const got = run.samples.map((s) =>
      digest(
        s.arguments.gen_args_0!.arg_0 as string,
        Object.values(s.arguments).map((a) => a.arg_1 as string),
      ),
    );
    expect(got).toEqual(fixture.kshotSelf.requestSha256);
  });

  it('resumes from a cache without asking the model again', async () => {
    const cache = createMemoryCache();
    let calls = 0;
    const base = createDeterministicLanguageModel();
    const counting = {
      ...base,
      loglikelihood: (reqs: Parameters<typeof base.loglikelihood>[0]) => {
        calls += reqs.length;
        return base.loglikelihood(reqs);
      },
    };
    const first = await evaluate(counting, hellaswagTask(), docs.slice(0, 50), {
      cache,
      batchSize: 16,
    });
    expect(calls).toBe(200);
    const second = await evaluate(counting, hellaswagTask(), docs.slice(0, 50), { cache });
    expect(calls).toBe(200);
    expect(second.requestCount).toEqual({ total: 200, fromCache: 200 });
    expect(second.metricValues).toEqual(first.metricValues);
  });
});

describe('acc_norm', () => {
  it('divides by code points, not UTF-16 units or bytes', () => {
    const doc = processHellaswagDoc({
      activity_label: 'a',
      ctx_a: 'b',
      ctx_b: 'c',
      endings: ['😀😀', 'abc', 'x', 'y'],
      label: 1,
    });
    const scores = [-10, -10.5, -100, -100].map((logprob) => ({ logprob, isGreedy: false }));
    // per code point: -5, -3.5 → choice 1; per UTF-16 unit it would be -2.5 → choice 0.
    expect(hellaswagTask().processResults(doc, scores)).toEqual({ acc: 0, acc_norm: 1 });
  });
});

describe('label type', () => {
  it('keeps number labels for jsonl and string labels on request (Rowan/hellaswag)', async () => {
    const asNumber = await loadHellaswagDocs(RAW_PATH, { limit: 2 });
    const asString = await loadHellaswagDocs(RAW_PATH, { limit: 2, labelType: 'string' });
    expect(asNumber[0]!.label).toBe(3);
    expect(asString[0]!.label).toBe('3');
    const lm = createDeterministicLanguageModel();
    const a = await evaluate(lm, hellaswagTask(), asNumber);
    const b = await evaluate(lm, hellaswagTask(), asString);
    expect(b.samples[0]!.target).toBe('3');
    expect(b.metricValues).toEqual(a.metricValues);
    expect(b.samples[0]!.doc_hash).not.toBe(a.samples[0]!.doc_hash);
  });
});

describe('preprocessed 10042-doc variant', () => {
  it('loads and builds 4 requests per doc', async () => {
    const docs = await loadHellaswagDocs(
      sharedDataPath('hellaswag', 'hellaswag_val_preprocessed.jsonl'),
    );
    expect(docs.length).toBe(10042);
    expect(docs[0]!.query).toBe('Roof shingle removal: A man is sitting on a roof. he');
    const run = await evaluate(createDeterministicLanguageModel(), hellaswagTask(), docs, {
      limit: 20,
    });
    expect(run.nSamples).toEqual({ original: 10042, effective: 20 });
    expect(Object.keys(run.samples[0]!.arguments)).toHaveLength(4);
  });
});
