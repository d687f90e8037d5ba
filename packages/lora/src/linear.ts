import type * as tf from '@tensorflow/tfjs-core';

/**
 * A bias-free linear projection `y = x Wᵀ`, the unit LoRA wraps. Structurally identical to the
 * trainer's projections, so any model whose projections satisfy it can take an adapter.
 *
 * @example
 * ```ts
 * const identity: Linear = {
 *   name: 'model.layers.0.self_attn.q_proj', inFeatures: 2, outFeatures: 2,
 *   apply: (x) => x.clone(), weights: () => ({}), dispose: () => {},
 * };
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
 * A model whose projections can be replaced: the trainer's `LlamaModel` is one. `namedWeights`,
 * when present, lets parameter counts and quantized state dicts include the dense parts.
 *
 * @example
 * ```ts
 * const model: LoraTargetModel = llamaModel; // from @qlora/trainer's loadModel
 * injectLora(model, { r: 16, alpha: 16 });
 * ```
 */
export interface LoraTargetModel {
  /** Calls `fn` on every projection and stores what it returns in its place. */
  mapProjections(fn: (linear: Linear, layer: number, field: string) => Linear): void;
  /** Every weight by its Hugging Face name (tied weights once). */
  namedWeights?(): Map<string, tf.Tensor>;
}
