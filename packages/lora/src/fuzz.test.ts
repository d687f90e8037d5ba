// Issue 11 fuzzing: hostile adapter_config.json values and adapter folders (mutated config text
// and safetensors bytes) end only in LoraError, quickly, leave no adapter behind, and never
// allocate LoRA matrices from a rank the file's tensors do not hold. CI runs the base counts;
// QLORA_FUZZ_RUNS multiplies them (tools/fuzz/run.ts runs ≥ 10,000).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectTyped,
  expectTypedAsync,
  FUZZ_SEED,
  fuzzRuns,
  mutatedBytesArb,
  mutatedJsonArb,
  mutatedJsonBytesArb,
} from '../../../tools/fuzz/mutate';
import { TOY_SHAPES, ToyModel, useCpu } from './_test-helpers';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  applyAdapter,
  parseAdapterConfig,
} from './adapter';
import { LoraError } from './errors';
import { injectLora, loraLayers } from './inject';
import { loadAdapter, saveAdapter } from './node';

const TYPED = [LoraError] as const;
const temp = mkdtempSync(join(tmpdir(), 'lora-fuzz-'));
const seedDir = join(temp, 'seed');
let configSeed: unknown;
let weightsSeed: Uint8Array;

beforeAll(async () => {
  await useCpu();
  const model = new ToyModel(TOY_SHAPES, 1);
  injectLora(model, {
    r: 2,
    alpha: 4,
    initLoraWeights: false,
    seed: 1,
    targetModules: ['q_proj', 'v_proj'],
  });
  await saveAdapter(model, seedDir);
  model.dispose();
  configSeed = JSON.parse(readFileSync(join(seedDir, ADAPTER_CONFIG_FILE), 'utf8'));
  weightsSeed = new Uint8Array(readFileSync(join(seedDir, ADAPTER_WEIGHTS_FILE)));
});
afterAll(() => rmSync(temp, { recursive: true, force: true }));

describe('fuzz: parseAdapterConfig', () => {
  it(`structurally edited adapter_config.json values, ${fuzzRuns(2000)} cases`, () => {
    fc.assert(
      fc.property(
        fc.constant(null).chain(() => mutatedJsonArb([configSeed])),
        (json) => {
          expectTyped(TYPED, () => parseAdapterConfig(json));
        },
      ),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(2000) },
    );
  });
});

describe('fuzz: loadAdapter (adapter folders on disk)', () => {
  it(`mutated adapter_config.json text and adapter_model.safetensors bytes, ${fuzzRuns(150)} cases`, async () => {
    const dir = join(temp, 'case');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.tuple(mutatedJsonBytesArb([configSeed]), fc.constant(undefined)),
          fc.tuple(fc.constant(undefined), mutatedBytesArb([weightsSeed])),
        ),
        async ([config, weights]) => {
          const { mkdirSync } = await import('node:fs');
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, ADAPTER_CONFIG_FILE), config ?? JSON.stringify(configSeed));
          writeFileSync(join(dir, ADAPTER_WEIGHTS_FILE), weights ?? weightsSeed);
          const model = new ToyModel(TOY_SHAPES, 1);
          try {
            const outcome = await expectTypedAsync(TYPED, () => loadAdapter(model, dir));
            if (outcome !== 'ok') expect(loraLayers(model)).toHaveLength(0);
          } finally {
            model.dispose();
          }
        },
      ),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(150) },
    );
  });
});

describe('regressions found by fuzzing', () => {
  it('a corrupt adapter_model.safetensors is a LoraError E_ADAPTER_WEIGHTS (was a SafetensorsError)', async () => {
    const dir = join(temp, 'corrupt');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(configSeed));
    writeFileSync(join(dir, ADAPTER_WEIGHTS_FILE), weightsSeed.subarray(0, 20));
    const model = new ToyModel(TOY_SHAPES, 1);
    await expect(loadAdapter(model, dir)).rejects.toMatchObject({
      name: 'LoraError',
      code: 'E_ADAPTER_WEIGHTS',
    });
    model.dispose();
  });

  it('r: 2^40 in the config fails before any LoRA matrix is allocated', () => {
    const model = new ToyModel(TOY_SHAPES, 1);
    const start = performance.now();
    for (const r of [2 ** 40, 2 ** 31, 2 ** 20]) {
      expect(() =>
        applyAdapter(
          model,
          { ...(configSeed as object), r },
          {
            'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': {
              dtype: 'F32',
              shape: [2, 16],
              data: new Float32Array(32),
            },
          },
        ),
      ).toThrow(expect.objectContaining({ code: 'E_ADAPTER_WEIGHTS' }));
    }
    expect(performance.now() - start).toBeLessThan(200);
    expect(loraLayers(model)).toHaveLength(0);
    model.dispose();
  });
});
