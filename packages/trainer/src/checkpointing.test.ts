import '@tensorflow/tfjs-backend-cpu';
import { DenseLinear, injectLora, loraLayers, setLoraTraining } from '@qlora/lora';
import { fixturePath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { forwardLossSum, headLossSum, prepareBatch } from './_train-forward';
import { lossGradients } from './checkpointing';
import type { LlamaModel } from './llama-model';
import { loadModel } from './load-model';
import { causalLmLoss } from './loss';

const T = 96;
const B = 2;
const ids = Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % 200);
const batch = {
  batchSize: B,
  seqLength: T,
  inputIds: ids,
  labels: ids.map((id, i) => (i % T < 10 ? -100 : id)),
  attentionMask: ids.map((_, i) => (i >= T + 80 ? 0 : 1)), // row 1 right-padded
};

let model: LlamaModel;
beforeAll(async () => {
  await tf.setBackend('cpu');
  ({ model } = await loadModel(fixturePath('trainer', 'mha-headdim-llama3'))); // 3 layers
  injectLora(model, { r: 4, alpha: 8, dropout: 0.1, seed: 2, initLoraWeights: false });
  setLoraTraining(model, true);
});

function resetDropout(): void {
  for (const l of loraLayers(model)) l.restoreDropoutState(0);
}

async function measure(gradientCheckpointing: boolean) {
  resetDropout();
  let result: ReturnType<typeof lossGradients> | undefined;
  const before = tf.memory().numTensors;
  const info = await tf.profile(() => {
    result = lossGradients(model, batch, { gradientCheckpointing, scale: 0.01 });
    return [];
  });
  const r = result as ReturnType<typeof lossGradients>;
  const grads = Object.fromEntries(
    Object.entries(r.grads).map(([k, g]) => [k, g.dataSync().slice()]),
  );
  tf.dispose(Object.values(r.grads));
  expect(tf.memory().numTensors).toBe(before); // nothing leaks
  return { loss: r.loss, grads, peakBytes: info.peakBytes };
}

describe('gradient checkpointing (per-layer recomputation)', () => {
  it('gives the same loss and gradients (bit for bit on cpu, with LoRA dropout) in less peak memory', async () => {
    const plain = await measure(false);
    const checkpointed = await measure(true);
    expect(checkpointed.loss).toBe(plain.loss);
    expect(Object.keys(checkpointed.grads)).toEqual(Object.keys(plain.grads));
    expect(Object.keys(plain.grads)).toHaveLength(3 * 7 * 2);
    for (const [name, g] of Object.entries(plain.grads))
      expect(checkpointed.grads[name], name).toEqual(g);
    // Peak tensor bytes of one micro-batch's forward + backward (tf.profile on cpu).
    console.log('peak bytes', { plain: plain.peakBytes, checkpointed: checkpointed.peakBytes });
    expect(checkpointed.peakBytes).toBeLessThan(0.75 * plain.peakBytes);
  });

  it('the training forward equals the inference forward where no padding is involved', () => {
    setLoraTraining(model, false);
    const rows = [ids.slice(0, T)];
    const prepared = prepareBatch(model, {
      batchSize: 1,
      seqLength: T,
      inputIds: rows[0] as number[],
      labels: rows[0] as number[],
      attentionMask: new Array(T).fill(1),
    });
    const ours = tf.tidy(() => forwardLossSum(model, prepared));
    const logits = model.forward(rows);
    const theirs = causalLmLoss(logits, rows, { reduction: 'sum' });
    expect(ours.dataSync()[0]).toBe(theirs.dataSync()[0]);
    tf.dispose([ours, logits, theirs]);
    prepared.dispose();
    setLoraTraining(model, true);
  });
});

describe('the chunked head loss', () => {
  it('gives the unchunked loss and dL/dhidden with chunks of 7 rows (uneven last chunk), leaking nothing', async () => {
    expect(model.lmHead).toBeInstanceOf(DenseLinear); // the chunked path, not the fallback
    const prepared = prepareBatch(model, batch);
    const hidden = tf.randomNormal([B, T, model.config.hiddenSize], 0, 1, 'float32', 5);
    try {
      const run = (chunkRows: number) =>
        tf.tidy(() => {
          const { value, grads } = tf.valueAndGrads((h: tf.Tensor) =>
            headLossSum(model, h, prepared, { chunkRows }),
          )([hidden]);
          return [value, grads[0] as tf.Tensor];
        });
      const before = tf.memory().numTensors;
      const [chunkedLoss, chunkedGrad] = run(7);
      const [wholeLoss, wholeGrad] = run(0);
      const loss = (await (chunkedLoss as tf.Tensor).data())[0] as number;
      const want = (await (wholeLoss as tf.Tensor).data())[0] as number;
      expect(Math.abs(loss - want)).toBeLessThan(1e-6 * Math.abs(want));
      const g = (await (chunkedGrad as tf.Tensor).data()) as Float32Array;
      const w = (await (wholeGrad as tf.Tensor).data()) as Float32Array;
      let diff = 0;
      let ref = 0;
      for (let i = 0; i < w.length; i++) {
        diff = Math.max(diff, Math.abs((g[i] as number) - (w[i] as number)));
        ref = Math.max(ref, Math.abs(w[i] as number));
      }
      expect(diff / ref).toBeLessThan(1e-5);
      tf.dispose([chunkedLoss, chunkedGrad, wholeLoss, wholeGrad] as tf.Tensor[]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      prepared.dispose();
      hidden.dispose();
    }
  });
});
