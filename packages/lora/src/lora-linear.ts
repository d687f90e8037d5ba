import * as tf from '@tensorflow/tfjs-core';
import { f16BaseApply, f16BaseProduct } from './_f16-base';
import { deriveSeed, normalArray, uniformArray } from './_prng';
import { DenseLinear, denseWeightOf } from './dense-linear';
import { LoraError } from './errors';
import type { Linear } from './linear';
import { Nf4Linear } from './nf4-linear';

/**
 * How A and B start, as PEFT's `init_lora_weights`: `true` = A kaiming-uniform (a = √5, i.e.
 * U(±1/√in)), B = 0; `'gaussian'` = A ~ N(0, (1/r)²), B = 0; `false` = A and B both as
 * `nn.Linear`'s default init (B ~ U(±1/√r)), so the adapter is not a no-op (tests only).
 *
 * @example
 * ```ts
 * const init: LoraInit = 'gaussian';
 * injectLora(model, { initLoraWeights: init });
 * ```
 */
export type LoraInit = boolean | 'gaussian';

/**
 * Options of {@link LoraLinear}.
 *
 * @example
 * ```ts
 * const options: LoraLinearOptions = { r: 8, alpha: 16, dropout: 0.05, useRslora: true };
 * ```
 */
export interface LoraLinearOptions {
  /** Rank. */
  r: number;
  /** `lora_alpha`. */
  alpha: number;
  /** Dropout probability on the LoRA branch input (training mode only). Default 0. */
  dropout?: number;
  /** Scale by `alpha/√r` (rsLoRA) instead of `alpha/r`. Default false. */
  useRslora?: boolean;
  /** Seed of the initialisation and dropout streams (mixed with the layer name). Default 0. */
  seed?: number;
  /** Default `true`. */
  init?: LoraInit;
}

/**
 * The LoRA scaling factor: `alpha / r`, or `alpha / √r` with rsLoRA.
 *
 * @example
 * ```ts
 * loraScaling(16, 32); // 2
 * loraScaling(16, 32, true); // 8
 * ```
 */
export function loraScaling(r: number, alpha: number, useRslora = false): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

// torch.nn.init.kaiming_uniform_(w, a=√5) on [rows, fanIn]: gain = √(2/(1+a²)), bound = gain·√(3/fanIn).
function kaimingUniformBound(fanIn: number): number {
  const a = Math.sqrt(5);
  return Math.sqrt(2 / (1 + a * a)) * Math.sqrt(3 / fanIn);
}

/**
 * A frozen projection plus a trainable low-rank update, as PEFT's `lora.Linear`:
 * `y = x·Wᵀ + s·(dropout(x)·Aᵀ)·Bᵀ`, A `[r, in]`, B `[out, r]` (tf.Variables),
 * `s = alpha/r` (or `alpha/√r`). The base may be dense f32 or an {@link Nf4Linear}; it never
 * receives gradients. Initialisation uses a seeded mulberry32 stream per module (derived from
 * the seed and `<name>.lora_A` / `.lora_B`); it cannot reproduce torch's RNG.
 *
 * @example
 * ```ts
 * const lora = new LoraLinear(baseProjection, { r: 8, alpha: 16 });
 * const y = lora.apply(x); // equals baseProjection.apply(x) at init (B = 0)
 * ```
 */
export class LoraLinear implements Linear {
  /** The frozen projection (replaced by a dense one while merged). */
  base: Linear;
  readonly r: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly useRslora: boolean;
  readonly scaling: number;
  readonly seed: number;
  /** `[r, in]`, trainable. */
  readonly loraA: tf.Variable;
  /** `[out, r]`, trainable. */
  readonly loraB: tf.Variable;
  /** Dropout is applied only while true. */
  training = false;
  private mergedFrom: Linear | null = null;
  private dropoutCalls = 0;

  constructor(base: Linear, options: LoraLinearOptions) {
    const { r, alpha } = options;
    const dropout = options.dropout ?? 0;
    if (!Number.isInteger(r) || r < 1) {
      throw new LoraError('E_OPTIONS', `r: expected a positive integer, got ${r}`);
    }
    if (!Number.isFinite(alpha)) {
      throw new LoraError('E_OPTIONS', `alpha: expected a finite number, got ${alpha}`);
    }
    if (!(dropout >= 0 && dropout < 1)) {
      throw new LoraError('E_OPTIONS', `dropout: expected 0 ≤ p < 1, got ${dropout}`);
    }
    this.base = base;
    this.r = r;
    this.alpha = alpha;
    this.dropout = dropout;
    this.useRslora = options.useRslora ?? false;
    this.scaling = loraScaling(r, alpha, this.useRslora);
    this.seed = options.seed ?? 0;
    const init = options.init ?? true;
    const { inFeatures, outFeatures, name } = base;
    const seedA = deriveSeed(this.seed, `${name}.lora_A`);
    const seedB = deriveSeed(this.seed, `${name}.lora_B`);
    const a =
      init === 'gaussian'
        ? normalArray(r * inFeatures, 1 / r, seedA)
        : uniformArray(r * inFeatures, kaimingUniformBound(inFeatures), seedA);
    const b =
      init === false
        ? uniformArray(outFeatures * r, kaimingUniformBound(r), seedB)
        : new Float32Array(outFeatures * r);
    // Inside tidy so the initial tensors are released; the variables keep their data.
    [this.loraA, this.loraB] = tf.tidy(() => [
      tf.variable(tf.tensor2d(a, [r, inFeatures]), true),
      tf.variable(tf.tensor2d(b, [outFeatures, r]), true),
    ]);
  }

  get name(): string {
    return this.base.name;
  }
  get inFeatures(): number {
    return this.base.inFeatures;
  }
  get outFeatures(): number {
    return this.base.outFeatures;
  }
  /** Whether ΔW is currently folded into the base weight. */
  get merged(): boolean {
    return this.mergedFrom !== null;
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      if (!this.merged && !(this.training && this.dropout > 0)) {
        const fused = this.fusedApply(x);
        if (fused !== undefined) return fused;
      }
      if (this.merged) return this.base.apply(x);
      // f16 base products (opt-in) also where the fused path does not apply (dropout, few rows).
      const result = f16BaseApply(this.base, x) ?? this.base.apply(x);
      let input = x;
      if (this.training && this.dropout > 0) {
        // A fresh, reproducible mask per call: the seed advances with every training forward.
        input = tf.dropout(
          x,
          this.dropout,
          undefined,
          deriveSeed(this.seed, `${this.name}#${this.dropoutCalls++}`),
        );
      }
      const leading = x.shape.slice(0, -1);
      const flat = tf.reshape(input, [-1, this.inFeatures]) as tf.Tensor2D;
      const down = tf.matMul(flat, this.loraA as tf.Tensor2D, false, true);
      const up = tf.matMul(down, this.loraB as tf.Tensor2D, false, true);
      const lora = tf.mul(up, this.scaling);
      return tf.add(result, tf.reshape(lora, [...leading, this.outFeatures]));
    });
  }

  /**
   * webgpu, tiled base, no dropout: the LoRA term rides in the base product's epilogue, forward
   * (`x·Wᵀ + s·(x·Aᵀ)·Bᵀ`) and for dx (`dy·W + (s·dy·B)·A`), so neither the `[rows, out]` branch
   * output, its scaled copy nor the sum is ever a tensor. Undefined when the kernels do not apply.
   */
  private fusedApply(x: tf.Tensor): tf.Tensor | undefined {
    const base = this.base;
    if (!(base instanceof DenseLinear || base instanceof Nf4Linear)) return undefined;
    const leading = x.shape.slice(0, -1);
    const rows = leading.reduce((a, b) => a * b, 1);
    if (!base.tiles(rows, 'nk') || !base.tiles(rows, 'kn')) return undefined;
    const scale = this.scaling;
    const op = tf.customGrad(((
      input: tf.Tensor2D,
      a: tf.Tensor2D,
      b: tf.Tensor2D,
      save: (tensors: tf.Tensor[]) => void,
    ) => {
      const u = tf.matMul(input, a, false, true);
      save([input, u]);
      // f16 base products (opt-in): the base on the f16 tensor cores, the LoRA terms in f32.
      const half = f16BaseProduct(base, input, 'nk');
      return {
        value:
          half === undefined
            ? (base.tiledProduct(input, 'nk', { u: u as tf.Tensor2D, v: b, scale }) as tf.Tensor2D)
            : tf.add(half, tf.mul(tf.matMul(u, b, false, true), scale)),
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
          const [savedInput, savedU] = saved as [tf.Tensor2D, tf.Tensor2D];
          const dU = tf.mul(tf.matMul(dy, b), scale) as tf.Tensor2D;
          const dB = tf.mul(tf.matMul(dy, savedU, true, false), scale);
          const dA = tf.matMul(dU, savedInput, true, false);
          const dyHalf = f16BaseProduct(base, dy, 'kn');
          const dx =
            dyHalf === undefined
              ? (base.tiledProduct(dy, 'kn', { u: dU, v: a, scale: 1 }) as tf.Tensor2D)
              : tf.add(dyHalf, tf.matMul(dU, a));
          return [dx, dA, dB];
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    const flat = tf.reshape(x, [rows, this.inFeatures]);
    const y = op(flat, this.loraA as tf.Tensor2D, this.loraB as tf.Tensor2D);
    return tf.reshape(y, [...leading, this.outFeatures]);
  }

  /**
   * Where this layer's dropout stream stands: the number of training forwards that have drawn a
   * mask so far. Each mask's seed is derived from the layer's seed, name and this count, so
   * saving it and later passing it to {@link LoraLinear.restoreDropoutState} replays the same
   * masks (gradient checkpointing's recomputation, a resumed training run).
   *
   * @example
   * ```ts
   * const state = lora.dropoutState(); // e.g. 0
   * lora.apply(x); // training with dropout > 0: draws mask #0
   * lora.restoreDropoutState(state);
   * lora.apply(x); // the same mask again
   * ```
   */
  dropoutState(): number {
    return this.dropoutCalls;
  }

  /**
   * Rewinds or advances the dropout stream to a count from {@link LoraLinear.dropoutState}.
   *
   * @example
   * ```ts
   * lora.restoreDropoutState(0); // the next training forward draws the first mask again
   * ```
   */
  restoreDropoutState(state: number): void {
    if (!(Number.isSafeInteger(state) && state >= 0)) {
      throw new LoraError(
        'E_OPTIONS',
        `dropout state of ${this.name}: expected a non-negative integer from dropoutState(), got ${state}`,
      );
    }
    this.dropoutCalls = state;
  }

  /**
   * `ΔW = s · B·A`, `[out, in]` f32. The caller disposes it.
   *
   * @example
   * ```ts
   * const delta = lora.deltaWeight(); // tf.Tensor2D [out, in]
   * ```
   */
  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.mul(tf.matMul(this.loraB as tf.Tensor2D, this.loraA as tf.Tensor2D), this.scaling),
    );
  }

  /**
   * Folds ΔW into the base (`W ← W + ΔW`) so the forward is one matmul. A dense base's weight is
   * replaced; an NF4 base is dequantized first and kept aside, so {@link LoraLinear.unmerge}
   * restores it exactly. Returns PEFT's rounding warning for NF4 bases, else null.
   *
   * @example
   * ```ts
   * lora.merge(); // null for a dense base
   * ```
   */
  merge(): string | null {
    if (this.merged) return null;
    let warning: string | null = null;
    let weight: tf.Tensor2D;
    const delta = this.deltaWeight();
    if (this.base instanceof Nf4Linear) {
      const dequantized = this.base.dequantize();
      weight = tf.add(dequantized, delta) as tf.Tensor2D;
      dequantized.dispose();
      warning = `${this.name}: Merge lora module to 4-bit linear may get different generations due to rounding errors.`;
    } else {
      const dense = denseWeightOf(this.base);
      if (dense === undefined) {
        delta.dispose();
        throw new LoraError(
          'E_MERGE',
          `cannot merge ${this.name}: expected a dense f32 [${this.outFeatures}, ${this.inFeatures}] weight or an Nf4Linear base, got ${Object.keys(this.base.weights()).join(', ') || 'no weights'}`,
        );
      }
      weight = tf.add(dense, delta) as tf.Tensor2D;
    }
    delta.dispose();
    this.mergedFrom = this.base;
    this.base = new DenseLinear(this.name, weight);
    if (!(this.mergedFrom instanceof Nf4Linear)) {
      // A dense base is replaced, as PEFT updates W in place; unmerge subtracts ΔW again.
      this.mergedFrom.dispose();
    }
    return warning;
  }

  /**
   * Undoes {@link LoraLinear.merge}: restores the NF4 base exactly, or `W ← W − ΔW` for a dense
   * one (not bit-exact, as in PEFT).
   *
   * @example
   * ```ts
   * lora.merge(); lora.unmerge();
   * ```
   */
  unmerge(): void {
    const original = this.mergedFrom;
    if (original === null) return;
    const merged = this.base;
    if (original instanceof Nf4Linear) {
      this.base = original;
    } else {
      const delta = this.deltaWeight();
      const weight = tf.sub(denseWeightOf(merged) as tf.Tensor2D, delta) as tf.Tensor2D;
      delta.dispose();
      this.base = new DenseLinear(this.name, weight);
    }
    merged.dispose();
    this.mergedFrom = null;
  }

  /** After a merge, frees the kept NF4 base (used by mergeAndUnload); the layer then cannot unmerge. */
  releaseMergedSource(): void {
    if (this.mergedFrom instanceof Nf4Linear) this.mergedFrom.dispose();
    this.mergedFrom = null;
  }

  /** The frozen base weights (by Hugging Face suffix); the adapter's are in {@link loraWeights}. */
  weights(): Record<string, tf.Tensor> {
    return this.base.weights();
  }

  /**
   * `{ 'lora_A.weight': A, 'lora_B.weight': B }`.
   *
   * @example
   * ```ts
   * lora.loraWeights()['lora_A.weight'].shape; // [r, in]
   * ```
   */
  loraWeights(): Record<string, tf.Variable> {
    return { 'lora_A.weight': this.loraA, 'lora_B.weight': this.loraB };
  }

  /** Disposes A, B and the base. */
  dispose(): void {
    this.loraA.dispose();
    this.loraB.dispose();
    this.base.dispose();
    if (this.mergedFrom instanceof Nf4Linear) this.mergedFrom.dispose();
  }
}
