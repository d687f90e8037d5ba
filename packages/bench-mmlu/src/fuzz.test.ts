// Issue 11 fuzzing: MMLU files (mutated hendrycks CSVs and parquet) end only in DatasetsError or
// BenchMmluError, and whatever loads builds a prompt. CI runs the base counts; QLORA_FUZZ_RUNS
// multiplies them (tools/fuzz/run.ts runs ≥ 10,000).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetsError } from '@qlora/datasets';
import { fixturePath } from '@qlora/test-utils';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { expectTypedAsync, FUZZ_SEED, fuzzRuns, mutatedBytesArb } from '../../../tools/fuzz/mutate';
import { BenchMmluError } from './errors';
import { loadMmluCsvDocs, loadMmluParquetDocs } from './load';
import { buildMmluPrompt } from './prompt';

const TYPED = [DatasetsError, BenchMmluError] as const;
const temp = mkdtempSync(join(tmpdir(), 'mmlu-fuzz-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const csvSeed = new TextEncoder().encode(
  '"A 6-sided die is rolled 15 times, and ""side 3"" comes up 2 times. Probability?",2.0/15,1.0/7,3.0/16,1.0/5,B\n' +
    'Which image data augmentation is most common for natural images?,random crop and horizontal flip,random crop and vertical flip,posterization,dithering,A\n',
);
const parquetSeed = new Uint8Array(readFileSync(fixturePath('datasets', 'synthetic_mmlu.parquet')));

describe('fuzz: MMLU loaders', () => {
  it(`mutated hendrycks CSVs, loaded by subject and prompted, ${fuzzRuns(300)} cases`, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedBytesArb([csvSeed]), async (bytes) => {
        const dir = join(temp, `csv-${n++}`);
        mkdirSync(dir);
        writeFileSync(join(dir, 'machine_learning_test.csv'), bytes);
        await expectTypedAsync(TYPED, async () => {
          for (const doc of await loadMmluCsvDocs(dir, 'machine_learning')) buildMmluPrompt(doc);
        });
        rmSync(dir, { recursive: true });
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
    );
  });

  it(`mutated parquet files, ${fuzzRuns(300)} cases`, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedBytesArb([parquetSeed]), async (bytes) => {
        const path = join(temp, `${n++}.parquet`);
        writeFileSync(path, bytes);
        await expectTypedAsync(TYPED, async () => {
          for (const doc of await loadMmluParquetDocs(path)) buildMmluPrompt(doc);
        });
        rmSync(path);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
    );
  });

  it('a subject name cannot reach outside the data folder', async () => {
    const dir = join(temp, 'traversal');
    mkdirSync(dir);
    writeFileSync(join(dir, 'machine_learning_test.csv'), csvSeed);
    writeFileSync(join(temp, 'secret_test.csv'), csvSeed);
    await expect(loadMmluCsvDocs(dir, '../secret')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
    });
  });
});
