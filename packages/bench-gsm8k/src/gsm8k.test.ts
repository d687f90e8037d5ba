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
  buildGsm8kPrompts,
  exactMatch,
  GSM8K_FLEXIBLE_EXTRACT,
  GSM8K_REGEXES_TO_IGNORE,
  GSM8K_STRICT_MATCH,
  type Gsm8kDoc,
  gsm8kTask,
  loadGsm8kDocs,
  runGsm8k,
} from './index';

interface Fixture {
  count: number;
  eosText: string;
  contextSha256: string[];
  examples: Record<string, string>;
  strict: string[];
  flexible: string[];
  emStrict: string;
  emFlexible: string;
  results: Record<string, string>;
  taskHash: string;
  sampleLines: string[];
  samplesFileSha256: string;
  hardOutputs: {
    text: string;
    'strict-match': [string, number];
    'flexible-extract': [string, number];
  }[];
  exactMatchGold: string;
}

const fixture = JSON.parse(readFileSync(fixturePath('bench', 'gsm8k.json'), 'utf8')) as Fixture;
const goldenResults = (
  JSON.parse(readFileSync(fixturePath('bench', 'results.json'), 'utf8')) as Record<string, string>
).gsm8k;

/** Our results file with the sections lm-eval fills from its own config dump and environment emptied. */
function comparableResultsJson(results: LmEvalResults): string {
  return toLmEvalResults({ ...results, configs: {}, config: undefined, meta: {} });
}

/** The reference script's fake generator (tools/reference/lm_eval_prompts.py), line for line. */
function fakeGeneration(answers: Map<string, string>) {
  return (context: string): string => {
    const u = Number.parseInt(sha256Hex(context).slice(0, 8), 16);
    const variant = u % 7;
    const n = Math.floor(u / 256) % 1000;
    const start = context.lastIndexOf('Question: ') + 'Question: '.length;
    const ans = answers.get(context.slice(start, context.lastIndexOf('\nAnswer:'))) ?? '0';
    return [
      ` Let me think.\n#### ${ans}\n\nQuestion: What is 2+2?\nAnswer: 4`,
      ` The answer is ${ans}.`,
      ` So the total is $${ans}.00 dollars.`,
      ' I do not know.',
      ` #### ${n}`,
      ` ${ans}</s>Question: junk`,
      ` First 12 apples, then ${ans} pears, and 3 left.`,
    ][variant]!;
  };
}

const GSM8K = { regexesToIgnore: GSM8K_REGEXES_TO_IGNORE, ignoreCase: true };

describe('filters and exact_match (lm-eval RegexFilter + exact_match_hf_evaluate outputs)', () => {
  it('reproduces the reference on hard outputs', () => {
    for (const row of fixture.hardOutputs) {
      for (const filter of [GSM8K_STRICT_MATCH, GSM8K_FLEXIBLE_EXTRACT]) {
        const [expected, em] = row[filter.name as 'strict-match'];
        const got = filter.apply(row.text, {});
        expect(got, `${filter.name} on ${JSON.stringify(row.text)}`).toBe(expected);
        expect(exactMatch(got, fixture.exactMatchGold, GSM8K)).toBe(em);
      }
    }
  });

  it('follows the spec examples', () => {
    expect(exactMatch('1,234', '#### 1234', GSM8K)).toBe(1);
    expect(exactMatch('$18.00', 'x\n#### 18', GSM8K)).toBe(0);
    expect(exactMatch('[invalid]', '#### 0', GSM8K)).toBe(0);
    expect(exactMatch('72', 'a #### b\n#### 72', GSM8K)).toBe(1);
    // Python's `$` also matches before a final newline.
    expect(exactMatch('5.\n', '#### 5\n', GSM8K)).toBe(1);
    expect(exactMatch('ABC', 'abc', { ignoreCase: false })).toBe(0);
    expect(exactMatch('a.b!', 'ab', { ignorePunctuation: true })).toBe(1);
  });
});

describe('parity with lm-eval v0.4.12 on the real test and train splits', () => {
  let test: Gsm8kDoc[];
  let train: Gsm8kDoc[];
  beforeAll(async () => {
    test = await loadGsm8kDocs(sharedDataPath('gsm8k', 'test.jsonl'));
    train = await loadGsm8kDocs(sharedDataPath('gsm8k', 'train.jsonl'));
  });

  it('builds all 1319 five-shot prompts exactly (seed 1234, one stream)', () => {
    const prompts = buildGsm8kPrompts(test, train, { numFewshot: 5, seed: 1234 });
    expect(prompts.length).toBe(fixture.count);
    const mismatches = prompts.flatMap((p, i) =>
      sha256Hex(p) === fixture.contextSha256[i] ? [] : [i],
    );
    expect(mismatches).toEqual([]);
    for (const [i, text] of Object.entries(fixture.examples)) expect(prompts[Number(i)]).toBe(text);
    // doc 0 takes train indices [6374, 3610, 957, 61, 742]
    expect(
      prompts[0]!.startsWith(
        `Question: ${train[6374]!.question}\nAnswer: ${train[6374]!.answer}\n\n`,
      ),
    ).toBe(true);
  });

  it('filters, scores, aggregates and writes samples like lm-eval (deterministic fake model)', async () => {
    const answers = new Map(test.map((d) => [d.question, d.answer.split('#### ').at(-1)!]));
    const lm = createDeterministicLanguageModel({ generate: fakeGeneration(answers) });
    const { results, samples, evaluation } = await runGsm8k(lm, test, {
      trainDocs: train,
      eosText: fixture.eosText,
    });
    const n = fixture.count;
    expect(samples.slice(0, n).map((s) => s.filtered_resps[0])).toEqual(fixture.strict);
    expect(samples.slice(n).map((s) => s.filtered_resps[0])).toEqual(fixture.flexible);
    expect(evaluation.metricValues['exact_match,strict-match']!.join('')).toBe(fixture.emStrict);
    expect(evaluation.metricValues['exact_match,flexible-extract']!.join('')).toBe(
      fixture.emFlexible,
    );
    const metrics = results.results.gsm8k!.metrics;
    for (const key of ['exact_match,strict-match', 'exact_match,flexible-extract']) {
      expect(formatPythonFloat(metrics[key]!.value)).toBe(fixture.results[key]);
      expect(formatPythonFloat(metrics[key]!.stderr as number)).toBe(
        fixture.results[key.replace(',', '_stderr,')],
      );
    }
    expect(evaluation.taskHash).toBe(fixture.taskHash);
    expect(formatSampleLine(samples[0]!)).toBe(fixture.sampleLines[0]);
    expect(formatSampleLine(samples[n]!)).toBe(fixture.sampleLines[1]);
    const jsonl = samples.map((s) => `${formatSampleLine(s)}\n`).join('');
    expect(sha256Hex(jsonl)).toBe(fixture.samplesFileSha256);
    expect(comparableResultsJson(results)).toBe(goldenResults);
  });

  it('sends the stop strings plus EOS and 256 max tokens', async () => {
    const seen: { until: string[]; maxGenTokens: number }[] = [];
    const lm = createDeterministicLanguageModel();
    const spy = {
      ...lm,
      generateUntil: (reqs: Parameters<typeof lm.generateUntil>[0]) => {
        seen.push(...reqs);
        return lm.generateUntil(reqs);
      },
    };
    const run = await evaluate(
      spy,
      gsm8kTask({ trainDocs: train, eosText: '<|end_of_text|>' }),
      test,
      { limit: 3 },
    );
    expect(seen[0]).toMatchObject({
      until: ['Question:', '</s>', '<|im_end|>', '<|end_of_text|>'],
      maxGenTokens: 256,
    });
    expect(run.samples[0]!.arguments.gen_args_0!.arg_1).toEqual({
      until: ['Question:', '</s>', '<|im_end|>'],
      do_sample: false,
      temperature: 0,
    });
    expect(() => gsm8kTask()).toThrow(/train docs/);
    expect(gsm8kTask({ numFewshot: 0 }).numFewshot).toBe(0);
  });
});
