import * as tf from '@tensorflow/tfjs-core';
import {
  type LoraEpilogue,
  type RightLayout,
  tiledMatMul,
  useTiledKernels,
} from './_webgpu-matmul';
import type { Linear } from './linear';

/**
 * A dense f32 linear layer with an `[out, in]` weight, as `nn.Linear(bias=False)` stores it: a
 * model's unquantized projections, and what a merged adapter leaves behind.
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
    [this.outFeatures, this.inFeatures] = weight.shape;
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const leading = x.shape.slice(0, -1);
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      return tf.reshape(this.matmul(flat), [...leading, this.outFeatures]);
    });
  }

  private matmul(x: tf.Tensor2D): tf.Tensor2D {
    const [rows] = x.shape;
    // A trainable weight needs tfjs's matMul gradient for W; the tiled path gives dx only.
    if (
      this.weight instanceof tf.Variable ||
      !useTiledKernels(rows, this.inFeatures, this.outFeatures, 'nk')
    ) {
      return tf.matMul(x, this.weight, false, true);
    }
    const op = tf.customGrad(((input: tf.Tensor) => ({
      value: tiledMatMul(input as tf.Tensor2D, this.weight, 'nk'),
      gradFunc: (dy: tf.Tensor) => tiledMatMul(dy as tf.Tensor2D, this.weight, 'kn'),
    })) as Parameters<typeof tf.customGrad>[0]);
    return op(x) as tf.Tensor2D;
  }

  /**
   * `dy · W` (`[..., out]` → `[..., in]`): the product the gradient of {@link DenseLinear.apply}
   * with respect to its input needs, for callers that write their own backward pass (a chunked
   * cross-entropy over the vocabulary head). On webgpu it runs the tiled WGSL kernel.
   *
   * @example
   * ```ts
   * const dx = head.applyTransposed(dLogits); // [rows, vocab] → [rows, hidden]
   * ```
   */
  applyTransposed(dy: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const leading = dy.shape.slice(0, -1);
      const flat = tf.reshape(dy, [-1, this.outFeatures]) as tf.Tensor2D;
      const [rows] = flat.shape;
      const product = useTiledKernels(rows, this.outFeatures, this.inFeatures, 'kn')
        ? tiledMatMul(flat, this.weight, 'kn')
        : tf.matMul(flat, this.weight);
      return tf.reshape(product, [...leading, this.inFeatures]);
    });
  }

  /**
   * `x · Wᵀ` (`'nk'`) or `x · W` (`'kn'`) through the tiled WGSL kernel, plus a LoRA term, when
   * that kernel serves this shape on the active backend (and W is not trained); otherwise
   * undefined. No gradient: for LoraLinear's fused forward and backward.
   *
   * @internal
   */
  tiledProduct(x: tf.Tensor2D, layout: RightLayout, lora?: LoraEpilogue): tf.Tensor2D | undefined {
    return this.tiles(x.shape[0], layout) ? tiledMatMul(x, this.weight, layout, lora) : undefined;
  }

  /** Whether {@link DenseLinear.tiledProduct} serves `rows` rows in `layout`. @internal */
  tiles(rows: number, layout: RightLayout): boolean {
    const [k, n] =
      layout === 'nk' ? [this.inFeatures, this.outFeatures] : [this.outFeatures, this.inFeatures];
    return !(this.weight instanceof tf.Variable) && useTiledKernels(rows, k, n, layout);
  }

  weights(): Record<string, tf.Tensor> {
    return { weight: this.weight };
  }

  dispose(): void {
    this.weight.dispose();
  }
}

/**
 * The dense f32 `[out, in]` weight of a projection, or undefined when it has none.
 *
 * @example
 * ```ts
 * denseWeightOf(new DenseLinear('p', w)); // w
 * ```
 */
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
