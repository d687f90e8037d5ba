// The fused WGSL programs for RMSNorm, rotary + head split and SwiGLU (webgpu) against the tfjs
// op chains they replace, values and gradients, on random inputs (Mesa lavapipe here; skipped
// without an adapter). Bound: 2e-6 relative (Frobenius) for values, 1e-5 for gradients: the
// programs sum in another order and may contract products into fma.
import '@tensorflow/tfjs-backend-cpu';
import { useFusedWebgpuKernels } from '@qlora/lora';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { rmsNorm } from './_decoder-layer';
import {
  relativeError as maxRelativeError,
  REFERENCE_CASES,
  randomLlama,
  readReference,
} from './_test-fixtures';
import { fusedRotarySplitHeads, fusedSwiglu, useFusedElementwise } from './_webgpu-fused';
import { hasWebgpu } from './_webgpu-probe';
import { parseLlamaConfig } from './config';
import { ensureGradients } from './ensure-gradients';
import { loadModel } from './load-model';

const webgpu = await hasWebgpu();
await ensureGradients();

function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  let state = seed;
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return (state / 2 ** 31 - 0.5) * 2 * scale;
  });
  return tf.tensor(values, shape);
}

async function relativeError(actual: tf.Tensor, expected: tf.Tensor): Promise<number> {
  const [a, e] = [await actual.data(), await expected.data()];
  let num = 0;
  let den = 0;
  for (let i = 0; i < e.length; i++) {
    num += ((a[i] as number) - (e[i] as number)) ** 2;
    den += (e[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

/** The op's value and gradients (for `inputs`, weighted by `probe`) with the kernels on or off. */
function run(
  fused: boolean,
  op: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  probe: tf.Tensor,
): tf.Tensor[] {
  useFusedWebgpuKernels(fused);
  try {
    const value = op(...inputs);
    const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(op(...xs), probe)))(inputs);
    return [value, ...grads];
  } finally {
    useFusedWebgpuKernels(true);
  }
}

async function expectClose(op: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]) {
  // Dawn skips a dispatch it refuses (and the rest of its command buffer): read the scope too.
  const device = (
    tf.backend() as unknown as {
      device: {
        pushErrorScope(filter: string): void;
        popErrorScope(): Promise<{ message: string } | null>;
      };
    }
  ).device;
  device.pushErrorScope('validation');
  const shape = op(...inputs).shape;
  const probe = randomTensor(shape, 99);
  const fused = run(true, op, inputs, probe);
  const chain = run(false, op, inputs, probe);
  expect(fused[0]?.shape).toEqual(chain[0]?.shape);
  expect(await relativeError(fused[0] as tf.Tensor, chain[0] as tf.Tensor)).toBeLessThan(2e-6);
  for (let i = 1; i < chain.length; i++) {
    expect(fused[i]?.shape).toEqual(chain[i]?.shape);
    expect(await relativeError(fused[i] as tf.Tensor, chain[i] as tf.Tensor)).toBeLessThan(1e-5);
  }
  tf.dispose([...fused, ...chain, probe]);
  expect((await device.popErrorScope())?.message).toBeUndefined();
}

describe.skipIf(!webgpu)('fused elementwise programs on webgpu', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('RMSNorm: rows of 2048 and of 40 (fewer values than threads), 3-D input', async () => {
    await tf.setBackend('webgpu');
    for (const [shape, seed] of [
      [[2, 3, 2048], 1],
      [[5, 40], 2],
    ] as const) {
      const x = randomTensor([...shape], seed, 3);
      const weight = randomTensor([shape[shape.length - 1] as number], seed + 10) as tf.Tensor1D;
      await expectClose((input) => rmsNorm(input as tf.Tensor, weight, 1e-5), [x]);
      tf.dispose([x, weight]);
    }
  });

  it('rotary embedding with the head split: q (4 heads) and GQA k (2 heads), head dim 16', async () => {
    await tf.setBackend('webgpu');
    const [batch, steps, dim] = [2, 7, 16];
    const cos = randomTensor([batch, 1, steps, dim], 5) as tf.Tensor4D;
    const sin = randomTensor([batch, 1, steps, dim], 6) as tf.Tensor4D;
    for (const heads of [4, 2]) {
      const x = randomTensor([batch, steps, heads * dim], 7 + heads);
      const chainOp = (input: tf.Tensor) => {
        const split = tf.transpose(tf.reshape(input, [batch, steps, heads, dim]), [0, 2, 1, 3]);
        const [x1, x2] = tf.split(split, 2, 3);
        const rotated = tf.concat([tf.neg(x2 as tf.Tensor), x1 as tf.Tensor], 3);
        return tf.add(tf.mul(split, cos), tf.mul(rotated, sin));
      };
      const op = (input: tf.Tensor) =>
        useFusedElementwise() ? fusedRotarySplitHeads(input, cos, sin, heads) : chainOp(input);
      await expectClose(op, [x]);
      tf.dispose(x);
    }
    tf.dispose([cos, sin]);
  });

  it('SwiGLU: silu(gate) · up and both gradients', async () => {
    await tf.setBackend('webgpu');
    const gate = randomTensor([3, 5, 96], 11, 4);
    const up = randomTensor([3, 5, 96], 12, 2);
    const op = (g: tf.Tensor, u: tf.Tensor) =>
      useFusedElementwise() ? fusedSwiglu(g, u) : tf.mul(tf.mul(g, tf.sigmoid(g)), u);
    await expectClose(op as (...xs: tf.Tensor[]) => tf.Tensor, [gate, up]);
    tf.dispose([gate, up]);
  });

  it('a Llama gives the same logits and greedy tokens (KV cache) with the programs on and off', async () => {
    await tf.setBackend('webgpu');
    const config = parseLlamaConfig({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: 128,
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
      tie_word_embeddings: true,
      eos_token_id: 2,
    });
    const model = randomLlama(config, { seed: 5, scale: 0.3 });
    const prompt = [1, 17, 33, 49, 65];
    const outputs = async (fused: boolean) => {
      useFusedWebgpuKernels(fused);
      try {
        const logits = model.forward([prompt]);
        const values = await logits.data();
        logits.dispose();
        return { values, tokens: await model.generateGreedy(prompt, 8, { eosTokenIds: [] }) };
      } finally {
        useFusedWebgpuKernels(true);
      }
    };
    const fused = await outputs(true);
    const chains = await outputs(false);
    expect(fused.tokens).toEqual(chains.tokens);
    expect(
      await relativeError(
        tf.tensor(fused.values as Float32Array),
        tf.tensor(chains.values as Float32Array),
      ),
    ).toBeLessThan(2e-6);
    model.dispose();
  });

  it.each(REFERENCE_CASES)(
    "gives transformers' logits with the fused programs (%s, every reference sequence)",
    async (name) => {
      await tf.setBackend('webgpu');
      const { ref, logits: expectedAll, dir } = readReference(name);
      const { model } = await loadModel(dir, { skipTokenizer: true });
      for (const seq of ref.sequences) {
        const logits = model.forward([seq.input_ids]);
        const actual = (await logits.data()) as Float32Array;
        logits.dispose();
        const size = seq.shape.reduce((a, b) => a * b, 1);
        const expected = expectedAll.subarray(seq.logits_offset, seq.logits_offset + size);
        // The cpu parity tests' bound (llama-model.test.ts).
        expect(maxRelativeError(actual, expected)).toBeLessThanOrEqual(1e-4);
      }
      model.dispose();
    },
  );
});
