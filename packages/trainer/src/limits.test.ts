// Sequences beyond the model's positions (max_position_embeddings): every entry that runs the
// model either left-truncates as lm-eval does or stops with E_SEQUENCE_TOO_LONG naming the
// setting to change. The fixture model has 256 positions.
import '@tensorflow/tfjs-backend-cpu';
import type { Tokenizer } from '@qlora/datasets';
import { loraLayers } from '@qlora/lora';
import { fixturePath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caughtTrainerError as caught, rejectedTrainerError as rejected } from './_test-fixtures';
import { lossGradients } from './checkpointing';
import type { LlamaModel } from './llama-model';
import { loadModel } from './load-model';
import { train } from './train';

const POSITIONS = 256;

/** One token per character (ids 3…252), BOS 1; decodes to letters. Enough to drive generateUntil. */
const charTokenizer: Tokenizer = {
  encode: (text) => [1, ...[...text].map((c) => 3 + ((c.codePointAt(0) as number) % 250))],
  decode: (ids) =>
    ids
      .filter((id) => id > 2)
      .map((id) => String.fromCharCode(97 + (id % 26)))
      .join(''),
  bosTokenId: 1,
  eosTokenId: null,
  padTokenId: null,
  eosToken: null,
  vocabSize: 256,
};

function tokens(n: number, seed = 7): number[] {
  return Array.from({ length: n }, (_, i) => 3 + ((i * 37 + seed) % 250));
}

describe('sequences beyond max_position_embeddings', () => {
  let model: LlamaModel;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    model = (await loadModel(fixturePath('trainer', 'llama3-gqa-tied'))).model;
    model.tokenizer = charTokenizer;
    expect(model.config.maxPositionEmbeddings).toBe(POSITIONS);
  });
  afterAll(() => model.dispose());

  it('forward: 256 tokens run, 257 are refused with the positions and the model named', () => {
    model.forward([tokens(POSITIONS)]).dispose();
    const error = caught(() => model.forward([tokens(POSITIONS + 1)]));
    expect(error.code).toBe('E_SEQUENCE_TOO_LONG');
    expect(error.message).toContain(
      `expected at most 256 positions (max_position_embeddings of ${model.name}), got 257 tokens`,
    );
    expect(error.message).toContain('Hint: keep the last 256 tokens');
  });

  it('forward: left padding does not count, real positions do (KV cache growth included)', () => {
    // 300 columns, 256 real tokens: positions 0…255.
    const padded = [[...new Array<number>(44).fill(0), ...tokens(POSITIONS)]];
    const mask = [[...new Array<number>(44).fill(0), ...new Array<number>(POSITIONS).fill(1)]];
    model.forward(padded, { attentionMask: mask, lastOnly: true }).dispose();
    const cache = model.createCache(1);
    try {
      model.forward([tokens(250)], { cache }).dispose();
      const before = tf.memory().numTensors;
      const error = caught(() => model.forward([tokens(7)], { cache }));
      expect(error.code).toBe('E_SEQUENCE_TOO_LONG');
      expect(error.message).toContain('got 257 tokens (250 cached + 7 new)');
      expect(cache.length).toBe(250); // refused before the cache changed
      expect(tf.memory().numTensors).toBe(before);
      model.forward([tokens(6)], { cache }).dispose();
      expect(cache.length).toBe(256);
    } finally {
      cache.dispose();
    }
  });

  it('generateGreedy: prompt + maxNewTokens over the positions is refused before any step', async () => {
    const error = await rejected(() => model.generateGreedy(tokens(250), 10));
    expect(error.code).toBe('E_SEQUENCE_TOO_LONG');
    expect(error.message).toContain('got a prompt of 250 tokens + maxNewTokens 10 = 260 tokens');
    expect(error.message).toContain('lower maxNewTokens to at most 6');
    expect(error.message).toContain('keep the last 246 prompt tokens');
    expect((await rejected(() => model.generateGreedy([1], 256))).message).toContain(
      'lower maxNewTokens below 256',
    );
    expect(await model.generateGreedy(tokens(250), 6)).toHaveLength(6);
  });

  it('loglikelihood: the context is left-truncated to the positions as lm-eval does', async () => {
    model.evaluation = {};
    const context = tokens(300);
    const continuation = tokens(4, 11);
    const [result] = await model.loglikelihoodTokens([{ context, continuation }]);
    // lm-eval: input = (context + continuation)[-(max_length + 1):][:-1], max_length = 256.
    const whole = [...context, ...continuation];
    const input = whole.slice(-(POSITIONS + 1)).slice(0, -1);
    expect(input).toHaveLength(POSITIONS);
    const logits = await model.forwardLogits(input);
    const vocab = model.config.vocabSize;
    let want = 0;
    continuation.forEach((token, j) => {
      const row = logits.subarray((POSITIONS - 4 + j) * vocab, (POSITIONS - 3 + j) * vocab);
      const max = Math.max(...row);
      const logSum = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
      want += (row[token] as number) - logSum;
    });
    expect(Math.abs((result?.logprob as number) - want)).toBeLessThan(1e-4 * Math.abs(want));
  });

  it('loglikelihood: a continuation longer than the window, or a window over the positions, is refused', async () => {
    model.evaluation = {};
    const long = await rejected(() =>
      model.loglikelihoodTokens([{ context: [1], continuation: tokens(POSITIONS + 1) }]),
    );
    expect(long.code).toBe('E_SEQUENCE_TOO_LONG');
    expect(long.message).toContain('expected a continuation of at most 256 tokens');
    expect(long.message).toContain('got 257 tokens');
    model.evaluation = { maxLength: 1024 };
    const window = await rejected(() =>
      model.loglikelihoodTokens([{ context: [1], continuation: [5] }]),
    );
    expect(window.code).toBe('E_SEQUENCE_TOO_LONG');
    expect(window.message).toContain('got evaluation.maxLength 1024');
    expect(window.message).toContain('lower evaluation.maxLength');
    model.evaluation = {};
  });

  it('generateUntil: the context is left-truncated to maxLength − maxGenTokens (lm-eval)', async () => {
    model.evaluation = { maxLength: 16 };
    const context = 'a long context of forty characters here';
    const [text] = await model.generateUntil([{ context, until: [], maxGenTokens: 4 }]);
    const kept = charTokenizer.encode(context).slice(-12);
    const greedy = await model.generateGreedy(kept, 4, { eosTokenIds: [2] });
    expect(text).toBe(charTokenizer.decode(greedy));
    model.evaluation = {};
  });

  it('generateUntil: a token budget of maxLength or more is refused naming --max-gen-tokens', async () => {
    model.evaluation = {};
    const error = await rejected(() =>
      model.generateUntil([{ context: 'Q', until: ['\n'], maxGenTokens: 256 }]),
    );
    expect(error.code).toBe('E_SEQUENCE_TOO_LONG');
    expect(error.message).toContain('expected maxGenTokens below the context window of 256 tokens');
    expect(error.message).toContain('--max-gen-tokens');
    expect(error.message).toContain('benchmarks.gsm8k.maxGenTokens');
  });

  it('generateUntil: requests with different budgets are batched apart, so none runs past the positions', async () => {
    // Batched together, a 255-token context and a 40-token budget would need 295 positions.
    const requests = [
      { context: 'x'.repeat(300), until: [], maxGenTokens: 1 },
      { context: 'short one', until: [], maxGenTokens: 40 },
    ];
    model.evaluation = { batchSize: 2 };
    const batched = await model.generateUntil(requests);
    model.evaluation = { batchSize: 1 };
    expect(batched).toEqual(await model.generateUntil(requests));
    model.evaluation = {};
  });

  it('train: an SFT maxLength above the positions is refused up front, naming --max-length', async () => {
    let tokenized = 0;
    const counting: Tokenizer = {
      ...charTokenizer,
      encode: (text) => {
        tokenized++;
        return charTokenizer.encode(text);
      },
    };
    const error = await rejected(() =>
      train(
        model,
        {
          records: [{ prompt: 'Q: hi\nA:', response: ' yes' }],
          tokenizer: counting,
          sft: { maxLength: 2048 },
        },
        { lora: { r: 2, alpha: 4 }, maxSteps: 1, batchSize: 1 },
      ),
    );
    expect(error.code).toBe('E_SEQUENCE_TOO_LONG');
    expect(error.message).toContain(
      `expected at most 256 positions (max_position_embeddings of ${model.name}), got a maxLength of 2048 tokens`,
    );
    expect(error.message).toContain('--max-length');
    expect(error.message).toContain('finetune.maxLength');
    expect(tokenized).toBe(0);
    expect(loraLayers(model)).toHaveLength(0); // refused before the adapter was injected
  });

  it('train: pre-tokenized examples longer than the positions are refused, naming the first', async () => {
    const ok = { inputIds: tokens(20), labels: tokens(20) };
    const long = { inputIds: tokens(300), labels: tokens(300) };
    const error = await rejected(() =>
      train(model, [ok, long, long], { lora: { r: 2, alpha: 4 }, maxSteps: 1, batchSize: 1 }),
    );
    expect(error.code).toBe('E_SEQUENCE_TOO_LONG');
    expect(error.message).toContain('training example 1');
    expect(error.message).toContain('got 300 tokens (2 of 3 examples are longer)');
  });

  it('lossGradients: a batch wider than the positions is refused', () => {
    const batch = {
      batchSize: 1,
      seqLength: 257,
      inputIds: tokens(257),
      labels: tokens(257),
      attentionMask: new Array<number>(257).fill(1),
    };
    const error = caught(() => lossGradients(model, batch));
    expect(error.code).toBe('E_SEQUENCE_TOO_LONG');
    expect(error.message).toContain('got sequences of 257 tokens');
  });
});
