import type * as tf from '@tensorflow/tfjs-core';

/**
 * The trainable parameters an optimizer updates, by name. The names key the gradients passed to
 * `step` and the tensors of the state dict (use the names of the adapter's safetensors keys).
 *
 * @example
 * ```ts
 * const params: NamedVariables = { 'lora_A.weight': tf.variable(tf.zeros([16, 64])) };
 * ```
 */
export type NamedVariables = Readonly<Record<string, tf.Variable>>;

/**
 * Gradients by parameter name (what `tf.variableGrads(...).grads` returns when the variables are
 * named like the parameters, or any name → tensor record).
 *
 * @example
 * ```ts
 * const grads: NamedGradients = { 'lora_A.weight': tf.ones([16, 64]) };
 * ```
 */
export type NamedGradients = Readonly<Record<string, tf.Tensor>>;

/**
 * One tensor of an optimizer state dict: plain typed arrays, ready for
 * `writeSafetensors` (`dtype` is a safetensors dtype).
 *
 * @example
 * ```ts
 * const t: StateTensor = { dtype: 'F32', shape: [2], data: new Float32Array([0, 0]) };
 * ```
 */
export type StateTensor =
  | { dtype: 'F32'; shape: number[]; data: Float32Array }
  | { dtype: 'U8'; shape: number[]; data: Uint8Array };

/**
 * A serializable optimizer state: the kind, the step count of every parameter and the state
 * tensors, named `<param>.<state>` (AdamW: `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`;
 * AdamW8bit: `state1`, `absmax1`, `state2`, `absmax2`, or `state1`/`state2` as F32 for
 * parameters below `min8bitSize`, the bitsandbytes names).
 *
 * @example
 * ```ts
 * const state: OptimizerState = optimizer.stateDict();
 * state.steps['lora_A.weight']; // 3
 * ```
 */
export interface OptimizerState {
  kind: 'adamw' | 'adamw8bit';
  steps: Record<string, number>;
  tensors: Record<string, StateTensor>;
}

/**
 * Options of one optimizer step.
 *
 * @example
 * ```ts
 * const { totalNorm } = await gradNormAsync(grads);
 * opt.step(grads, { gradScale: clipCoefficient(1.0, totalNorm) }); // clip_grad_norm_ without a pass
 * ```
 */
export interface OptimizerStepOptions {
  /**
   * Multiplies every gradient by this factor before the update, rounded to float32 as
   * `grad.mul_(coef)` would (clip_grad_norm_'s coefficient); default 1 (no multiply).
   */
  gradScale?: number;
}

/**
 * What the trainer needs of an optimizer: a mutable learning rate (the schedule sets it before
 * each step), one update from named gradients, and a state dict for checkpoints.
 *
 * @example
 * ```ts
 * const opt: Optimizer = new AdamW(params, { lr: 2e-4 });
 * opt.lr = schedule(step);
 * opt.step(grads, { gradScale: clip.clipCoef });
 * ```
 */
export interface Optimizer {
  lr: number;
  step(grads: NamedGradients, options?: OptimizerStepOptions): void;
  stateDict(): OptimizerState;
  /**
   * The backend tensors `stateDict()` reads. The trainer reads them asynchronously first, so that
   * `stateDict()`'s synchronous reads hit the cached values on backends that cannot read
   * synchronously (tfjs-webgpu in Node).
   */
  stateTensors?(): tf.Tensor[];
  loadStateDict(state: OptimizerState): void;
  /** Bytes held by the optimizer state (not the parameters). */
  stateBytes(): number;
  dispose(): void;
}
