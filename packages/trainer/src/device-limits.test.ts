// Out-of-memory on the GPU: the pre-flight check of the largest tensors against a WebGPU
// device's limits (pure arithmetic, tested with the limits passed in), and end to end on a
// WebGPU adapter where there is one (Mesa lavapipe here: 128 MiB storage bindings), where a
// step too large is refused before it runs and a buffer over a limit inside an error scope
// becomes a typed error instead of silent zeros.
import '@tensorflow/tfjs-backend-cpu';
import { fixturePath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkForwardFits,
  type DeviceLimits,
  forwardBuffers,
  guardDeviceErrors,
  largestFittingBatch,
  largestFittingLength,
  webgpuDevice,
  webgpuLimits,
} from './_device-limits';
import { TRAIN_LIMITS } from './_sequence-limits';
import { caughtTrainerError as caught, LLAMA_32_1B, randomLlama } from './_test-fixtures';
import { hasWebgpu } from './_webgpu-probe';
import { type LlamaConfig, parseLlamaConfig } from './config';
import { TrainerError } from './errors';
import type { Linear } from './linear';
import type { LlamaModel } from './llama-model';
import { loadModel } from './load-model';
import { train } from './train';

const webgpu = await hasWebgpu();
/** The adapter's binding limit (0 without one): exceeding it for real is cheap only when small. */
const bindingLimit = webgpu ? await readBindingLimit() : 0;

async function readBindingLimit(): Promise<number> {
  await tf.setBackend('webgpu');
  const limit = webgpuLimits()?.maxStorageBufferBindingSize ?? 0;
  await tf.setBackend('cpu');
  return limit;
}

const LLAMA_1B: LlamaConfig = parseLlamaConfig(LLAMA_32_1B);

/** An H200 through Dawn: 2 GiB storage bindings. */
const H200: DeviceLimits = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 40 };

describe('checkForwardFits (limits passed in)', () => {
  it('sizes the step tensors: logits, attention scores, MLP activations', () => {
    const [logits, scores, mlp] = forwardBuffers(LLAMA_1B, { batch: 2, steps: 512 });
    expect(logits).toEqual({ name: 'logits', shape: [2, 512, 128256], bytes: 525336576 });
    expect(scores?.shape).toEqual([2, 32, 512, 512]);
    expect(mlp?.shape).toEqual([2, 512, 8192]);
    // With a cache, attention spans the past; lastOnly keeps one logit row.
    const [last, cached] = forwardBuffers(LLAMA_1B, {
      batch: 1,
      steps: 1,
      past: 99,
      logitSteps: 1,
    });
    expect(last?.shape).toEqual([1, 1, 128256]);
    expect(cached?.shape).toEqual([1, 32, 1, 100]);
  });

  it('Llama-3.2-1B on an H200: B·T ≤ 4185 tokens; batch 8 × 2048 refused with what fits', () => {
    expect(largestFittingBatch(LLAMA_1B, { batch: 8, steps: 2048 }, 2 ** 31)).toBe(2);
    expect(largestFittingLength(LLAMA_1B, { batch: 8, steps: 2048 }, 2 ** 31)).toBe(523);
    expect(() =>
      checkForwardFits(LLAMA_1B, { batch: 2, steps: 2048 }, H200, TRAIN_LIMITS),
    ).not.toThrow();
    const error = caught(() =>
      checkForwardFits(LLAMA_1B, { batch: 8, steps: 2048 }, H200, TRAIN_LIMITS),
    );
    expect(error.code).toBe('E_OUT_OF_MEMORY');
    expect(error.message).toContain(
      'training step too large for the webgpu device: expected every tensor within its maxStorageBufferBindingSize (2147483648 bytes, 2048.0 MiB), got logits [8, 2048, 128256] f32 of 8405385216 bytes',
    );
    expect(error.message).toContain('at length 2048, batch size ≤ 2 fits');
    expect(error.message).toContain('at batch size 8, length ≤ 523 fits');
    expect(error.message).toContain('(B·T ≤ 4185 tokens for a 128256-token vocabulary)');
    expect(error.message).toContain('Hint: lower batchSize (qlora train --batch-size');
    expect(error.message).toContain('sft.maxLength (qlora train --max-length');
  });

  it('names the attention scores when they are the largest tensor', () => {
    const wide = { ...LLAMA_1B, vocabSize: 512, intermediateSize: 512 };
    const error = caught(() =>
      checkForwardFits(wide, { batch: 1, steps: 8192 }, H200, TRAIN_LIMITS),
    );
    expect(error.message).toContain('got attention scores [1, 32, 8192, 8192]');
    expect(error.message).toContain('at batch size 1, length ≤ 4096 fits');
    expect(error.message).not.toContain('vocabulary');
  });

  it('a weight over the limit is refused with another backend as the only fix', () => {
    const llama70b = { ...LLAMA_1B, hiddenSize: 8192 }; // [128256, 8192] f32: 4.2 GB
    const error = caught(() =>
      checkForwardFits(llama70b, { batch: 1, steps: 8 }, H200, TRAIN_LIMITS),
    );
    expect(error.code).toBe('E_OUT_OF_MEMORY');
    expect(error.message).toContain('got model.embed_tokens.weight [128256, 8192] f32');
    expect(error.message).toContain('no batch or length setting helps');
  });

  it('takes the smaller of maxStorageBufferBindingSize and maxBufferSize', () => {
    const limits = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 30 };
    const error = caught(() =>
      checkForwardFits(LLAMA_1B, { batch: 1, steps: 4096 }, limits, TRAIN_LIMITS),
    );
    expect(error.message).toContain('within its maxBufferSize (1073741824 bytes');
    expect(error.message).toContain('at length 4096 not even batch size 1 fits');
    expect(error.message).toContain('at batch size 1, length ≤ 2092 fits');
  });

  it('does nothing on the cpu backend', async () => {
    await tf.setBackend('cpu');
    expect(webgpuLimits()).toBeNull();
    expect(await guardDeviceErrors(TRAIN_LIMITS, async () => 42)).toBe(42);
  });
});

/** A one-layer Llama with a 65,536-token vocabulary: big logits from a tiny model. */
function bigVocabModel(): LlamaModel {
  const config = parseLlamaConfig({
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 65536,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 512,
    tie_word_embeddings: true,
    eos_token_id: 2,
  });
  return randomLlama(config, { seed: 1, scale: 0.1 });
}

describe.skipIf(!webgpu)('on a WebGPU adapter', () => {
  let model: LlamaModel;
  let limits: DeviceLimits;
  beforeAll(async () => {
    await tf.setBackend('webgpu');
    limits = webgpuLimits() as DeviceLimits;
    model = bigVocabModel();
  });
  afterAll(async () => {
    model.dispose();
    await tf.setBackend('cpu');
  });

  it('loglikelihood rows past 2^24 flat logit positions score the right tokens (as on cpu)', async () => {
    // 300 continuation tokens × 65,536 = 19.7 M: a flat row·vocab + target index would be rounded
    // by webgpu's f32 integer arithmetic and pick a neighbouring token's log-probability.
    const continuation = Array.from({ length: 100 }, (_, i) => 3 + ((i * 7919) % 65000));
    const pairs = [0, 1, 2].map((k) => ({ context: [5 + k, 9], continuation }));
    model.evaluation = { batchSize: 3 };
    const onWebgpu = await model.loglikelihoodTokens(pairs);
    await tf.setBackend('cpu');
    const cpuModel = bigVocabModel();
    try {
      cpuModel.evaluation = { batchSize: 3 };
      const onCpu = await cpuModel.loglikelihoodTokens(pairs);
      onCpu.forEach((want, i) => {
        expect(Math.abs((onWebgpu[i]?.logprob as number) - want.logprob)).toBeLessThan(
          1e-5 * Math.abs(want.logprob),
        );
      });
    } finally {
      cpuModel.dispose();
      await tf.setBackend('webgpu');
    }
  }, 60_000);

  it('reads the device limits from the tfjs backend', () => {
    expect(limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(limits.maxBufferSize).toBeGreaterThan(0);
  });

  it('train() refuses a batch whose logits exceed the device, before any step', async () => {
    const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    const tokensFit = Math.floor(binding / (65536 * 4));
    const length = Math.min(500, tokensFit); // one row fits; `rows` rows do not
    const rows = Math.floor(tokensFit / length) + 1;
    const ids = Array.from({ length }, (_, i) => 3 + (i % 200));
    const examples = Array.from({ length: rows }, () => ({ inputIds: ids, labels: ids }));
    let steps = 0;
    const error = await train(
      model,
      examples,
      { lora: { r: 2, alpha: 4 }, maxSteps: 1, batchSize: rows },
      { onProgress: () => steps++ },
    ).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TrainerError);
    expect((error as TrainerError).code).toBe('E_OUT_OF_MEMORY');
    expect((error as TrainerError).message).toContain(
      `(B·T ≤ ${tokensFit} tokens for a 65536-token vocabulary)`,
    );
    expect((error as TrainerError).message).toContain('--batch-size');
    expect((error as TrainerError).message).toContain('--max-length');
    expect(steps).toBe(0);
  }, 60_000);

  it('loglikelihood splits a batch too large for the device and scores it as one request at a time', async () => {
    const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    const tokensFit = Math.floor(binding / (65536 * 4));
    // Only continuation positions get logits: 199 of them per request, one context token. The
    // whole batch's logits would not fit one binding: the scorer halves it until each part fits.
    const continuation = Array.from({ length: 199 }, (_, i) => 3 + (i % 200));
    const pairs = Array.from({ length: Math.floor(tokensFit / 199) + 1 }, (_, i) => ({
      context: [5 + i],
      continuation,
    }));
    model.evaluation = { batchSize: pairs.length };
    const together = await model.loglikelihoodTokens(pairs);
    model.evaluation = { batchSize: 1 };
    const alone = await model.loglikelihoodTokens(pairs);
    expect(together).toHaveLength(pairs.length);
    for (let i = 0; i < pairs.length; i++) {
      expect(together[i]?.logprob).toBeCloseTo(alone[i]?.logprob as number, 3);
      expect(together[i]?.isGreedy).toBe(alone[i]?.isGreedy);
    }
  }, 60_000);

  it('a buffer over maxBufferSize inside the error scope becomes E_OUT_OF_MEMORY', async () => {
    const device = webgpuDevice() as unknown as {
      createBuffer(descriptor: { size: number; usage: number }): { destroy(): void };
    };
    const error = await guardDeviceErrors(TRAIN_LIMITS, async () => {
      // STORAGE | COPY_DST; validated (and refused) without allocating anything.
      device.createBuffer({ size: limits.maxBufferSize + 4, usage: 0x80 | 0x08 }).destroy();
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TrainerError);
    expect((error as TrainerError).code).toBe('E_OUT_OF_MEMORY');
    expect((error as TrainerError).message).toContain('a buffer over a device limit');
    expect((error as TrainerError).message).toContain('Hint: lower batchSize');
    // The device still works afterwards.
    expect(Array.from(await tf.add(tf.ones([2]), 1).data())).toEqual([2, 2]);
  });

  it.skipIf(bindingLimit > 2 ** 28)(
    'a tensor over maxStorageBufferBindingSize: E_OUT_OF_MEMORY instead of silent zeros',
    async () => {
      const elements = limits.maxStorageBufferBindingSize / 4 + 1024;
      const error = await guardDeviceErrors(TRAIN_LIMITS, async () => {
        const sum = tf.tidy(() => tf.slice(tf.add(tf.fill([elements], 1), 2), [0], [4]));
        try {
          return await sum.data(); // tfjs alone returns [0, 0, 0, 0] here, without an error
        } finally {
          sum.dispose();
        }
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect((error as TrainerError).code).toBe('E_OUT_OF_MEMORY');
      expect((error as TrainerError).message).toMatch(/Binding size \(\d+\)/);
      expect(Array.from(await tf.add(tf.ones([2]), 1).data())).toEqual([2, 2]);
    },
  );

  it('nested guards push one scope: the outer settings are reported', async () => {
    const device = webgpuDevice() as unknown as {
      createBuffer(descriptor: { size: number; usage: number }): { destroy(): void };
    };
    const outer = { what: 'outer call', batch: 'OUTER_BATCH', length: 'OUTER_LENGTH' };
    const error = await guardDeviceErrors(outer, () =>
      guardDeviceErrors(TRAIN_LIMITS, async () => {
        device.createBuffer({ size: limits.maxBufferSize + 4, usage: 0x80 | 0x08 }).destroy();
      }),
    ).then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as TrainerError).message).toContain('outer call on webgpu');
    expect((error as TrainerError).message).toContain('OUTER_BATCH');
  });
});

/**
 * A projection that also makes one tensor just over the device's binding limit (adding 0 from
 * it): an allocation the pre-flight check cannot foresee, as a real out-of-memory would be.
 */
function oversized(base: Linear, elements: number): Linear {
  return {
    name: base.name,
    inFeatures: base.inFeatures,
    outFeatures: base.outFeatures,
    apply: (x) => tf.add(base.apply(x), tf.mul(tf.max(tf.fill([elements], 1)), 0)),
    weights: () => base.weights(),
    dispose: () => base.dispose(),
  };
}

describe.skipIf(!webgpu || bindingLimit > 2 ** 28)(
  'a failure inside a step (the error scope around train steps and eval batches)',
  () => {
    let model: LlamaModel;
    beforeAll(async () => {
      await tf.setBackend('webgpu');
      model = (await loadModel(fixturePath('trainer', 'llama3-gqa-tied'))).model;
      const elements = bindingLimit / 4 + 1024;
      model.mapProjections((linear, layer, field) =>
        layer === 0 && field === 'upProj' ? oversized(linear, elements) : linear,
      );
    });
    afterAll(async () => {
      model.dispose();
      await tf.setBackend('cpu');
    });

    it('train(): the step fails with E_OUT_OF_MEMORY before the optimizer applies it', async () => {
      const ids = [1, 5, 9, 13, 2, 7, 11, 3];
      let steps = 0;
      const error = await train(
        model,
        [{ inputIds: ids, labels: ids }],
        { lora: { r: 2, alpha: 4, seed: 1 }, maxSteps: 2, batchSize: 1 },
        { onProgress: () => steps++ },
      ).then(
        () => null,
        (e: unknown) => e,
      );
      expect((error as TrainerError).code).toBe('E_OUT_OF_MEMORY');
      expect((error as TrainerError).message).toContain('training step on webgpu');
      expect((error as TrainerError).message).toContain('a buffer over a device limit');
      expect((error as TrainerError).message).toContain('--batch-size');
      expect(steps).toBe(0);
    }, 60_000);

    it('loglikelihood: the batch fails with E_OUT_OF_MEMORY naming evaluation.batchSize', async () => {
      const error = await model
        .loglikelihoodTokens([{ context: [1, 5, 9], continuation: [4] }])
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect((error as TrainerError).code).toBe('E_OUT_OF_MEMORY');
      expect((error as TrainerError).message).toContain('loglikelihood batch on webgpu');
      expect((error as TrainerError).message).toContain('evaluation.batchSize');
    }, 60_000);
  },
);
