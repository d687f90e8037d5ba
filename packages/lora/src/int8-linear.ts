import * as tf from '@tensorflow/tfjs-core';
import { convertibleWeight } from './_base-weight';
import {
  INT8_ROW_TILE,
  type Int8Rows,
  int8MatMul,
  int8MatMulUnsupportedReason,
  quantizeRowsInt8,
} from './_webgpu-int8';
import { LoraError } from './errors';
import type { Linear, LoraTargetModel } from './linear';

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
  /** Where the integer product runs. */
  readonly arithmetic: Int8Arithmetic;
  private readonly weight: Int8Rows | EmulatedRows;

  private constructor(name: string, weight: Int8Rows | EmulatedRows, arithmetic: Int8Arithmetic) {
    this.name = name;
    this.weight = weight;
    this.arithmetic = arithmetic;
    this.outFeatures = weight.rows;
    this.inFeatures = weight.cols;
  }

  /**
   * Quantizes a dense or NF4 projection (the NF4 weight is dequantized first, so the int8 codes
   * approximate what the 4-bit layer computes). The source layer is left as is.
   */
  static fromLinear(linear: Linear, options: Int8Options = {}): Int8Linear {
    const arithmetic = options.arithmetic ?? 'tensor-cores';
    if (arithmetic === 'tensor-cores') requireInt8Support(`Int8Linear.fromLinear ${linear.name}`);
    const weightOf = convertibleWeight(linear, 'Int8Linear.fromLinear');
    // tidy keeps the tensors of the returned object (codes, absmax) and frees the NF4 dequant.
    const weight = tf.tidy(() => {
      const w = weightOf();
      return (arithmetic === 'emulated'
        ? emulatedRows(w)
        : quantizeRowsInt8(w, WEIGHT_ROW_TILE)) as unknown as tf.TensorContainer;
    }) as unknown as Int8Rows | EmulatedRows;
    return new Int8Linear(linear.name, weight, arithmetic);
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const leading = x.shape.slice(0, -1);
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      const y =
        this.arithmetic === 'emulated'
          ? emulatedProduct(emulatedRows(flat), this.weight as EmulatedRows)
          : int8MatMul(quantizeRowsInt8(flat, INT8_ROW_TILE), this.weight as Int8Rows);
      return tf.reshape(y, [...leading, this.outFeatures]);
    });
  }

  /** The int8 codes (int32 words, 4 per word; f32 values when emulated) and the absmax. */
  weights(): Record<string, tf.Tensor> {
    return { 'weight.int8': this.codes(), 'weight.absmax': this.weight.absmax };
  }

  dispose(): void {
    this.codes().dispose();
    this.weight.absmax.dispose();
  }

  private codes(): tf.Tensor {
    return 'words' in this.weight ? this.weight.words : this.weight.codes;
  }
}

/**
 * Where an {@link Int8Linear}'s integer product runs: `'tensor-cores'` (webgpu with Dawn's int8
 * subgroup matrices, exact in i32) or `'emulated'` (any backend: the same codes and scales through
 * an f32 matmul, exact while |Σ| < 2^24; slow, for measuring W8A8's accuracy cost anywhere).
 *
 * @example
 * ```ts
 * const arithmetic: Int8Arithmetic = 'emulated';
 * ```
 */
export type Int8Arithmetic = 'tensor-cores' | 'emulated';

/**
 * Options of {@link Int8Linear.fromLinear} and {@link useInt8Projections}.
 *
 * @example
 * ```ts
 * useInt8Projections(model, { arithmetic: 'emulated' }); // on cpu, to measure the accuracy cost
 * ```
 */
export interface Int8Options {
  /** Default `'tensor-cores'`. */
  arithmetic?: Int8Arithmetic;
}

/** Row-quantized int8 codes held as f32 integers `[rows, cols]`, for the emulated product. */
interface EmulatedRows {
  readonly codes: tf.Tensor2D;
  readonly absmax: tf.Tensor1D;
  readonly rows: number;
  readonly cols: number;
}

// The quantizer of _webgpu-int8.ts in tf ops: absmax per row, round-half-even(x · (127 / absmax))
// clamped to ±127 (tf.round rounds half to even, as WGSL's round).
function emulatedRows(x: tf.Tensor2D): EmulatedRows {
  const [rows, cols] = x.shape;
  const absmax = tf.max(tf.abs(x), 1) as tf.Tensor1D;
  const inverse = tf.where(
    tf.greater(absmax, 0),
    tf.div(tf.scalar(127), absmax),
    tf.zerosLike(absmax),
  );
  const codes = tf.clipByValue(tf.round(tf.mul(x, tf.expandDims(inverse, 1))), -127, 127);
  return { codes: codes as tf.Tensor2D, absmax, rows, cols };
}

// The kernel's epilogue in tf ops: f32(Σ) · (absmax_x · absmax_w · f32(1 / 127²)).
function emulatedProduct(x: EmulatedRows, w: EmulatedRows): tf.Tensor2D {
  const sums = tf.matMul(x.codes, w.codes, false, true);
  const outer = tf.mul(tf.expandDims(x.absmax, 1), tf.expandDims(w.absmax, 0));
  return tf.mul(sums, tf.mul(outer, tf.scalar(Math.fround(1 / 16129)))) as tf.Tensor2D;
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
export function useInt8Projections(model: LoraTargetModel, options: Int8Options = {}): Int8Report {
  if ((options.arithmetic ?? 'tensor-cores') === 'tensor-cores') {
    requireInt8Support('useInt8Projections');
  }
  let converted = 0;
  let parameters = 0;
  model.mapProjections((linear) => {
    if (linear instanceof Int8Linear) return linear;
    const int8 = Int8Linear.fromLinear(linear, options);
    linear.dispose();
    converted++;
    parameters += linear.inFeatures * linear.outFeatures;
    return int8;
  });
  return { converted, parameters };
}
