import * as tf from '@tensorflow/tfjs-core';
import { selectTargets } from './_select-targets';
import { TrainerError } from './errors';

/**
 * Options of {@link causalLmLoss}.
 *
 * @example
 * ```ts
 * const options: CausalLmLossOptions = { reduction: 'sum' };
 * ```
 */
export interface CausalLmLossOptions {
  /** `'mean'` over the target tokens (default) or `'sum'` (divide by `num_items_in_batch` yourself). */
  reduction?: 'mean' | 'sum';
}

/**
 * transformers' `ForCausalLMLoss`: logits `[B, T, V]` at position t are scored against
 * `labels[t + 1]` (labels right-padded by one −100 and shifted left), cross-entropy over an f32
 * log-softmax, positions labelled −100 ignored. Returns a scalar tensor (the caller disposes it);
 * a mean over zero target tokens is NaN, as in torch.
 *
 * @example
 * ```ts
 * const logits = model.forward([[1, 5, 9, 2]]);
 * const loss = causalLmLoss(logits, [[-100, -100, 9, 2]]); // mean over 2 targets (9 and 2)
 * loss.dataSync()[0]; // e.g. 4.87
 * ```
 */
export function causalLmLoss(
  logits: tf.Tensor3D,
  labels: readonly (readonly number[])[],
  options: CausalLmLossOptions = {},
): tf.Scalar {
  const [batch, steps, vocab] = logits.shape;
  if (labels.length !== batch || labels.some((row) => row.length !== steps)) {
    throw new TrainerError(
      'E_INPUT',
      `labels: expected [${batch}, ${steps}] to match the logits, got ${labels.length} rows of lengths ${labels.map((r) => r.length).join(', ')}`,
    );
  }
  const targets = new Int32Array(batch * (steps - 1));
  const weights = new Float32Array(batch * (steps - 1));
  let count = 0;
  labels.forEach((row, b) => {
    for (let t = 0; t < steps - 1; t++) {
      const label = row[t + 1] as number;
      if (label === -100) continue;
      if (!Number.isInteger(label) || label < 0 || label >= vocab) {
        throw new TrainerError(
          'E_INPUT',
          `label: expected -100 or an id in [0, ${vocab}), got ${label}`,
        );
      }
      targets[b * (steps - 1) + t] = label;
      weights[b * (steps - 1) + t] = 1;
      count++;
    }
  });
  return tf.tidy(() => {
    const shifted = tf.reshape(tf.slice(logits, [0, 0, 0], [batch, steps - 1, vocab]), [
      batch * (steps - 1),
      vocab,
    ]);
    const picked = selectTargets(
      tf.logSoftmax(shifted) as tf.Tensor2D,
      tf.tensor1d(targets, 'int32'),
    );
    const sum = tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(weights))));
    return (options.reduction === 'sum' ? sum : tf.div(sum, tf.scalar(count))) as tf.Scalar;
  });
}
