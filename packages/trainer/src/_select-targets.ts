import * as tf from '@tensorflow/tfjs-core';

/**
 * `logProbs[i, targets[i]]` for every row: the values of `Σ_v logProbs[i, v] · oneHot(targets)[i, v]`
 * (the other terms are ±0) without the two `[rows, vocab]` f32 tensors that product makes and
 * keeps for backward (2 × 2 GB at a 1B model's 128256-token vocabulary and 4096 tokens). The
 * forward gathers one value per row (indices below the vocabulary size, exact on every backend);
 * the backward scatters `dy` into a zero `[rows, vocab]` gradient, the tensor logSoftmax's
 * gradient needs anyway.
 */
/**
 * `[rows, 2]` `(row, targets[row])` pairs for gatherND / scatterND: each coordinate is below
 * 2^24, so backends that read indices as f32 (webgpu) still address exactly; a flat
 * row·vocab + target index would not be.
 */
export function targetPositions(targets: tf.Tensor1D): tf.Tensor2D {
  return tf.stack([tf.range(0, targets.shape[0], 1, 'int32'), targets], 1) as tf.Tensor2D;
}

export function selectTargets(logProbs: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [rows, vocab] = logProbs.shape;
  // (row, target) pairs: each coordinate is below 2^24, so backends that read indices as f32
  // (webgpu) still address exactly; a flat row·vocab + target index would not be. (A gather with
  // batchDims = 1 would do too, but tfjs-wasm 4.22 reads out of bounds with it.)
  const select = tf.customGrad(((lp: tf.Tensor, save: tf.GradSaveFunc) => {
    const positions = targetPositions(targets);
    save([positions]);
    return {
      value: tf.gatherND(lp, positions),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.scatterND(saved[0] as tf.Tensor, dy, [rows, vocab]),
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return select(logProbs) as tf.Tensor1D;
}
