import {
  blockAbsmax,
  FP4_CODE,
  fromBnbTensors,
  NF4_CODE,
  type Quantized4bit,
  type QuantState,
  type TensorRecord,
  toBnbTensors,
} from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';
import { dequantizeOnCpu } from './_cpu-kernel';
import { LoraError } from './errors';
import type { Linear } from './linear';

// Element p (0..7) of an int32 word sits in byte p >> 1 (little-endian word), high nibble for
// even p (bitsandbytes puts element 2j in bits 7..4 of byte j): nibble p is bits s..s+3 with
// these shifts. tfjs has no shift op, and some backends (wasm) divide int32 in float32, exact
// only below 2^24; integer `mod` and `sub` are exact everywhere. So the nibble is extracted as
// (word mod 2^(s+4) − word mod 2^s) / 2^s, whose dividend nibble·2^s is exact in float32; the
// top nibble (s = 28) as (word − word mod 2^28) / 2^28 ∈ [−8, 7], then mod 16.
// Column order of the shifts is [4, 0, 12, 8, 20, 16, 28, 24]; the top one is handled apart.
const LOW_SHIFTS = [4, 0, 12, 8, 20, 16, 24];

/**
 * A frozen 4-bit linear layer (bitsandbytes `Linear4bit` layout, no bias). The packed codes live
 * on the backend as int32 words (8 codes each, 0.5 byte per parameter) next to the float32
 * absmax of each block (double-quantized absmax is reconstructed once, exactly as bitsandbytes
 * does). `apply` dequantizes inside a custom-gradient op: the f32 weight exists only while the
 * matmul runs, and the backward pass dequantizes again (`dx = dy · W`), so no f32 copy stays
 * alive between calls and no gradient reaches the codes. Dequantization is bit-exact with
 * `@qlora/nf4`'s `dequantize4bit` on float32 backends that round each product once (cpu).
 *
 * @example
 * ```ts
 * const q = quantize4bit(weightF32, { shape: [out, inF], doubleQuant: true });
 * const proj = new Nf4Linear('model.layers.0.mlp.up_proj', q);
 * const y = proj.apply(x); // x: [..., inF] → [..., out]
 * ```
 */
export class Nf4Linear implements Linear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The quantization state (absmax codes, nested state) kept for export; small. */
  readonly state: QuantState;
  /** int32 `[ceil(n / 8)]`: the packed bytes, four per word, little-endian. */
  readonly packedWords: tf.Tensor1D;
  /** float32 `[nblocks]`: the absmax of each block (reconstructed when double-quantized). */
  readonly absmax: tf.Tensor1D;
  private readonly count: number;
  private readonly byteLength: number;

  constructor(name: string, quantized: Quantized4bit) {
    const { state, packed } = quantized;
    const shape = state.shape;
    if (shape.length !== 2) {
      throw new LoraError(
        'E_BASE_WEIGHT',
        `${name}: expected a 2-D [out, in] quantized weight, got shape [${shape.join(', ')}]`,
      );
    }
    const [outFeatures, inFeatures] = shape as [number, number];
    const count = outFeatures * inFeatures;
    if (packed.length !== Math.ceil(count / 2)) {
      throw new LoraError(
        'E_BASE_WEIGHT',
        `${name}: expected ${Math.ceil(count / 2)} packed bytes for [${outFeatures}, ${inFeatures}], got ${packed.length}`,
      );
    }
    this.name = name;
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.state = state;
    this.count = count;
    this.byteLength = packed.length;
    const padded = new Uint8Array(Math.ceil(packed.length / 4) * 4);
    padded.set(packed);
    this.packedWords = tf.tensor1d(new Int32Array(padded.buffer), 'int32');
    this.absmax = tf.tensor1d(blockAbsmax(state), 'float32');
  }

  /**
   * The float32 `[out, in]` weight, `fround(code[c] · absmax[block])`. The caller disposes it.
   * On the cpu backend a JS kernel runs `@qlora/nf4`'s `dequantize4bit` on the backend arrays;
   * elsewhere {@link Nf4Linear.dequantizeWithOps} composes tf ops.
   *
   * @example
   * ```ts
   * const w = proj.dequantize(); // tf.Tensor2D [out, in]
   * w.dispose();
   * ```
   */
  dequantize(): tf.Tensor2D {
    const shape: [number, number] = [this.outFeatures, this.inFeatures];
    return (
      dequantizeOnCpu(
        this.packedWords,
        this.absmax,
        shape,
        this.state.blocksize,
        this.state.quantType,
      ) ?? this.dequantizeWithOps()
    );
  }

  /**
   * The backend-generic dequantization from tf ops (floorDiv/mod nibble extraction, gather,
   * per-block multiply), used on non-cpu backends. Same values as {@link Nf4Linear.dequantize}
   * wherever the backend rounds each float32 product once.
   *
   * @example
   * ```ts
   * const w = proj.dequantizeWithOps(); // tf.Tensor2D [out, in]
   * ```
   */
  dequantizeWithOps(): tf.Tensor2D {
    return tf.tidy(() => {
      const { blocksize } = this.state;
      const blocks = this.absmax.shape[0];
      // The 16-entry table and the divisors are made per call (tiny), so the layer holds only
      // the packed words and absmax, all of which weights() reports.
      const table = tf.tensor1d(this.state.quantType === 'nf4' ? NF4_CODE : FP4_CODE, 'float32');
      const words = tf.expandDims(this.packedWords, 1);
      const pow = (shifts: number[], extra: number) =>
        tf.tensor2d(
          shifts.map((shift) => 2 ** (shift + extra)),
          [1, shifts.length],
          'int32',
        );
      const low = tf.floorDiv(
        tf.sub(tf.mod(words, pow(LOW_SHIFTS, 4)), tf.mod(words, pow(LOW_SHIFTS, 0))),
        pow(LOW_SHIFTS, 0),
      );
      const top28 = tf.scalar(2 ** 28, 'int32');
      const top = tf.mod(
        tf.floorDiv(tf.sub(words, tf.mod(words, top28)), top28),
        tf.scalar(16, 'int32'),
      );
      const nibbles = tf.concat(
        [tf.slice(low, [0, 0], [-1, 6]), top, tf.slice(low, [0, 6], [-1, 1])],
        1,
      );
      const codes = tf.slice(tf.reshape(nibbles, [-1]), 0, this.count);
      let values = tf.gather(table, codes);
      const full = blocks * blocksize;
      if (full !== this.count) values = tf.pad(values, [[0, full - this.count]]);
      const scaled = tf.mul(tf.reshape(values, [blocks, blocksize]), tf.expandDims(this.absmax, 1));
      const flat = full === this.count ? scaled : tf.slice(tf.reshape(scaled, [-1]), 0, this.count);
      return tf.reshape(flat, [this.outFeatures, this.inFeatures]) as tf.Tensor2D;
    });
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const leading = x.shape.slice(0, -1);
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      const y = this.matmul(flat);
      return tf.reshape(y, [...leading, this.outFeatures]);
    });
  }

  /** `x Wᵀ` with the dequantization inside a custom-gradient op. */
  private matmul(x: tf.Tensor2D): tf.Tensor {
    const op = tf.customGrad(((input: tf.Tensor) => {
      const weight = this.dequantize();
      const value = tf.matMul(input as tf.Tensor2D, weight, false, true);
      weight.dispose();
      return {
        value,
        // Recompute W rather than keeping it alive from the forward pass.
        gradFunc: (dy: tf.Tensor) => {
          const w = this.dequantize();
          const dx = tf.matMul(dy as tf.Tensor2D, w);
          w.dispose();
          return dx;
        },
      };
    }) as Parameters<typeof tf.customGrad>[0]);
    return op(x);
  }

  /**
   * The backend tensors this layer holds: `weight` (packed int32 words) and `weight.absmax`.
   * Use {@link Nf4Linear.toBnbTensors} for a checkpoint.
   */
  weights(): Record<string, tf.Tensor> {
    return { weight: this.packedWords, 'weight.absmax': this.absmax };
  }

  /**
   * The packed bytes and quantization state, as `@qlora/nf4` represents them.
   *
   * @example
   * ```ts
   * const q = proj.quantized(); // { packed: Uint8Array, state: QuantState }
   * ```
   */
  quantized(): Quantized4bit {
    const words = this.packedWords.dataSync() as Int32Array;
    const packed = new Uint8Array(words.buffer, words.byteOffset, this.byteLength).slice();
    return { packed, state: this.state };
  }

  /**
   * The tensors bitsandbytes' `Linear4bit` writes for this weight (`<name>.weight`,
   * `.weight.absmax`, `.weight.quant_map`, nested keys, the JSON quant-state blob).
   *
   * @example
   * ```ts
   * Object.keys(proj.toBnbTensors()); // ['model.layers.0.mlp.up_proj.weight', …]
   * ```
   */
  toBnbTensors(): Record<string, TensorRecord> {
    return toBnbTensors(this.quantized(), this.name);
  }

  dispose(): void {
    this.packedWords.dispose();
    this.absmax.dispose();
  }
}

/**
 * Builds an {@link Nf4Linear} from a pre-quantized bitsandbytes checkpoint's tensors (keys as
 * `@qlora/nf4`'s `fromBnbTensors` reads them: `<prefix>.weight`, `<prefix>.weight.absmax`, …).
 *
 * @example
 * ```ts
 * const file = parseSafetensors(bytes);
 * const proj = nf4LinearFromBnbTensors(file.tensors, 'model.layers.0.self_attn.q_proj');
 * ```
 */
export function nf4LinearFromBnbTensors(
  tensors: Record<string, TensorRecord>,
  prefix: string,
): Nf4Linear {
  const name = prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
  return new Nf4Linear(name, fromBnbTensors(tensors, name));
}
