import { sharedDataPath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readReference } from './_test-fixtures';
import { initBackend } from './backend';
import { HfTokenizer } from './hf-tokenizer';
import { encodePair } from './language-model';
import type { LlamaModel } from './llama-model';
import { loadModel } from './load-model';

const TOKENIZER_DIR = sharedDataPath('tokenizers', 'tinyllama');
const { ref, dir } = readReference('tinyllama-tok');

describe('HfTokenizer (TinyLlama tokenizer.json)', () => {
  let tokenizer: HfTokenizer;
  beforeAll(async () => {
    tokenizer = await HfTokenizer.fromDir(TOKENIZER_DIR);
  });

  it('encodes as transformers AutoTokenizer does (legacy: false)', () => {
    for (const c of ref.tokenizer_cases!) {
      expect(tokenizer.encode(c.text), c.text).toEqual(c.auto_ids);
      expect(tokenizer.encode(c.text, { addSpecialTokens: false }), c.text).toEqual(
        c.auto_no_special,
      );
      expect(tokenizer.decode(c.auto_ids, { skipSpecialTokens: true })).toBe(c.decoded_skip);
    }
  });

  it('encodes as the tokenizers library does with verbatim: true', async () => {
    const verbatim = await HfTokenizer.fromDir(TOKENIZER_DIR, { verbatim: true });
    for (const c of ref.tokenizer_cases!)
      expect(verbatim.encode(c.text), c.text).toEqual(c.tokenizers_ids);
  });

  it('exposes the special tokens', () => {
    expect(tokenizer.bosTokenId).toBe(1);
    expect(tokenizer.eosTokenId).toBe(2);
    expect(tokenizer.padTokenId).toBe(2);
    expect(tokenizer.eosToken).toBe('</s>');
    expect(tokenizer.vocabSize).toBe(32000);
  });

  it('splits context and continuation as lm-eval does', () => {
    for (const c of ref.text_loglikelihoods!) {
      const pair = encodePair(tokenizer, c.context, c.continuation);
      expect(pair.context).toEqual(c.context_ids);
      expect(pair.continuation).toEqual(c.continuation_ids);
    }
  });
});

describe.each(['cpu', 'wasm'] as const)(
  'LanguageModel on %s (TinyLlama tokenizer, random weights)',
  (backend) => {
    let model: LlamaModel;
    beforeAll(async () => {
      await initBackend(backend);
      model = (await loadModel(dir, { tokenizerDir: TOKENIZER_DIR })).model;
    });
    afterAll(() => model.dispose());

    it('loglikelihood equals the transformers reference', async () => {
      const cases = ref.text_loglikelihoods!;
      for (const batchSize of [1, 4]) {
        model.evaluation = { batchSize };
        const before = tf.memory().numTensors;
        const results = await model.loglikelihood(
          cases.map((c) => ({ context: c.context, continuation: c.continuation })),
        );
        results.forEach((r, i) => {
          const want = cases[i]!;
          expect(Math.abs(r.logprob - want.logprob)).toBeLessThanOrEqual(
            1e-4 * Math.abs(want.logprob),
          );
          expect(r.isGreedy).toBe(want.is_greedy);
        });
        expect(tf.memory().numTensors).toBe(before);
      }
    });

    it('generateUntil equals greedy transformers generate cut at the stop strings', async () => {
      const cases = ref.generate_until!;
      for (const batchSize of [1, 2]) {
        model.evaluation = { batchSize };
        const before = tf.memory().numTensors;
        const out = await model.generateUntil(
          cases.map((c) => ({ context: c.context, until: c.until, maxGenTokens: c.max_gen_toks })),
        );
        expect(out).toEqual(cases.map((c) => c.result));
        expect(tf.memory().numTensors).toBe(before);
      }
    });

    it('greedy tokens equal generate(do_sample=False)', async () => {
      for (const c of ref.generate_until!) {
        const ids = model.tokenizer!.encode(c.context);
        expect(await model.generateGreedy(ids, c.max_gen_toks)).toEqual(c.tokens);
      }
    });
  },
);
