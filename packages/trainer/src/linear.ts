import type { Linear } from '@qlora/lora';
import * as tf from '@tensorflow/tfjs-core';

// One definition of the projection interface, in @qlora/lora (LoRA and NF4 layers implement it);
// re-exported here because every LlamaModel projection is one.
export type { Linear } from '@qlora/lora';

/**
 * A dense f32 linear layer with an `[out, in]` weight, as `nn.Linear(bias=False)` stores it.
 *
 * @example
 * ```ts
 * const proj = new DenseLinear('q_proj', tf.tensor2d([[1, 0], [0, 2]]));
 * proj.apply(tf.tensor2d([[3, 4]])); // [[3, 8]]
 * ```
 */
export class DenseLinear implements Linear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** `[outFeatures, inFeatures]`. */
  readonly weight: tf.Tensor2D;

  constructor(name: string, weight: tf.Tensor2D) {
    this.name = name;
    this.weight = weight;
    const [outFeatures, inFeatures] = weight.shape;
    this.outFeatures = outFeatures;
    this.inFeatures = inFeatures;
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const leading = x.shape.slice(0, -1);
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      const y = tf.matMul(flat, this.weight, false, true);
      return tf.reshape(y, [...leading, this.outFeatures]);
    });
  }

  weights(): Record<string, tf.Tensor> {
    return { weight: this.weight };
  }

  dispose(): void {
    this.weight.dispose();
  }
}
