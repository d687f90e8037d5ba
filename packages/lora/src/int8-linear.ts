import * as tf from '@tensorflow/tfjs-core';
import {
  INT8_ROW_TILE,
  type Int8Rows,
  int8MatMul,
  int8MatMulUnsupportedReason,
  quantizeRowsInt8,
} from './_webgpu-int8';
import { denseWeightOf } from './dense-linear';
import { LoraError } from './errors';
import type { Linear, LoraTargetModel } from './linear';
import { LoraLinear } from './lora-linear';
import { Nf4Linear } from './nf4-linear';

// Weight rows are padded to the product's widest tile (128 columns of the output).
const WEIGHT_ROW_TILE = 128;

/**
 * A projection for W8A8 inference on the int8 tensor cores of the webgpu backend: the weight is
 * quantized once to int8 with one absmax per output channel, each input row (token) to int8 with
 * its own absmax as it arrives, and `y = (xq · wqᵀ) · absmax_x · absmax_w / 127²` is computed
 * exactly in int32 by Dawn's subgroup matrices. Evaluation only (no gradient). An approximation of
 * the f32 layer: the cost is measured in BENCHMARKS.md (issue 10, W8A8 study).
 *
 * @example
 * ```ts
 * await initBackend('webgpu', { int8TensorCores: true });
 * const q = Int8Linear.fromLinear(denseProjection); // dense or NF4
 * const y = q.apply(x); // ≈ denseProjection.apply(x)
 * ```
 */
export class Int8Linear implements Linear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  private readonly weight: Int8Rows;

  private constructor(name: string, weight: Int8Rows) {
    this.name = name;
    this.weight = weight;
    this.outFeatures = weight.rows;
    this.inFeatures = weight.cols;
  }

  /**
   * Quantizes a dense or NF4 projection (the NF4 weight is dequantized first, so the int8 codes
   * approximate what the 4-bit layer computes). The source layer is left as is.
   */
  static fromLinear(linear: Linear): Int8Linear {
    requireInt8Support(`Int8Linear.fromLinear ${linear.name}`);
    if (linear instanceof LoraLinear) {
      throw new LoraError(
        'E_ALREADY_INJECTED',
        `Int8Linear.fromLinear: expected a projection without an adapter, got one on ${linear.name}. Hint: merge it first (mergeAndUnload).`,
      );
    }
    const dense = linear instanceof Nf4Linear ? undefined : denseWeightOf(linear);
    if (!(linear instanceof Nf4Linear) && dense === undefined) {
      throw new LoraError(
        'E_BASE_WEIGHT',
        `Int8Linear.fromLinear ${linear.name}: expected a dense f32 [${linear.outFeatures}, ${linear.inFeatures}] or NF4 weight, got ${Object.keys(linear.weights()).join(', ') || 'none'}`,
      );
    }
    // tidy keeps the tensors of the returned object (codes, absmax) and frees the NF4 dequant.
    const weight = tf.tidy(
      () =>
        quantizeRowsInt8(
          dense ?? (linear as Nf4Linear).dequantize(),
          WEIGHT_ROW_TILE,
        ) as unknown as tf.TensorContainer,
    ) as unknown as Int8Rows;
    return new Int8Linear(linear.name, weight);
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const leading = x.shape.slice(0, -1);
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      const y = int8MatMul(quantizeRowsInt8(flat, INT8_ROW_TILE), this.weight);
      return tf.reshape(y, [...leading, this.outFeatures]);
    });
  }

  /** The int8 codes (int32 words, 4 per word) and the per-channel absmax. */
  weights(): Record<string, tf.Tensor> {
    return { 'weight.int8': this.weight.codes, 'weight.absmax': this.weight.absmax };
  }

  dispose(): void {
    this.weight.codes.dispose();
    this.weight.absmax.dispose();
  }
}

function requireInt8Support(what: string): void {
  const reason = int8MatMulUnsupportedReason();
  if (reason !== undefined) {
    throw new LoraError(
      'E_OPTIONS',
      `${what}: expected the webgpu backend with int8 subgroup matrices (i8 × i8 → i32, 16 × 16 × 32, subgroups of 32), got ${reason}. Hint: start it with initBackend('webgpu', { int8TensorCores: true }) on a GPU whose Dawn adapter offers chromium-experimental-subgroup-matrix (NVIDIA through Vulkan).`,
    );
  }
}

/**
 * What {@link useInt8Projections} reports.
 *
 * @example
 * ```ts
 * const { converted, parameters }: Int8Report = useInt8Projections(model);
 * ```
 */
export interface Int8Report {
  /** Projections replaced. */
  converted: number;
  /** Parameters now held in int8. */
  parameters: number;
}

/**
 * Replaces every projection (dense or NF4) of a model by an {@link Int8Linear} for W8A8
 * evaluation on the int8 tensor cores, freeing each source layer once converted. Merge an
 * adapter first. webgpu with `int8TensorCores` only; exact f32 stays the default everywhere else.
 *
 * @example
 * ```ts
 * await initBackend('webgpu', { int8TensorCores: true });
 * const { model } = await loadModel('./Llama-3.2-1B');
 * useInt8Projections(model); // { converted: 112, parameters: 973078528 }
 * ```
 */
export function useInt8Projections(model: LoraTargetModel): Int8Report {
  requireInt8Support('useInt8Projections');
  let converted = 0;
  let parameters = 0;
  model.mapProjections((linear) => {
    if (linear instanceof Int8Linear) return linear;
    const int8 = Int8Linear.fromLinear(linear);
    linear.dispose();
    converted++;
    parameters += linear.inFeatures * linear.outFeatures;
    return int8;
  });
  return { converted, parameters };
}
