// useInt8Inference (issue 10, W8A8): refused with the reason off an int8-capable webgpu device;
// on one (an NVIDIA GPU with initBackend('webgpu', { int8TensorCores: true })) the converted model
// stays close to f32. The H200 numbers are in BENCHMARKS.md (tools/gpu/gpu-bench.ts w8a8-accuracy).
import '@tensorflow/tfjs-backend-cpu';
import { Int8Linear, LoraError, supportsInt8MatMul } from '@qlora/lora';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { randomLlama } from './_test-fixtures';
import { parseLlamaConfig } from './config';
import { useInt8Inference } from './int8';

const config = parseLlamaConfig({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 256,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
  eos_token_id: 2,
});

describe('useInt8Inference', () => {
  it('is refused off an int8-capable webgpu device, saying why and how to enable it', async () => {
    await tf.setBackend('cpu');
    const model = randomLlama(config, { seed: 3, scale: 0.2 });
    const error = (() => {
      try {
        useInt8Inference(model);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(LoraError);
    expect((error as LoraError).code).toBe('E_OPTIONS');
    expect((error as Error).message).toContain("the active backend is 'cpu', not webgpu");
    expect((error as Error).message).toContain('int8TensorCores: true');
    // Nothing was converted: the model still runs in f32.
    expect(model.lmHead).not.toBeInstanceOf(Int8Linear);
    const logits = model.forward([[1, 2, 3]]);
    expect(logits.shape).toEqual([1, 3, 256]);
    tf.dispose(logits);
    model.dispose();
  });

  it.runIf(tf.getBackend() === 'webgpu' && supportsInt8MatMul())(
    'converts every projection and the tied head, and stays close to f32',
    async () => {
      const model = randomLlama(config, { seed: 3, scale: 0.2 });
      const ids = [[1, 5, 9, 13, 17, 21, 25, 29]];
      const reference = (await model.forward(ids).data()) as Float32Array;
      expect(useInt8Inference(model)).toEqual({ converted: 15, parameters: 77824 });
      const int8 = (await model.forward(ids).data()) as Float32Array;
      let num = 0;
      let den = 0;
      for (let i = 0; i < int8.length; i++) {
        num += ((int8[i] as number) - (reference[i] as number)) ** 2;
        den += (reference[i] as number) ** 2;
      }
      expect(Math.sqrt(num / den)).toBeLessThan(0.05);
      model.dispose();
    },
  );
});
