import * as tf from '@tensorflow/tfjs-core';
import {
  F16_COLUMN_TILE,
  F16_ROW_TILE,
  f16MatMul,
  packRowsF16,
  requireF16MatMul,
} from './_webgpu-f16';
import { DenseLinear } from './dense-linear';
import type { Linear } from './linear';
import { Nf4Linear } from './nf4-linear';

let f16BaseProducts = false;

/**
 * Switches the frozen base's products of LoRA training to the f16 tensor cores (webgpu with
 * `f16TensorCores`): in every unmerged `LoraLinear` over a dense or NF4 base (with or without
 * dropout), `x·Wᵀ` forward and `dy·W` for dx round both operands to f16 (each row scaled by a
 * power of two, f32 sums; TF32's precision), while the LoRA branch, its gradients, the optimizer and everything else stay f32.
 * The base weight is dequantized and rounded per use, so the 4-bit base keeps its memory. A
 * mixed-precision mode in the spirit of PyTorch's TF32, off by default: exact f32 training is
 * the default, and the losses it gives are compared with f32 in BENCHMARKS.md. Throws where the
 * device has no f16 subgroup matrices.
 *
 * @example
 * ```ts
 * await initBackend('webgpu', { f16TensorCores: true });
 * useF16BaseProducts(true);
 * await train(model, examples, options); // base products on the f16 tensor cores
 * ```
 */
export function useF16BaseProducts(on: boolean): void {
  if (on) requireF16MatMul('useF16BaseProducts');
  f16BaseProducts = on;
}

/**
 * The base product of a LoRA layer on the f16 tensor cores, when {@link useF16BaseProducts} is on
 * and the base is dense or NF4: `x·Wᵀ` (`'nk'`) or `x·W` (`'kn'`, dx). Undefined otherwise.
 * @internal
 */
export function f16BaseProduct(
  base: Linear,
  x: tf.Tensor2D,
  layout: 'nk' | 'kn',
): tf.Tensor2D | undefined {
  if (!f16BaseProducts || tf.getBackend() !== 'webgpu') return undefined;
  if (!(base instanceof DenseLinear || base instanceof Nf4Linear)) return undefined;
  return tf.tidy(() => {
    const weight = base instanceof Nf4Linear ? base.dequantize() : base.weight;
    const right = layout === 'nk' ? weight : (tf.transpose(weight) as tf.Tensor2D);
    return f16MatMul(packRowsF16(x, F16_ROW_TILE), packRowsF16(right, F16_COLUMN_TILE));
  });
}

/**
 * `base.apply(x)` with the base's products on the f16 tensor cores (forward `x·Wᵀ`, dx `dy·W`),
 * for the LoRA layers that cannot take the fused path (dropout > 0, few rows). Undefined when
 * {@link useF16BaseProducts} is off or the base is neither dense nor NF4.
 * @internal
 */
export function f16BaseApply(base: Linear, x: tf.Tensor): tf.Tensor | undefined {
  if (!f16BaseProducts || tf.getBackend() !== 'webgpu') return undefined;
  if (!(base instanceof DenseLinear || base instanceof Nf4Linear)) return undefined;
  const leading = x.shape.slice(0, -1);
  const op = tf.customGrad(((input: tf.Tensor2D) => ({
    value: f16BaseProduct(base, input, 'nk') as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor2D) => f16BaseProduct(base, dy, 'kn') as tf.Tensor2D,
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = op(tf.reshape(x, [-1, base.inFeatures]));
  return tf.reshape(y, [...leading, base.outFeatures]);
}
