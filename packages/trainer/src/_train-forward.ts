import { DenseLinear } from '@qlora/lora';
import * as tf from '@tensorflow/tfjs-core';
import { attentionInputs, decoderLayerForward, headLogits, rmsNorm } from './_decoder-layer';
import { checkDeviceFits } from './_device-limits';
import { selectTargets, targetPositions } from './_select-targets';
import { SETTINGS, sequenceTooLong, TRAIN_LIMITS } from './_sequence-limits';
import { TrainerError } from './errors';
import type { LlamaModel } from './llama-model';

// The training forward pass, split into embedding, decoder layers and head so that gradient
// checkpointing can recompute one layer at a time. The layer maths is LlamaModel.forward's own
// (_decoder-layer.ts), so the logits are bit-identical to inference on cpu (a test checks it),
// with transformers' training conventions: position ids 0…T−1 (right padding) and padding keys
// masked.

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
  if (steps > model.config.maxPositionEmbeddings) {
    throw sequenceTooLong(
      model,
      'training batch',
      `sequences of ${steps} tokens`,
      `lower ${SETTINGS.trainMaxLength} to at most ${model.config.maxPositionEmbeddings}`,
    );
  }
  checkDeviceFits(model.config, { batch, steps }, TRAIN_LIMITS);
  const positions = new Int32Array(batch * steps);
  for (let b = 0; b < batch; b++) for (let t = 0; t < steps; t++) positions[b * steps + t] = t;
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
    ...attentionInputs(model, {
      batch,
      steps,
      past: 0,
      positions,
      keyMask: (b, j) => flat.attentionMask[b * steps + j],
    }),
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
  const layer = model.layers[index];
  if (layer === undefined) throw new RangeError(`no layer ${index}`);
  return decoderLayerForward(model.config, layer, hidden, prepared);
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
    const picked = selectTargets(logProbs as tf.Tensor2D, prepared.targets);
    return tf.neg(tf.sum(tf.mul(picked, prepared.weights))) as tf.Scalar;
  });
}

/** Logits per chunk of the chunked head loss: 2^26 f32 values (256 MiB) at most. */
const CHUNK_LOGITS = 2 ** 26;

/**
 * Options of {@link headLossSum}.
 */
export interface HeadLossOptions {
  /** Rows of `[rows, vocab]` logits alive at once (default: 2^26 / vocab); `0`: unchunked. */
  chunkRows?: number;
}

/**
 * `lossSum(headLogits(model, hidden))`, computed a chunk of rows at a time when the head is a
 * frozen dense projection: the `[B·(T−1), vocab]` logits, their log-softmax and their gradient
 * (2.1 GB each at a 1B model's 128k vocabulary and 4096 tokens) never exist whole; the backward
 * recomputes each chunk's logits (one more head matmul) and returns `dL/dhidden`. The loss is the
 * same sum of the same per-row values; only the rounding of the gradient's softmax differs.
 */
export function headLossSum(
  model: LlamaModel,
  hidden: tf.Tensor,
  prepared: PreparedBatch,
  options: HeadLossOptions = {},
): tf.Scalar {
  const head = model.lmHead;
  const vocab = model.config.vocabSize;
  const chunk = options.chunkRows ?? Math.max(1, Math.floor(CHUNK_LOGITS / vocab));
  if (chunk <= 0 || !(head instanceof DenseLinear) || head.weight instanceof tf.Variable) {
    return lossSum(headLogits(model, hidden), prepared);
  }
  return tf.tidy(() => {
    const { batch, steps } = prepared;
    const width = hidden.shape[2] as number;
    const normed = rmsNorm(hidden, model.norm, model.config.rmsNormEps);
    const rows = tf.reshape(tf.slice(normed, [0, 0, 0], [batch, steps - 1, width]), [
      batch * (steps - 1),
      width,
    ]);
    return chunkedCrossEntropySum(rows as tf.Tensor2D, head, prepared, chunk);
  });
}

/** `−Σ_i w_i · log_softmax(x_i · Wᵀ)[t_i]` over chunks of rows, with its own backward for `x`. */
function chunkedCrossEntropySum(
  rows: tf.Tensor2D,
  head: DenseLinear,
  prepared: PreparedBatch,
  chunk: number,
): tf.Scalar {
  const [count] = rows.shape;
  const vocab = head.outFeatures;
  const spans: [number, number][] = [];
  for (let start = 0; start < count; start += chunk) {
    spans.push([start, Math.min(chunk, count - start)]);
  }
  const targetsOf = (start: number, size: number) => tf.slice(prepared.targets, start, size);
  const op = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x]);
    let total: tf.Tensor = tf.scalar(0);
    for (const [start, size] of spans) {
      const next = tf.tidy(() => {
        const logProbs = tf.logSoftmax(head.apply(tf.slice(x, [start, 0], [size, -1])));
        const picked = selectTargets(logProbs as tf.Tensor2D, targetsOf(start, size));
        const weights = tf.slice(prepared.weights, start, size);
        return tf.sub(total, tf.sum(tf.mul(picked, weights)));
      });
      total.dispose();
      total = next;
    }
    return {
      value: total,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const input = saved[0] as tf.Tensor;
        const parts = spans.map(([start, size]) =>
          tf.tidy(() => {
            // d(−w·log_softmax[t])/dlogits = w · (softmax − onehot(t)), times the upstream dy.
            const probs = tf.softmax(head.apply(tf.slice(input, [start, 0], [size, -1])));
            const weights = tf.mul(tf.slice(prepared.weights, start, size), dy);
            const onehot = tf.scatterND(targetPositions(targetsOf(start, size)), tf.ones([size]), [
              size,
              vocab,
            ]);
            const dLogits = tf.mul(tf.sub(probs, onehot), tf.expandDims(weights, 1));
            return head.applyTransposed(dLogits);
          }),
        );
        const dx = parts.length === 1 ? (parts[0] as tf.Tensor) : tf.concat(parts, 0);
        if (parts.length > 1) tf.dispose(parts);
        return dx;
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(rows) as tf.Scalar;
}

/** The whole forward: Σ token losses of a prepared micro-batch. */
export function forwardLossSum(model: LlamaModel, prepared: PreparedBatch): tf.Scalar {
  return tf.tidy(() => {
    let hidden: tf.Tensor = embed(model, prepared);
    for (let i = 0; i < model.layers.length; i++) hidden = decoderLayer(model, i, hidden, prepared);
    return headLossSum(model, hidden, prepared);
  });
}
