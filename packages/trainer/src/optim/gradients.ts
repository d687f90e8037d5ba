import * as tf from '@tensorflow/tfjs-core';
import { TrainerError } from '../errors';
import { squaredNormSumWebgpu } from './_webgpu-adamw';
import type { NamedGradients } from './types';

/**
 * What {@link clipGradNorm} did.
 *
 * @example
 * ```ts
 * const { grads, totalNorm, clipCoef } = clipGradNorm(raw, 1.0);
 * ```
 */
export interface ClipResult {
  /** The scaled gradients (new tensors; the caller disposes them and its inputs). */
  grads: Record<string, tf.Tensor>;
  /** The global L2 norm before clipping, as a float32 value (NaN/Infinity if any gradient is). */
  totalNorm: number;
  /** The float32 factor every gradient was multiplied by: min(1, maxNorm / (totalNorm + 1e-6)). */
  clipCoef: number;
}

/**
 * Clips gradients by their global L2 norm as `torch.nn.utils.clip_grad_norm_` (HF
 * `max_grad_norm`, default 1.0): `total = ‖(‖g₁‖, ‖g₂‖, …)‖₂`, `coef = maxNorm / (total + 1e-6)`
 * in float32, clamped to at most 1, and every gradient multiplied by it (also when it is 1, as
 * torch does). Norms are computed with TensorFlow.js ops (float32 values, backend's summation).
 *
 * @example
 * ```ts
 * const { grads, totalNorm } = clipGradNorm({ w: tf.tensor1d([3, 4]) }, 1);
 * totalNorm; // 5
 * grads.w.dataSync(); // ≈ [0.6, 0.8]
 * ```
 */
export function clipGradNorm(grads: NamedGradients, maxNorm: number): ClipResult {
  checkMaxNorm(maxNorm);
  const norm = totalNormTensor(grads);
  const totalNorm = norm === undefined ? 0 : readScalarSync(norm);
  return scaleByNorm(grads, maxNorm, totalNorm);
}

/**
 * {@link clipGradNorm} with an asynchronous read of the norm (the one read a step needs on
 * backends that cannot read synchronously, such as tfjs-webgpu in Node). Same values.
 *
 * @example
 * ```ts
 * const { grads, totalNorm } = await clipGradNormAsync(raw, 1.0);
 * if (!Number.isFinite(totalNorm)) await findNonFiniteGradientsAsync(raw); // which ones
 * ```
 */
export async function clipGradNormAsync(
  grads: NamedGradients,
  maxNorm: number,
): Promise<ClipResult> {
  checkMaxNorm(maxNorm);
  return scaleByNorm(grads, maxNorm, await gradNormAsync(grads));
}

/**
 * The global L2 norm of the gradients as clip_grad_norm_ computes it (`‖(‖g₁‖, ‖g₂‖, …)‖₂`, float32),
 * read asynchronously; the gradients are left as they are. With {@link clipCoefficient} and an
 * optimizer's `gradScale` this is clipping without a pass over the gradients. On webgpu each
 * gradient costs one dispatch.
 *
 * @example
 * ```ts
 * const totalNorm = await gradNormAsync(grads);
 * optimizer.step(grads, { gradScale: clipCoefficient(1.0, totalNorm) });
 * ```
 */
export async function gradNormAsync(grads: NamedGradients): Promise<number> {
  const norm = totalNormTensor(grads);
  if (norm === undefined) return 0;
  try {
    return (await norm.data())[0] as number;
  } finally {
    norm.dispose();
  }
}

/**
 * clip_grad_norm_'s factor: `min(1, maxNorm / (totalNorm + 1e-6))` in float32 (NaN when the norm
 * is NaN, as torch.clamp propagates it).
 *
 * @example
 * ```ts
 * clipCoefficient(1.0, 4); // ≈ 0.25
 * clipCoefficient(1.0, 0.5); // 1
 * ```
 */
export function clipCoefficient(maxNorm: number, totalNorm: number): number {
  const coef = Math.fround(Math.fround(maxNorm) / Math.fround(totalNorm + Math.fround(1e-6)));
  return Number.isNaN(coef) ? Number.NaN : Math.min(coef, 1);
}

function readScalarSync(t: tf.Tensor): number {
  try {
    return (t.dataSync() as Float32Array)[0] as number;
  } finally {
    t.dispose();
  }
}

// ‖(‖g₁‖, ‖g₂‖, …)‖₂ on the backend; any NaN/±Inf element makes it non-finite.
function totalNormTensor(grads: NamedGradients): tf.Tensor | undefined {
  const entries = Object.values(grads);
  if (entries.length === 0) return undefined;
  return tf.tidy(() => {
    // webgpu: one dispatch per gradient instead of four (see _webgpu-adamw.ts)
    if (tf.getBackend() === 'webgpu') return tf.sqrt(squaredNormSumWebgpu(entries));
    const norms = entries.map((g) => tf.sqrt(tf.sum(tf.square(g))));
    return tf.sqrt(tf.sum(tf.square(tf.stack(norms))));
  });
}

function checkMaxNorm(maxNorm: number): void {
  if (!(maxNorm > 0)) {
    throw new TrainerError('E_OPTIMIZER', `clipGradNorm maxNorm: expected > 0, got ${maxNorm}.`);
  }
}

function scaleByNorm(grads: NamedGradients, maxNorm: number, totalNorm: number): ClipResult {
  const clipCoef = clipCoefficient(maxNorm, totalNorm);
  const out: Record<string, tf.Tensor> = {};
  for (const [name, g] of Object.entries(grads)) {
    out[name] = tf.tidy(() => tf.mul(g, tf.scalar(clipCoef)));
  }
  return { grads: out, totalNorm, clipCoef };
}

/**
 * Names of the gradients that hold a NaN or ±Infinity (`g·0` sums to NaN exactly then, on every
 * backend).
 *
 * @example
 * ```ts
 * findNonFiniteGradients({ a: tf.tensor1d([1, NaN]), b: tf.tensor1d([2]) }); // ['a']
 * ```
 */
export function findNonFiniteGradients(grads: NamedGradients): string[] {
  const bad: string[] = [];
  for (const [name, g] of Object.entries(grads)) {
    const probe = tf.tidy(() => tf.sum(tf.mul(g, tf.scalar(0))).dataSync()[0] as number);
    if (!Number.isFinite(probe)) bad.push(name);
  }
  return bad;
}

/**
 * {@link findNonFiniteGradients} with one asynchronous read for all gradients. Training calls it
 * only when the step's total norm is non-finite (a NaN/±Inf element always makes it so).
 *
 * @example
 * ```ts
 * await findNonFiniteGradientsAsync({ a: tf.tensor1d([1, NaN]), b: tf.tensor1d([2]) }); // ['a']
 * ```
 */
export async function findNonFiniteGradientsAsync(grads: NamedGradients): Promise<string[]> {
  const entries = Object.entries(grads);
  if (entries.length === 0) return [];
  const probes = tf.tidy(() => tf.stack(entries.map(([, g]) => tf.sum(tf.mul(g, tf.scalar(0))))));
  try {
    const values = await probes.data();
    return entries.filter((_, i) => !Number.isFinite(values[i] as number)).map(([name]) => name);
  } finally {
    probes.dispose();
  }
}

/**
 * One skipped optimizer step.
 *
 * @example
 * ```ts
 * const s: SkippedStep = { step: 12, names: ['model.layers.0.self_attn.q_proj.lora_A.weight'] };
 * ```
 */
export interface SkippedStep {
  step: number;
  names: string[];
}

/**
 * The skip-and-report policy for non-finite gradients: a step whose gradients hold NaN/Inf is
 * skipped (no optimizer update; whether the schedule still advances is the caller's choice) and
 * recorded; after
 * `maxConsecutiveSkips` skipped steps in a row training stops with `E_NONFINITE`, because the
 * model itself is then likely broken. (HF Trainer has no such guard: it steps with NaN.)
 *
 * @example
 * ```ts
 * const guard = new NonFiniteGuard({ maxConsecutiveSkips: 3 });
 * if (guard.shouldStep(step, grads)) optimizer.step(grads);
 * guard.skipped; // [{ step: 7, names: ['w'] }] when step 7 had a NaN
 * ```
 */
export class NonFiniteGuard {
  readonly maxConsecutiveSkips: number;
  readonly skipped: SkippedStep[] = [];
  private consecutive = 0;

  constructor(options: { maxConsecutiveSkips?: number } = {}) {
    this.maxConsecutiveSkips = options.maxConsecutiveSkips ?? 3;
  }

  /**
   * True when every gradient is finite; false (and recorded) otherwise.
   *
   * @example
   * ```ts
   * guard.shouldStep(3, { w: tf.tensor1d([Infinity]) }); // false
   * ```
   */
  shouldStep(step: number, grads: NamedGradients): boolean {
    return this.record(step, findNonFiniteGradients(grads));
  }

  /**
   * The same decision from the names of the non-finite gradients, found by the caller (e.g. with
   * {@link findNonFiniteGradientsAsync}, only when the total norm is non-finite): true when
   * `names` is empty.
   *
   * @example
   * ```ts
   * guard.record(3, []); // true
   * guard.record(4, ['w']); // false, recorded
   * ```
   */
  record(step: number, names: string[]): boolean {
    if (names.length === 0) {
      this.consecutive = 0;
      return true;
    }
    this.skipped.push({ step, names });
    this.consecutive += 1;
    if (this.consecutive >= this.maxConsecutiveSkips) {
      throw new TrainerError(
        'E_NONFINITE',
        `Non-finite gradients: expected finite values, got NaN/Inf in ${this.consecutive} consecutive steps (last: step ${step}, ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}). ` +
          'Lower the learning rate, check the data for empty targets, or resume from the last checkpoint.',
      );
    }
    return false;
  }
}

/**
 * How micro-batch gradients combine into one optimizer step.
 * - `'mean-per-micro-batch'`: each micro-batch's loss is the mean over its target tokens and is
 *   divided by `accumulationSteps` before backward; the gradients are summed. This is HF
 *   Trainer's `loss / gradient_accumulation_steps` (transformers < 4.46, or models without loss
 *   kwargs). Implemented as `Σ g_i · (1/steps)` with `g_i` the gradient of the mean loss.
 * - `'token-weighted'`: the loss is the sum of token losses over all micro-batches divided by the
 *   total number of target tokens (transformers ≥ 4.46 with `num_items_in_batch`, what HF
 *   Trainer does for Llama today). Implemented as `Σ g_i · n_i / Σ n_i` with `g_i` the gradient
 *   of micro-batch i's mean loss and `n_i` its target-token count.
 *
 * @example
 * ```ts
 * const mode: AccumulationMode = 'token-weighted';
 * ```
 */
export type AccumulationMode = 'mean-per-micro-batch' | 'token-weighted';

/**
 * Sums gradients over micro-batches (see {@link AccumulationMode} for the exact convention). Add
 * the gradients of each micro-batch's mean loss; `take()` returns the combined gradients once
 * and resets. The caller keeps ownership of what it adds; taken tensors belong to the caller.
 *
 * @example
 * ```ts
 * const acc = new GradientAccumulator(4); // gradient_accumulation_steps = 4
 * for (const batch of microBatches) acc.add(tf.variableGrads(() => loss(batch)).grads);
 * if (acc.ready) optimizer.step(acc.take());
 * ```
 */
export class GradientAccumulator {
  readonly accumulationSteps: number;
  readonly mode: AccumulationMode;
  private sums = new Map<string, tf.Tensor>();
  private added = 0;
  private tokens = 0;

  constructor(accumulationSteps: number, mode: AccumulationMode = 'mean-per-micro-batch') {
    if (!Number.isInteger(accumulationSteps) || accumulationSteps < 1) {
      throw new TrainerError(
        'E_OPTIMIZER',
        `gradient accumulation steps: expected an integer ≥ 1, got ${accumulationSteps}.`,
      );
    }
    this.accumulationSteps = accumulationSteps;
    this.mode = mode;
  }

  /** Micro-batches added since the last `take()`. */
  get count(): number {
    return this.added;
  }

  /** True once `accumulationSteps` micro-batches were added. */
  get ready(): boolean {
    return this.added >= this.accumulationSteps;
  }

  /**
   * Adds one micro-batch's gradients (of its mean loss). `tokenCount` (its target tokens) is
   * required in `'token-weighted'` mode.
   *
   * @example
   * ```ts
   * acc.add(grads, 412);
   * ```
   */
  add(grads: NamedGradients, tokenCount?: number): void {
    let weight: number;
    if (this.mode === 'token-weighted') {
      if (tokenCount === undefined || !(tokenCount >= 0)) {
        throw new TrainerError(
          'E_OPTIMIZER',
          `token-weighted accumulation: expected the micro-batch's target-token count, got ${tokenCount}.`,
        );
      }
      weight = tokenCount;
      this.tokens += tokenCount;
    } else {
      weight = 1 / this.accumulationSteps;
    }
    for (const [name, g] of Object.entries(grads)) {
      const previous = this.sums.get(name);
      const next = tf.tidy(() => {
        const scaled = tf.mul(g, tf.scalar(weight));
        return previous === undefined ? scaled : tf.add(previous, scaled);
      });
      previous?.dispose();
      this.sums.set(name, next);
    }
    this.added += 1;
  }

  /**
   * The combined gradients; resets the accumulator.
   *
   * @example
   * ```ts
   * const grads = acc.take();
   * optimizer.step(grads);
   * tf.dispose(Object.values(grads));
   * ```
   */
  take(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    const divisor = this.tokens;
    for (const [name, sum] of this.sums) {
      if (this.mode === 'token-weighted') {
        out[name] = tf.tidy(() =>
          divisor > 0 ? tf.div(sum, tf.scalar(divisor)) : tf.zerosLike(sum),
        );
        sum.dispose();
      } else {
        out[name] = sum;
      }
    }
    this.sums = new Map();
    this.added = 0;
    this.tokens = 0;
    return out;
  }

  /**
   * Frees what was added and not taken.
   *
   * @example
   * ```ts
   * acc.dispose();
   * ```
   */
  dispose(): void {
    tf.dispose([...this.sums.values()]);
    this.sums.clear();
    this.added = 0;
    this.tokens = 0;
  }
}
