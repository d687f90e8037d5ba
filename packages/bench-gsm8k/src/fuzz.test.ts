// Issue 11 fuzzing: GSM8K files (mutated jsonl) end only in DatasetsError or BenchGsm8kError;
// the answer filters and exact match run in linear time on hostile model output. CI runs the
// base counts; QLORA_FUZZ_RUNS multiplies them (tools/fuzz/run.ts runs ≥ 10,000).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetsError } from '@qlora/datasets';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  expectTyped,
  expectTypedAsync,
  FUZZ_SEED,
  fuzzRuns,
  HOSTILE_SNIPPETS,
  mutatedBytesArb,
} from '../../../tools/fuzz/mutate';
import { BenchGsm8kError } from './errors';
import { exactMatch } from './exact-match';
import { loadGsm8kDocs } from './load';
import { GSM8K_FLEXIBLE_EXTRACT, GSM8K_STRICT_MATCH } from './task';

const TYPED = [DatasetsError, BenchGsm8kError] as const;
const temp = mkdtempSync(join(tmpdir(), 'gsm8k-fuzz-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const seed = new TextEncoder().encode(
  [
    {
      question:
        'Natalia sold clips to 48 of her friends in April, and then half as many in May. How many clips altogether?',
      answer:
        'Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72',
    },
    {
      question:
        'Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?',
      answer: 'Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\n#### 10',
    },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n'),
);

describe('fuzz: loadGsm8kDocs', () => {
  it(`mutated jsonl files, ${fuzzRuns(300)} cases`, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedBytesArb([seed]), async (bytes) => {
        const path = join(temp, `${n++}.jsonl`);
        writeFileSync(path, bytes);
        await expectTypedAsync(TYPED, () => loadGsm8kDocs(path));
        rmSync(path);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
    );
  });
});

describe('fuzz: answer extraction on hostile model output', () => {
  const outputArb = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc
      .array(
        fc.constantFrom(...HOSTILE_SNIPPETS, '#### ', '$', '1,234', '.', '-', '\n\n', 'Question:'),
        {
          maxLength: 30,
        },
      )
      .map((parts) => parts.join('')),
  );
  it(`strict-match, flexible-extract and exactMatch never throw, ${fuzzRuns(1000)} cases`, () => {
    fc.assert(
      fc.property(outputArb, fc.string({ maxLength: 10 }), (output, reference) => {
        expectTyped(
          TYPED,
          () => {
            for (const filter of [GSM8K_STRICT_MATCH, GSM8K_FLEXIBLE_EXTRACT]) {
              exactMatch(filter.apply(output, {}), reference);
            }
          },
          500,
        );
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
    );
  });

  it.each([
    ['1 MB of digits and commas', '1,'.repeat(1 << 19)],
    ['1 MB of "#### -"', '#### -'.repeat(1 << 17)],
    ['1 MB of spaces', ' '.repeat(1 << 20)],
  ])('%s is filtered in under 1 s', (_, output) => {
    const start = performance.now();
    GSM8K_STRICT_MATCH.apply(output, {});
    GSM8K_FLEXIBLE_EXTRACT.apply(output, {});
    expect(performance.now() - start).toBeLessThan(1000);
  });
});
