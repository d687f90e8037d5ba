import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMemoryCache } from './cache';
import { testLanguageModel } from './conformance';
import { BenchCoreError } from './errors';
import { createDeterministicLanguageModel } from './fake-model';
import { createRegexFilter, findallPython } from './filters';
import { openJsonlRequestCache } from './jsonl-cache';
import { argmax, cutAtStopStrings } from './python-text';
import { runTask } from './results';
import { type EvaluationProgress, evaluate } from './runner';
import { defineTask, type TaskDefinition } from './task';
import type { LanguageModel, LoglikelihoodRequest, LoglikelihoodResult } from './types';

interface ToyDoc {
  q: string;
  a: number;
}
const docs: ToyDoc[] = Array.from({ length: 10 }, (_, i) => ({ q: `Q${i}: pick `, a: i % 3 }));

const toyTask: TaskDefinition<ToyDoc> = defineTask<ToyDoc>({
  name: 'toy',
  version: 1,
  outputType: 'multiple_choice',
  numFewshot: 0,
  docToRequests: (doc) =>
    ['x', 'yy', 'zzz'].map((c) => ({
      kind: 'loglikelihood' as const,
      context: doc.q,
      continuation: c,
    })),
  docToTarget: (doc) => doc.a,
  processResults: (doc, rs) => ({
    acc: argmax(rs.map((r) => (r as LoglikelihoodResult).logprob)) === doc.a ? 1 : 0,
  }),
  aggregation: { acc: 'mean' },
  higherIsBetter: { acc: true },
});

function countingModel(failAfterCalls = Number.POSITIVE_INFINITY) {
  const base = createDeterministicLanguageModel();
  const seen: LoglikelihoodRequest[][] = [];
  const lm: LanguageModel = {
    ...base,
    async loglikelihood(requests) {
      if (seen.length >= failAfterCalls) throw new Error('GPU fell over');
      seen.push([...requests]);
      return base.loglikelihood(requests);
    },
  };
  return { lm, seen };
}

describe('evaluate', () => {
  it('applies limit, batches requests, reports progress and moves trailing whitespace', async () => {
    const { lm, seen } = countingModel();
    const progress: EvaluationProgress[] = [];
    const run = await evaluate(lm, toyTask, docs, {
      limit: 4,
      batchSize: 5,
      onProgress: (p) => progress.push(p),
    });
    expect(run.nSamples).toEqual({ original: 10, effective: 4 });
    expect(seen.map((b) => b.length)).toEqual([5, 5, 2]);
    expect(seen[0]![0]).toEqual({ context: 'Q0: pick', continuation: ' x' });
    expect(run.samples[0]!.arguments.gen_args_0).toEqual({ arg_0: 'Q0: pick ', arg_1: 'x' });
    expect(progress.map((p) => p.done)).toEqual([0, 5, 10, 12]);
    expect(run.samples[0]).toMatchObject({
      doc_id: 0,
      target: '0',
      filter: 'none',
      metrics: ['acc'],
    });
    expect(Object.keys(run.samples[0]!)).toEqual([
      'doc_id',
      'doc',
      'target',
      'arguments',
      'resps',
      'filtered_resps',
      'filter',
      'metrics',
      'doc_hash',
      'prompt_hash',
      'target_hash',
      'acc',
    ]);
    expect(run.samples[0]!.resps).toHaveLength(3);
    const fraction = await evaluate(lm, toyTask, docs, { limit: 0.25 });
    expect(fraction.nSamples).toEqual({ original: 10, effective: 3 });
    await expect(evaluate(lm, toyTask, docs, { limit: 2.5 })).rejects.toThrow(/limit/);
    expect((run.samples[0]!.resps[0] as string[][])[0]![1]).toMatch(/^(True|False)$/);
  });

  it('resumes an interrupted run from a JSONL cache, tolerating a truncated last line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-core-'));
    const path = join(dir, 'cache.jsonl');
    const crashing = countingModel(2);
    const cache = await openJsonlRequestCache(path);
    await expect(evaluate(crashing.lm, toyTask, docs, { cache, batchSize: 4 })).rejects.toThrow(
      'GPU fell over',
    );
    await cache.flush();
    // The process died mid-append: a partial JSON line at the end.
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"key":"abc","val`);
    const reopened = await openJsonlRequestCache(path);
    expect(reopened.size).toBe(8);
    const { lm, seen } = countingModel();
    const run = await evaluate(lm, toyTask, docs, { cache: reopened, batchSize: 4 });
    await reopened.flush();
    expect(run.requestCount).toEqual({ total: 30, fromCache: 8 });
    expect(seen.flat()).toHaveLength(22);
    const full = await evaluate(createDeterministicLanguageModel(), toyTask, docs);
    expect(run.metricValues).toEqual(full.metricValues);
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean)).toHaveLength(30);
    writeFileSync(path, 'not json\n{"key":"a","value":1}\n');
    await expect(openJsonlRequestCache(path)).rejects.toThrow(/cache\.jsonl:1/);
  });

  it('checks model results and options', async () => {
    const bad: LanguageModel = {
      loglikelihood: async () => [{ logprob: -1, isGreedy: true }],
      generateUntil: async () => [],
    };
    await expect(evaluate(bad, toyTask, docs)).rejects.toThrow(/expected 30 results, got 1/);
    const wrongType: LanguageModel = {
      loglikelihood: async (rs) => rs.map(() => ({ logprob: 'x', isGreedy: true }) as never),
      generateUntil: async () => [],
    };
    await expect(evaluate(wrongType, toyTask, docs)).rejects.toThrow(BenchCoreError);
    await expect(evaluate(bad, toyTask, docs, { batchSize: 0 })).rejects.toThrow(/batchSize/);
    const controller = new AbortController();
    controller.abort();
    await expect(
      evaluate(createDeterministicLanguageModel(), toyTask, docs, { signal: controller.signal }),
    ).rejects.toThrow(/aborted/);
  });

  it('reuses a memory cache and assembles lm-eval results', async () => {
    const cache = createMemoryCache();
    const first = await runTask(createDeterministicLanguageModel(), toyTask, docs, { cache });
    expect(cache.size).toBe(30);
    const { lm, seen } = countingModel();
    const second = await runTask(lm, toyTask, docs, { cache });
    expect(seen).toHaveLength(0);
    expect(second.results.results.toy!.metrics).toEqual(first.results.results.toy!.metrics);
    expect(second.resultsJson).toContain('"toy": 1.0');
    const single = await runTask(createDeterministicLanguageModel(), toyTask, docs, { limit: 1 });
    expect(single.results.results.toy!.metrics['acc,none']!.stderr).toBe('N/A');
  });
});

describe('filters and helpers', () => {
  it('finds like Python re.findall and filters like RegexFilter', () => {
    expect(findallPython(/\d/, 'a1b2')).toEqual(['1', '2']);
    expect(findallPython(/(\d)(x)?/, '1x2')).toEqual([
      ['1', 'x'],
      ['2', ''],
    ]);
    const f = createRegexFilter({ name: 'f', pattern: /(a)|(b)/, groupSelect: -1 });
    expect(f.apply('a b', {})).toBe('b');
    expect(createRegexFilter({ name: 'g', pattern: /z/ }).apply('a', {})).toBe('[invalid]');
    expect(() =>
      createRegexFilter({ name: 'h', pattern: /a/, groupSelect: 3 }).apply('a', {}),
    ).toThrow(BenchCoreError);
    expect(argmax([Number.NaN, 1])).toBe(0);
    expect(argmax([1, 3, 3])).toBe(1);
    expect(cutAtStopStrings('a</s>bQuestion:', ['Question:', '</s>'])).toBe('a');
  });

  it('testLanguageModel passes the fake and flags a broken model', async () => {
    expect(await testLanguageModel(createDeterministicLanguageModel())).toEqual({
      ok: true,
      failures: [],
    });
    const broken: LanguageModel = {
      loglikelihood: async (rs) =>
        rs.map((r) => ({ logprob: r.continuation.length, isGreedy: true })),
      generateUntil: async (rs) => rs.map(() => ' 4\nQuestion: next'),
    };
    const report = await testLanguageModel(broken);
    expect(report.ok).toBe(false);
    expect(report.failures.join('\n')).toMatch(/≤ 0[\s\S]*stop string/);
  });
});
