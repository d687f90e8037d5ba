import * as tf from '@tensorflow/tfjs-core';

/**
 * A bias-free linear projection `y = x Wᵀ`, the unit that LoRA wraps. Every projection of the
 * Llama model is one of these, held in a mutable field so an adapter can replace it.
 *
 * @example
 * ```ts
 * // A wrapper that doubles q_proj's output; LoRA wraps the same way.
 * model.mapProjections((base, _layer, field) =>
 *   field !== 'qProj' ? base : {
 *     name: base.name, inFeatures: base.inFeatures, outFeatures: base.outFeatures,
 *     apply: (x) => tf.mul(base.apply(x), 2),
 *     weights: () => base.weights(),
 *     dispose: () => base.dispose(),
 *   });
 * ```
 */
export interface Linear {
  /** The Hugging Face weight prefix, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** `[..., inFeatures]` → `[..., outFeatures]`. Synchronous, so it runs inside `tf.tidy`. */
  apply(x: tf.Tensor): tf.Tensor;
  /** Tensors by their Hugging Face name suffix (e.g. `weight`), for saving and counting. */
  weights(): Record<string, tf.Tensor>;
  dispose(): void;
}

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
