import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFERENCE_CASES, readReference, relativeError } from './_test-fixtures';
import { initBackend } from './backend';
import type { LlamaModel } from './llama-model';
import { loadModel } from './load-model';

const TOLERANCE = 1e-4;

describe.each(['cpu', 'wasm'] as const)('LlamaModel on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  describe.each(REFERENCE_CASES)('%s', (name) => {
    const { ref, logits: refLogits, dir } = readReference(name);
    let model: LlamaModel;
    beforeAll(async () => {
      await initBackend(backend);
      model = (await loadModel(dir, { skipTokenizer: true })).model;
    });
    afterAll(() => model.dispose());

    it('matches the transformers rotary frequencies', () => {
      // torch's float32 pow can differ from JS pow by one ulp.
      expect(relativeError(model.inverseFrequencies, ref.inv_freq)).toBeLessThan(1e-6);
    });

    it.each(ref.sequences.map((s) => [s.input_ids.length, s] as const))(
      'logits of %i tokens match',
      async (_, seq) => {
        const logits = await model.forwardLogits(seq.input_ids);
        const size = seq.shape.reduce((a, b) => a * b, 1);
        const expected = refLogits.subarray(seq.logits_offset, seq.logits_offset + size);
        const error = relativeError(logits, expected);
        console.log(
          `[parity] ${backend} ${name} T=${seq.input_ids.length} max rel error ${error.toExponential(2)}`,
        );
        expect(error).toBeLessThanOrEqual(TOLERANCE);
      },
    );

    it('left-padded batch logits match on real tokens', () => {
      const batch = ref.left_padded_batch!;
      const logits = model.forward(batch.input_ids, { attentionMask: batch.attention_mask });
      const actual = logits.dataSync();
      logits.dispose();
      const [b, t, v] = batch.shape as [number, number, number];
      const expected = refLogits.subarray(batch.logits_offset, batch.logits_offset + b * t * v);
      const got: number[] = [];
      const want: number[] = [];
      for (let i = 0; i < b; i++) {
        for (let j = 0; j < t; j++) {
          if (batch.attention_mask[i]![j] === 0) continue;
          const at = (i * t + j) * v;
          got.push(...actual.subarray(at, at + v));
          want.push(...expected.subarray(at, at + v));
        }
      }
      expect(relativeError(got, want)).toBeLessThanOrEqual(TOLERANCE);
    });

    it('greedy generation is token-identical', async () => {
      for (const g of ref.greedy!) {
        expect(await model.generateGreedy(g.prompt, g.max_new_tokens)).toEqual(g.tokens);
      }
    });

    it('batched greedy generation with left padding is token-identical', async () => {
      const bg = ref.batched_greedy!;
      const prompts = bg.input_ids.map((row, i) =>
        row.filter((_, j) => bg.attention_mask[i]![j] === 1),
      );
      const out = await model.generateGreedyBatch(prompts, bg.max_new_tokens);
      out.forEach((tokens, i) => {
        expect(tokens).toEqual(bg.tokens[i]!.slice(0, tokens.length));
      });
    });

    it('loglikelihoods of id pairs match, lm-eval style (incl. left truncation)', async () => {
      const pairs = ref.loglikelihoods!;
      for (const batchSize of [1, 3]) {
        model.evaluation = { maxLength: ref.max_length, batchSize };
        const results = await model.loglikelihoodTokens(pairs);
        results.forEach((r, i) => {
          const want = pairs[i]!;
          expect(Math.abs(r.logprob - want.logprob)).toBeLessThanOrEqual(
            1e-4 * Math.max(1, Math.abs(want.logprob)),
          );
          expect(r.isGreedy).toBe(want.is_greedy);
        });
      }
    });

    it('a KV cache fed in chunks gives the full-sequence logits', async () => {
      const ids = ref.sequences.at(-1)!.input_ids.slice(0, 24);
      const full = await model.forwardLogits(ids);
      const cache = model.createCache(1);
      const parts: number[] = [];
      try {
        for (const [start, end] of [
          [0, 10],
          [10, 11],
          [11, 24],
        ] as const) {
          const logits = model.forward([ids.slice(start, end)], { cache });
          parts.push(...logits.dataSync());
          logits.dispose();
        }
      } finally {
        cache.dispose();
      }
      expect(relativeError(parts, full)).toBeLessThan(1e-5);
    });

    it('does not leak tensors', async () => {
      const before = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) {
        await model.forwardLogits([5, 6, 7]);
        await model.generateGreedy([5, 6], 3);
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
