import * as tf from '@tensorflow/tfjs-core';
import { TrainerError } from './errors';
import type { LlamaModel } from './llama-model';
import { rotaryTables } from './rope';

// The training forward pass, split into embedding, decoder layers and head so that gradient
// checkpointing can recompute one layer at a time. The layer maths repeats LlamaModel.forward
// op for op (same tfjs ops in the same order, so the logits are bit-identical on cpu; a test
// checks it), with transformers' training conventions: position ids 0…T−1 (right padding) and
// padding keys masked.

const MASKED = -1e30;

/** A micro-batch prepared for the forward pass: ids, rotary tables, mask, shifted targets. */
export interface PreparedBatch {
  batch: number;
  steps: number;
  ids: tf.Tensor2D;
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  mask: tf.Tensor4D;
  /** `[B·(T−1)]` next-token targets (0 where ignored). */
  targets: tf.Tensor1D;
  /** `[B·(T−1)]` 1 where the target counts, else 0. */
  weights: tf.Tensor1D;
  /** Target tokens (labels ≠ −100 after the shift). */
  labelCount: number;
  dispose(): void;
}

/** Row-major `[B, T]` ids/labels/mask, as `collateBatch` makes them. */
export interface FlatBatch {
  batchSize: number;
  seqLength: number;
  inputIds: ArrayLike<number>;
  labels: ArrayLike<number>;
  attentionMask: ArrayLike<number>;
}

export function prepareBatch(model: LlamaModel, flat: FlatBatch): PreparedBatch {
  const batch = flat.batchSize;
  const steps = flat.seqLength;
  const headDim = model.config.headDim;
  const vocab = model.config.vocabSize;
  for (let i = 0; i < batch * steps; i++) {
    const id = flat.inputIds[i] as number;
    const label = flat.labels[i] as number;
    if (
      !(Number.isInteger(id) && id >= 0 && id < vocab) ||
      !(label === -100 || (Number.isInteger(label) && label >= 0 && label < vocab))
    ) {
      throw new TrainerError(
        'E_INPUT',
        `training batch: expected token ids and labels in [0, ${vocab}) (labels may be -100), got id ${id}, label ${label} at row ${Math.floor(i / steps)}, position ${i % steps}`,
      );
    }
  }
  if (steps < 2) {
    throw new TrainerError(
      'E_INPUT',
      `training batch: expected sequences of at least 2 tokens, got ${steps}`,
    );
  }
  const positions = new Int32Array(batch * steps);
  for (let b = 0; b < batch; b++) for (let t = 0; t < steps; t++) positions[b * steps + t] = t;
  const { cos, sin } = rotaryTables(model.inverseFrequencies, positions);
  const additive = new Float32Array(batch * steps * steps);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < steps; i++) {
      const base = (b * steps + i) * steps;
      for (let j = 0; j < steps; j++) {
        if (j > i || flat.attentionMask[b * steps + j] === 0) additive[base + j] = MASKED;
      }
    }
  }
  // ForCausalLMLoss: position t predicts labels[t + 1]; the last position has no target.
  const shifted = batch * (steps - 1);
  const targets = new Int32Array(shifted);
  const weights = new Float32Array(shifted);
  let labelCount = 0;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < steps - 1; t++) {
      const label = flat.labels[b * steps + t + 1] as number;
      if (label !== -100) {
        targets[b * (steps - 1) + t] = label;
        weights[b * (steps - 1) + t] = 1;
        labelCount++;
      }
    }
  }
  const tensors = {
    ids: tf.tensor2d(Int32Array.from(flat.inputIds), [batch, steps], 'int32'),
    cos: tf.tensor4d(cos, [batch, 1, steps, headDim]),
    sin: tf.tensor4d(sin, [batch, 1, steps, headDim]),
    mask: tf.tensor4d(additive, [batch, 1, steps, steps]),
    targets: tf.tensor1d(targets, 'int32'),
    weights: tf.tensor1d(weights),
  };
  return {
    batch,
    steps,
    ...tensors,
    labelCount,
    dispose: () => tf.dispose(Object.values(tensors)),
  };
}

function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(weight, tf.mul(x, tf.rsqrt(tf.add(variance, eps))));
}

function rotateHalf(x: tf.Tensor4D): tf.Tensor4D {
  const half = x.shape[3] / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  return tf.concat([tf.neg(x2 as tf.Tensor), x1 as tf.Tensor], 3) as tf.Tensor4D;
}

function applyRotary(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return tf.add(tf.mul(x, cos), tf.mul(rotateHalf(x), sin)) as tf.Tensor4D;
}

/** `[B, T, H]` token embeddings (no gradient: the embedding is frozen). */
export function embed(model: LlamaModel, prepared: PreparedBatch): tf.Tensor3D {
  return tf.gather(model.embedTokens, prepared.ids) as unknown as tf.Tensor3D;
}

/** One decoder layer, `[B, T, H]` → `[B, T, H]`. */
export function decoderLayer(
  model: LlamaModel,
  index: number,
  hidden: tf.Tensor,
  prepared: PreparedBatch,
): tf.Tensor3D {
  const config = model.config;
  const layer = model.layers[index];
  if (layer === undefined) throw new RangeError(`no layer ${index}`);
  const { batch, steps, cos: cosT, sin: sinT, mask: maskT } = prepared;
  const headDim = config.headDim;
  const groups = config.numAttentionHeads / config.numKeyValueHeads;
  const scale = headDim ** -0.5;
  return tf.tidy(() => {
    const splitHeads = (x: tf.Tensor, heads: number): tf.Tensor4D =>
      tf.transpose(tf.reshape(x, [batch, steps, heads, headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
    const normed = rmsNorm(hidden, layer.inputLayernorm, config.rmsNormEps);
    const q = applyRotary(
      splitHeads(layer.qProj.apply(normed), config.numAttentionHeads),
      cosT,
      sinT,
    );
    const k = applyRotary(
      splitHeads(layer.kProj.apply(normed), config.numKeyValueHeads),
      cosT,
      sinT,
    );
    const v = splitHeads(layer.vProj.apply(normed), config.numKeyValueHeads);
    const kvHeads = config.numKeyValueHeads;
    const grouped = tf.reshape(q, [batch, kvHeads, groups * steps, headDim]);
    const rawScores = tf.reshape(tf.matMul(grouped, k, false, true), [
      batch,
      config.numAttentionHeads,
      steps,
      steps,
    ]);
    const probs = tf.softmax(tf.add(tf.mul(rawScores, scale), maskT));
    const context = tf.reshape(
      tf.matMul(tf.reshape(probs, [batch, kvHeads, groups * steps, steps]), v),
      [batch, config.numAttentionHeads, steps, headDim],
    );
    const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [
      batch,
      steps,
      config.numAttentionHeads * headDim,
    ]);
    const attended = tf.add(hidden, layer.oProj.apply(merged));
    const normed2 = rmsNorm(attended, layer.postAttentionLayernorm, config.rmsNormEps);
    const gate = layer.gateProj.apply(normed2);
    const up = layer.upProj.apply(normed2);
    return tf.add(
      attended,
      layer.downProj.apply(tf.mul(tf.mul(gate, tf.sigmoid(gate)), up)),
    ) as tf.Tensor3D;
  });
}

/** `[B, T, vocab]` logits from the last hidden state. */
export function head(model: LlamaModel, hidden: tf.Tensor): tf.Tensor3D {
  return tf.tidy(
    () => model.lmHead.apply(rmsNorm(hidden, model.norm, model.config.rmsNormEps)) as tf.Tensor3D,
  );
}

/**
 * Σ cross-entropy over the target tokens (a scalar): logits of positions 0…T−2 against labels
 * 1…T−1, −100 ignored, log-softmax in f32 — transformers' `ForCausalLMLoss` with
 * `reduction='sum'`.
 */
export function lossSum(logits: tf.Tensor3D, prepared: PreparedBatch): tf.Scalar {
  return tf.tidy(() => {
    const { batch, steps } = prepared;
    const vocab = logits.shape[2];
    const shifted = tf.reshape(tf.slice(logits, [0, 0, 0], [batch, steps - 1, vocab]), [
      batch * (steps - 1),
      vocab,
    ]);
    const logProbs = tf.logSoftmax(shifted);
    const picked = tf.sum(tf.mul(logProbs, tf.oneHot(prepared.targets, vocab)), 1);
    return tf.neg(tf.sum(tf.mul(picked, prepared.weights))) as tf.Scalar;
  });
}

/** The whole forward: Σ token losses of a prepared micro-batch. */
export function forwardLossSum(model: LlamaModel, prepared: PreparedBatch): tf.Scalar {
  return tf.tidy(() => {
    let hidden: tf.Tensor = embed(model, prepared);
    for (let i = 0; i < model.layers.length; i++) hidden = decoderLayer(model, i, hidden, prepared);
    return lossSum(head(model, hidden), prepared);
  });
}
