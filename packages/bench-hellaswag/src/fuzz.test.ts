// Issue 11 fuzzing: HellaSwag files (mutated jsonl) end only in DatasetsError or
// BenchHellaswagError, and text preprocessing is linear (no regex backtracking on hostile text).
// CI runs the base counts; QLORA_FUZZ_RUNS multiplies them (tools/fuzz/run.ts runs ≥ 10,000).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetsError } from '@qlora/datasets';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { expectTypedAsync, FUZZ_SEED, fuzzRuns, mutatedBytesArb } from '../../../tools/fuzz/mutate';
import { DATASET_SEEDS } from '../../../tools/fuzz/seeds';
import { BenchHellaswagError } from './errors';
import { loadHellaswagDocs } from './load';
import { preprocessHellaswagText } from './process';

const TYPED = [DatasetsError, BenchHellaswagError] as const;
const temp = mkdtempSync(join(tmpdir(), 'hellaswag-fuzz-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const seeds = [DATASET_SEEDS.hellaswagPreprocessedJsonl, DATASET_SEEDS.hellaswagRawJsonl].map((t) =>
  new TextEncoder().encode(t),
);

/** lm-eval's `re.sub("\\[.*?\\]", "", text)` as the regex it is (the reference; quadratic). */
function referenceRemoveBracketed(text: string): string {
  return text.replace(/\[[^\n]*?\]/g, '');
}

describe('fuzz: loadHellaswagDocs', () => {
  it('both seed files load as they are', async () => {
    for (const [i, seed] of seeds.entries()) {
      writeFileSync(join(temp, `seed-${i}.jsonl`), seed);
      expect(await loadHellaswagDocs(join(temp, `seed-${i}.jsonl`))).toHaveLength(i === 0 ? 2 : 1);
    }
  });

  it(`mutated jsonl files, ${fuzzRuns(300)} cases`, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedBytesArb(seeds), async (bytes) => {
        const path = join(temp, `${n++}.jsonl`);
        writeFileSync(path, bytes);
        await expectTypedAsync(TYPED, () => loadHellaswagDocs(path));
        rmSync(path);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
    );
  });
});

describe('preprocessHellaswagText on hostile text', () => {
  it(`removes [..] exactly like the lm-eval regex, ${fuzzRuns(2000)} cases`, () => {
    const textArb = fc.string({
      unit: fc.constantFrom('[', ']', '\n', '\r', ' ', 'a', '\u2028', '[title]'),
      maxLength: 40,
    });
    fc.assert(
      fc.property(textArb, (text) => {
        // compare after the shared steps, on the bracket removal alone
        expect(preprocessHellaswagText(`a${text}a`)).toBe(
          referenceRemoveBracketed(`a${text}a`.split(' [title]').join('. ')).split('  ').join(' '),
        );
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(2000) },
    );
  });

  it.each([
    ['1 MB of "["', '['.repeat(1 << 20)],
    ['1 MB of "[\\n"', '[\n'.repeat(1 << 19)],
    ['1 MB of "[]"', '[]'.repeat(1 << 19)],
    ['"[" then 1 MB of text then "]"', `[${'a'.repeat(1 << 20)}]`],
    ['1 MB of spaces between letters', `x${' '.repeat(1 << 20)}x`],
  ])('%s is processed in under 500 ms (was ~10 minutes for "[" × 1 MB)', (_, text) => {
    const start = performance.now();
    preprocessHellaswagText(text);
    expect(performance.now() - start).toBeLessThan(500);
  });
});
