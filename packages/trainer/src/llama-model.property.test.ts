import { fc, test } from '@fast-check/vitest';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { readReference, relativeError } from './_test-fixtures';
import { initBackend } from './backend';
import type { LlamaModel } from './llama-model';
import { loadModel } from './load-model';

// Invariants of the causal model that hold for any input, checked on the GQA + llama3 fixture.
describe('LlamaModel invariants (cpu)', () => {
  let model: LlamaModel;
  beforeAll(async () => {
    await initBackend('cpu');
    model = (await loadModel(readReference('llama3-gqa-tied').dir, { skipTokenizer: true })).model;
  });
  afterAll(() => model.dispose());

  const ids = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 2, maxLength: 24 });

  test.prop([ids, fc.integer({ min: 1, max: 23 })], { seed: 3407, numRuns: 12 })(
    'a KV cache split anywhere gives the full-sequence logits',
    async (tokens, cut) => {
      const split = Math.min(cut, tokens.length - 1);
      const full = await model.forwardLogits(tokens);
      const cache = model.createCache(1);
      const first = model.forward([tokens.slice(0, split)], { cache });
      const second = model.forward([tokens.slice(split)], { cache });
      const parts = [...first.dataSync(), ...second.dataSync()];
      tf.dispose([first, second]);
      cache.dispose();
      expect(relativeError(parts, full)).toBeLessThan(1e-5);
    },
  );

  test.prop([ids, fc.integer({ min: 1, max: 9 })], { seed: 3407, numRuns: 12 })(
    'left padding with an attention mask does not change the real tokens’ logits',
    async (tokens, pads) => {
      const plain = await model.forwardLogits(tokens);
      const padded = model.forward([[...new Array<number>(pads).fill(0), ...tokens]], {
        attentionMask: [[...new Array<number>(pads).fill(0), ...tokens.map(() => 1)]],
      });
      const real = padded.dataSync().slice(pads * 256);
      padded.dispose();
      expect(relativeError(real, plain)).toBeLessThan(1e-5);
    },
  );
});
