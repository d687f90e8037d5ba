import * as tf from '@tensorflow/tfjs-core';
import type { Linear } from './linear';

/** A dense `[out, in]` projection: what a merged adapter leaves behind. */
export class DenseWeightLinear implements Linear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: tf.Tensor2D;

  constructor(name: string, weight: tf.Tensor2D) {
    this.name = name;
    this.weight = weight;
    [this.outFeatures, this.inFeatures] = weight.shape;
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const leading = x.shape.slice(0, -1);
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      return tf.reshape(tf.matMul(flat, this.weight, false, true), [...leading, this.outFeatures]);
    });
  }

  weights(): Record<string, tf.Tensor> {
    return { weight: this.weight };
  }

  dispose(): void {
    this.weight.dispose();
  }
}

/** The dense f32 `[out, in]` weight of a projection, or undefined when it has none. */
export function denseWeightOf(linear: Linear): tf.Tensor2D | undefined {
  const weight = linear.weights().weight;
  if (
    weight === undefined ||
    weight.dtype !== 'float32' ||
    weight.rank !== 2 ||
    weight.shape[0] !== linear.outFeatures ||
    weight.shape[1] !== linear.inFeatures
  ) {
    return undefined;
  }
  return weight as tf.Tensor2D;
}
