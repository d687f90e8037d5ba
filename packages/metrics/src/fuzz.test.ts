// Issue 11 fuzzing: mutated lm-eval results files (and random JSON) given to parseLmEvalResults
// end only in MetricsError, quickly; what parses is written back and read again. CI runs the
// base counts; QLORA_FUZZ_RUNS multiplies them (tools/fuzz/run.ts runs ≥ 10,000).

import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expectTyped,
  FUZZ_SEED,
  fuzzRuns,
  mutatedJsonArb,
  mutatedJsonBytesArb,
} from '../../../tools/fuzz/mutate';
import { MetricsError } from './errors';
import { parseLmEvalResults, toLmEvalResults } from './lm-eval-results';

const TYPED = [MetricsError] as const;
const seedTexts = ['results-base.json', 'results-ft.json', 'results-bootstrap0.json'].map((f) =>
  readFileSync(fixturePath('metrics', f), 'utf8'),
);
/** Each section cut to its first 3 entries: the same shapes, 20× fewer bytes per case. */
function trimmed(results: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(results)) {
    const isSection = value !== null && typeof value === 'object' && !Array.isArray(value);
    out[key] =
      isSection && key !== 'config'
        ? Object.fromEntries(Object.entries(value as object).slice(0, 3))
        : value;
  }
  return out;
}
const seeds = seedTexts.map((t) => trimmed(JSON.parse(t)));
const lenient = new TextDecoder('utf-8');

/** Parse; whatever parses must be writable and read back (the compare/report path). */
function parseWriteReparse(input: string | object): void {
  const parsed = parseLmEvalResults(input);
  parseLmEvalResults(toLmEvalResults(parsed));
}

describe('fuzz: parseLmEvalResults', () => {
  it(`mutated results files as text (bytes, structure, invalid UTF-8), ${fuzzRuns(1000)} cases`, () => {
    fc.assert(
      fc.property(mutatedJsonBytesArb(seeds), (bytes) => {
        expectTyped(TYPED, () => parseWriteReparse(lenient.decode(bytes)));
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
    );
  });

  it(`mutated results files as parsed objects, ${fuzzRuns(600)} cases`, () => {
    fc.assert(
      fc.property(mutatedJsonArb(seeds), (value) => {
        expectTyped(TYPED, () => parseWriteReparse(value as object));
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(600) },
    );
  });

  it(`random JSON and random text, ${fuzzRuns(500)} cases`, () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string({ unit: 'binary' })), (text) => {
        expectTyped(TYPED, () => parseWriteReparse(text));
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(500) },
    );
  });
});

describe('regressions found by fuzzing', () => {
  it('nesting 100,000 deep is a MetricsError, not a stack overflow (input "[" × 100000)', () => {
    expect(() => parseLmEvalResults('['.repeat(100_000))).toThrow(/nesting of at most 512/);
  });

  it.each([
    ['a bad escape', '{"results": {"a\\x": 1}}'],
    ['a raw control character', '{"results": {"a\u0001": 1}}'],
    ['a lone backslash at the end', '{"results": {"a\\'],
  ])('%s in a string is a MetricsError (was a SyntaxError)', (_, text) => {
    expect(() => parseLmEvalResults(text)).toThrow(MetricsError);
  });

  it('a task named "__proto__" is kept as a task, not made the prototype of results', () => {
    const parsed = parseLmEvalResults(
      '{"results": {"__proto__": {"acc,none": 0.5, "__proto__": 1}}, "__proto__": {"polluted": 1}}',
    );
    expect(Object.keys(parsed.results)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(parsed.results)).toBe(Object.prototype);
    expect(Object.keys(parsed.meta)).toEqual(['__proto__']);
    expect((parsed.meta as { polluted?: unknown }).polluted).toBeUndefined();
    const task = Object.getOwnPropertyDescriptor(parsed.results, '__proto__')?.value;
    expect(task?.metrics['acc,none']).toEqual({ value: 0.5 });
  });
});
