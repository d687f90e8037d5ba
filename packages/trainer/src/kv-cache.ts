import * as tf from '@tensorflow/tfjs-core';

/**
 * Keys and values of every layer for the positions seen so far, plus each row's attention
 * mask (1 = real token, 0 = left padding), so a generation step only runs the new token.
 * Owns its tensors: call `dispose()` when done.
 *
 * @example
 * ```ts
 * const cache = model.createCache(1);
 * try { model.forward([[1, 2, 3]], { cache }).dispose(); cache.length; } // 3
 * finally { cache.dispose(); }
 * ```
 */
export class KvCache {
  /** Per layer, `[B, kvHeads, length, headDim]` after rotary embedding; null before the first step. */
  readonly keys: (tf.Tensor4D | null)[];
  readonly values: (tf.Tensor4D | null)[];
  /** Per row, the mask of every cached position. */
  readonly mask: number[][];

  constructor(numLayers: number, batchSize: number) {
    this.keys = new Array<tf.Tensor4D | null>(numLayers).fill(null);
    this.values = new Array<tf.Tensor4D | null>(numLayers).fill(null);
    this.mask = Array.from({ length: batchSize }, () => []);
  }

  get batchSize(): number {
    return this.mask.length;
  }

  /** Number of cached positions. */
  get length(): number {
    return this.mask[0]?.length ?? 0;
  }

  /** Appends a layer's new keys/values (kept alive), releasing the previous ones. */
  update(layer: number, keys: tf.Tensor4D, values: tf.Tensor4D): void {
    this.keys[layer]?.dispose();
    this.values[layer]?.dispose();
    this.keys[layer] = tf.keep(keys);
    this.values[layer] = tf.keep(values);
  }

  dispose(): void {
    for (let i = 0; i < this.keys.length; i++) {
      this.keys[i]?.dispose();
      this.values[i]?.dispose();
      this.keys[i] = null;
      this.values[i] = null;
    }
    for (const row of this.mask) row.length = 0;
  }
}
