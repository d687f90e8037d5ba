import * as tf from '@tensorflow/tfjs-core';
import { convertibleWeight } from './_base-weight';
import {
  F16_COLUMN_TILE,
  F16_ROW_TILE,
  type F16Rows,
  f16MatMul,
  packRowsF16,
  requireF16MatMul,
} from './_webgpu-f16';
import type { Linear, LoraTargetModel } from './linear';

/**
 * A projection for evaluation on the f16 tensor cores of the webgpu backend: the weight is held
 * in f16 (each output channel scaled by a power of two first, so nothing overflows and only
 * values below ~2^-28 of their row's largest go subnormal), each input row is scaled and rounded the same way as it arrives, and Dawn's
 * subgroup matrices sum the f16 products in f32. The rounding to 11 significant bits is TF32's
 * precision; the cost against the f32 layer is measured in BENCHMARKS.md (issue 10). Evaluation
 * only (no gradient).
 *
 * @example
 * ```ts
 * await initBackend('webgpu', { f16TensorCores: true });
 * const half = F16Linear.fromLinear(denseProjection); // dense or NF4
 * const y = half.apply(x); // ≈ denseProjection.apply(x)
 * ```
 */
export class F16Linear implements Linear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  private readonly weight: F16Rows;

  private constructor(name: string, weight: F16Rows) {
    this.name = name;
    this.weight = weight;
    this.outFeatures = weight.rows;
    this.inFeatures = weight.cols;
  }

  /**
   * Rounds a dense or NF4 projection's weight to f16 (an NF4 weight is dequantized first). The
   * source layer is left as is.
   */
  static fromLinear(linear: Linear): F16Linear {
    requireF16MatMul(`F16Linear.fromLinear ${linear.name}`);
    const weightOf = convertibleWeight(linear, 'F16Linear.fromLinear');
    // tidy keeps the returned words and absmax and frees an NF4 layer's dequantized weight.
    const weight = tf.tidy(
      () => packRowsF16(weightOf(), F16_COLUMN_TILE) as unknown as tf.TensorContainer,
    ) as unknown as F16Rows;
    return new F16Linear(linear.name, weight);
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const leading = x.shape.slice(0, -1);
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      const y = f16MatMul(packRowsF16(flat, F16_ROW_TILE), this.weight);
      return tf.reshape(y, [...leading, this.outFeatures]);
    });
  }

  /** The f16 weight (int32 words, 2 halves each) and each output channel's absmax. */
  weights(): Record<string, tf.Tensor> {
    return { 'weight.f16': this.weight.words, 'weight.absmax': this.weight.absmax };
  }

  dispose(): void {
    this.weight.words.dispose();
    this.weight.absmax.dispose();
  }
}

/**
 * What {@link useF16Projections} reports.
 *
 * @example
 * ```ts
 * const { converted, parameters }: F16Report = useF16Projections(model);
 * ```
 */
export interface F16Report {
  /** Projections replaced. */
  converted: number;
  /** Parameters now held in f16. */
  parameters: number;
}

/**
 * Replaces every projection (dense or NF4) of a model by an {@link F16Linear} for evaluation on
 * the f16 tensor cores, freeing each source layer once converted. Merge an adapter first. webgpu
 * with `f16TensorCores` only; exact f32 stays the default everywhere else.
 *
 * @example
 * ```ts
 * await initBackend('webgpu', { f16TensorCores: true });
 * const { model } = await loadModel('./Llama-3.2-1B');
 * useF16Projections(model); // { converted: 112, parameters: 973078528 }
 * ```
 */
export function useF16Projections(model: LoraTargetModel): F16Report {
  requireF16MatMul('useF16Projections');
  let converted = 0;
  let parameters = 0;
  model.mapProjections((linear) => {
    if (linear instanceof F16Linear) return linear;
    const half = F16Linear.fromLinear(linear);
    linear.dispose();
    converted++;
    parameters += linear.inFeatures * linear.outFeatures;
    return half;
  });
  return { converted, parameters };
}
