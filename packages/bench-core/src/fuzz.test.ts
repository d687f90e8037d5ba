// Issue 11 fuzzing and limits for the runner: mutated JSONL request caches end only in
// BenchCoreError and never lose a complete line; empty doc lists and empty continuations get a
// clear error. CI runs the base counts; QLORA_FUZZ_RUNS multiplies them (tools/fuzz/run.ts).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { expectTypedAsync, FUZZ_SEED, fuzzRuns, mutatedBytesArb } from '../../../tools/fuzz/mutate';
import { BenchCoreError } from './errors';
import { createDeterministicLanguageModel } from './fake-model';
import { openJsonlRequestCache } from './jsonl-cache';
import { pythonRstrip, pythonStrip } from './python-text';
import { evaluate } from './runner';
import { defineTask } from './task';

const TYPED = [BenchCoreError] as const;
const temp = mkdtempSync(join(tmpdir(), 'bench-core-fuzz-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const cacheSeed = new TextEncoder().encode(
  [
    { key: 'a'.repeat(64), value: { logprob: -1.25, isGreedy: false } },
    { key: 'b'.repeat(64), value: ' 42\n\nQuestion:' },
    { key: 'c'.repeat(64), value: { logprob: -0.5, isGreedy: true } },
  ]
    .map((e) => `${JSON.stringify(e)}\n`)
    .join(''),
);

describe('fuzz: openJsonlRequestCache', () => {
  it(`mutated cache files load or fail typed, and appends stay parseable, ${fuzzRuns(400)} cases`, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedBytesArb([cacheSeed]), async (bytes) => {
        const path = join(temp, `${n++}.jsonl`);
        writeFileSync(path, bytes);
        const outcome = await expectTypedAsync(TYPED, async () => {
          const cache = await openJsonlRequestCache(path);
          await cache.set('z'.repeat(64), 'appended');
          await cache.flush();
        });
        if (outcome === 'ok') {
          // the torn tail was cut on a line boundary: the file reopens with the new entry
          const again = await openJsonlRequestCache(path);
          expect(again.get('z'.repeat(64))).toBe('appended');
        }
        rmSync(path);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(400) },
    );
  });
});

describe('regressions found by fuzzing', () => {
  it('a cache line "null" is a BenchCoreError (was a TypeError reading .key of null)', async () => {
    const path = join(temp, 'null.jsonl');
    writeFileSync(path, 'null\n');
    await expect(openJsonlRequestCache(path)).rejects.toMatchObject({ code: 'E_CACHE_LINE' });
  });

  it('an invalid UTF-8 byte before a torn last line does not shift the cut (bytes, not characters)', async () => {
    const path = join(temp, 'utf8.jsonl');
    const good = Buffer.from(`${JSON.stringify({ key: 'k', value: '\u00ff' })}\n`);
    // 0xff inside a JSON string decodes to U+FFFD (3 bytes): the old count kept 2 torn bytes
    const bad = Buffer.concat([
      Buffer.from('{"key":"x","value":"'),
      Buffer.of(0xff),
      Buffer.from('"}\n'),
    ]);
    writeFileSync(path, Buffer.concat([good, bad, Buffer.from('{"key":"torn","va')]));
    const cache = await openJsonlRequestCache(path);
    await cache.set('new', 1);
    await cache.flush();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines.at(-2)).toBe('{"key":"new","value":1}');
    expect((await openJsonlRequestCache(path)).get('new')).toBe(1);
  });

  it('a cache path inside a file is a BenchCoreError E_CACHE_IO', async () => {
    const file = join(temp, 'plain-file');
    writeFileSync(file, '');
    await expect(openJsonlRequestCache(join(file, 'cache.jsonl'))).rejects.toMatchObject({
      code: 'E_CACHE_IO',
    });
  });

  it.each([
    ['1 MB of spaces between letters', `x${' '.repeat(1 << 20)}x`],
    ['1 MB of spaces then a letter', `${' '.repeat(1 << 20)}x`],
  ])('pythonStrip / pythonRstrip on %s run in under 200 ms (was quadratic)', (_, text) => {
    const start = performance.now();
    expect(pythonStrip(text).length).toBeGreaterThan(0);
    expect(pythonRstrip(text).endsWith('x')).toBe(true);
    expect(performance.now() - start).toBeLessThan(200);
  });
});

describe('limits: empty inputs say what to change', () => {
  const task = defineTask<{ q: string; choices: string[] }>({
    name: 'toy',
    version: 1,
    outputType: 'multiple_choice',
    numFewshot: 0,
    docToRequests: (doc) =>
      doc.choices.map((c) => ({ kind: 'loglikelihood', context: doc.q, continuation: c })),
    docToTarget: () => 0,
    processResults: () => ({ acc: 1 }),
    aggregation: { acc: 'mean' },
    higherIsBetter: { acc: true },
  });
  const lm = createDeterministicLanguageModel();

  it('no docs, or limit 0: E_NO_DOCS naming the data path and limit', async () => {
    await expect(evaluate(lm, task, [])).rejects.toThrow(
      /expected at least one doc.*Hint: check the benchmark data path, or raise limit/s,
    );
    await expect(
      evaluate(lm, task, [{ q: 'Q', choices: [' a'] }], { limit: 0 }),
    ).rejects.toMatchObject({
      code: 'E_NO_DOCS',
    });
  });

  it('an empty continuation: E_TASK_REQUESTS naming the doc, before any model call (lm-eval asserts)', async () => {
    let calls = 0;
    const counting = {
      ...lm,
      loglikelihood: (...args: Parameters<typeof lm.loglikelihood>) => {
        calls++;
        return lm.loglikelihood(...args);
      },
    };
    await expect(
      evaluate(counting, task, [
        { q: 'Q', choices: [' a'] },
        { q: 'Q2', choices: [' b', ''] },
      ]),
    ).rejects.toThrow(/toy doc 1: expected a non-empty loglikelihood continuation/);
    expect(calls).toBe(0);
  });
});
