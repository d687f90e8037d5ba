import * as tf from '@tensorflow/tfjs-core';
import { TrainerError } from '../errors';
import {
  checkKind,
  defaultArithmetic,
  f32StateArray,
  f32Tensor,
  fmaF32,
  paramOf,
  validateHyperparameters,
  validateLearningRate,
} from './_common';
import { type AdamWCoefficients, adamwUpdateWebgpu } from './_webgpu-adamw';
import type {
  NamedGradients,
  NamedVariables,
  Optimizer,
  OptimizerState,
  OptimizerStepOptions,
  StateTensor,
} from './types';

/**
 * Hyperparameters of {@link AdamW}; the defaults are `torch.optim.AdamW`'s.
 *
 * @example
 * ```ts
 * const options: AdamWOptions = { lr: 2e-4, weightDecay: 0.001 }; // the Unsloth notebook values
 * ```
 */
export interface AdamWOptions {
  /** Learning rate (default 1e-3); the `lr` property can be changed between steps. */
  lr?: number;
  /** (β1, β2), default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** Added after the square root of the bias-corrected second moment (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01): `p ← p·(1 − lr·wd)` before the Adam update. */
  weightDecay?: number;
  /** Use the running maximum of the second moment (default false). */
  amsgrad?: boolean;
  /**
   * `'torch-cpu'`: element loops over the tensors' data reproducing torch's CPU float32 kernels,
   * fused multiply-adds included (bit-identical to `torch.optim.AdamW(foreach=False)` in the
   * fixtures); `'tensor-ops'`: TensorFlow.js ops, which stay on the device (WebGPU, tfjs-node)
   * but round every product separately; `'webgpu-kernel'` (webgpu only, not with amsgrad): three
   * WGSL dispatches per parameter with torch's fused multiply-adds, instead of ~14 tensor ops.
   * Default: `'torch-cpu'` on the cpu and wasm backends, `'webgpu-kernel'` on webgpu (without
   * amsgrad), `'tensor-ops'` elsewhere.
   */
  arithmetic?: AdamWArithmetic;
}

/** How {@link AdamW} computes its update (see {@link AdamWOptions.arithmetic}). */
export type AdamWArithmetic = 'torch-cpu' | 'tensor-ops' | 'webgpu-kernel';

interface AdamWSlot {
  step: number;
  expAvg: tf.Variable;
  expAvgSq: tf.Variable;
  maxExpAvgSq: tf.Variable | undefined;
}

/**
 * AdamW as `torch.optim.AdamW(foreach=False)`, on TensorFlow.js variables (any backend). Per
 * parameter with a gradient, in torch's order and float32 rounding per operation:
 * `p ← p·(1 − lr·wd)`; `m ← lerp(m, g, 1 − β1)`; `v ← v·β2 + (1 − β2)·g·g`;
 * `denom = √v / √(1 − β2^t) + eps`; `p ← p − (lr / (1 − β1^t))·m / denom`. Parameters without a
 * gradient in a step are skipped (their step count does not advance), as in torch.
 *
 * @example
 * ```ts
 * const w = tf.variable(tf.tensor1d([1, 2]), true, 'w');
 * const opt = new AdamW({ w }, { lr: 0.1, weightDecay: 0 });
 * opt.step({ w: tf.tensor1d([0.5, -0.5]) });
 * w.dataSync(); // ≈ Float32Array [0.9, 2.1]
 * ```
 */
export class AdamW implements Optimizer {
  lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly amsgrad: boolean;
  /** How the update is computed (see {@link AdamWOptions.arithmetic}). */
  readonly arithmetic: AdamWArithmetic;
  private readonly params: NamedVariables;
  private readonly slots = new Map<string, AdamWSlot>();

  constructor(params: NamedVariables, options: AdamWOptions = {}) {
    this.params = params;
    this.lr = options.lr ?? 1e-3;
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    this.amsgrad = options.amsgrad ?? false;
    this.arithmetic =
      options.arithmetic ??
      (tf.getBackend() === 'webgpu' && !this.amsgrad ? 'webgpu-kernel' : defaultArithmetic());
    validateHyperparameters(this.lr, this.betas, this.eps, this.weightDecay);
    if (this.arithmetic === 'webgpu-kernel' && this.amsgrad) {
      throw new TrainerError(
        'E_OPTIMIZER',
        "AdamW arithmetic: expected 'torch-cpu' or 'tensor-ops' with amsgrad, got 'webgpu-kernel' (it has no running maximum).",
      );
    }
  }

  /**
   * One AdamW update of every parameter that has a gradient in `grads`, each gradient first
   * multiplied by `options.gradScale` when given (clipping; see {@link OptimizerStepOptions}).
   *
   * @example
   * ```ts
   * const { grads } = tf.variableGrads(() => loss());
   * opt.step(grads);
   * tf.dispose(grads);
   * ```
   */
  step(grads: NamedGradients, options: OptimizerStepOptions = {}): void {
    validateLearningRate(this.lr);
    if (this.arithmetic === 'webgpu-kernel' && tf.getBackend() !== 'webgpu') {
      throw new TrainerError(
        'E_OPTIMIZER',
        `AdamW arithmetic 'webgpu-kernel': expected the webgpu backend, got ${tf.getBackend()}.`,
      );
    }
    const gradScale = Math.fround(options.gradScale ?? 1);
    for (const [name, grad] of Object.entries(grads)) {
      const param = paramOf(this.params, name, grad);
      const slot = this.slotOf(name, param);
      slot.step += 1;
      if (this.arithmetic === 'torch-cpu') this.stepTyped(param, grad, slot, gradScale);
      else if (this.arithmetic === 'webgpu-kernel') this.stepWebgpu(param, grad, slot, gradScale);
      else this.stepTensorOps(param, grad, slot, gradScale);
    }
  }

  /**
   * Step `t`'s constants: Python floats cast to float32 where they meet a float32 tensor, as torch
   * does (decay 1 without weight decay: a multiply by 1 is exact).
   */
  private coefficients(t: number, gradScale: number): AdamWCoefficients {
    const [beta1, beta2] = this.betas;
    const weight = Math.fround(1 - beta1);
    const smallWeight = Math.abs(weight) < 0.5;
    return {
      gradScale,
      decay: this.weightDecay !== 0 ? Math.fround(1 - this.lr * this.weightDecay) : 1,
      lerpCoeff: smallWeight ? weight : Math.fround(weight - 1),
      smallWeight,
      beta2: Math.fround(beta2),
      oneMinusBeta2: Math.fround(1 - beta2),
      biasCorrection2Sqrt: Math.fround(Math.sqrt(1 - beta2 ** t)),
      negStepSize: Math.fround(-(this.lr / (1 - beta1 ** t))),
      eps: Math.fround(this.eps),
    };
  }

  /** torch's CPU kernels, element by element, with their fused multiply-adds. */
  private stepTyped(param: tf.Variable, grad: tf.Tensor, slot: AdamWSlot, gradScale: number): void {
    const g = grad.dataSync() as Float32Array;
    const p = param.dataSync() as Float32Array;
    const m = slot.expAvg.dataSync() as Float32Array;
    const v = slot.expAvgSq.dataSync() as Float32Array;
    const vMax = slot.maxExpAvgSq?.dataSync() as Float32Array | undefined;
    const n = p.length;
    const pOut = new Float32Array(n);
    const mOut = new Float32Array(n);
    const vOut = new Float32Array(n);
    const vMaxOut = vMax === undefined ? undefined : new Float32Array(n);
    const {
      decay,
      lerpCoeff,
      smallWeight,
      beta2: b2,
      oneMinusBeta2: oneMinusB2,
      biasCorrection2Sqrt: bc2Sqrt,
      negStepSize,
      eps,
    } = this.coefficients(slot.step, gradScale);
    const decayed = this.weightDecay !== 0;
    const scaled = gradScale !== 1;
    for (let i = 0; i < n; i++) {
      // clip_grad_norm_ multiplies by its factor (also by 1; exact then) before the update
      const gi = scaled ? Math.fround((g[i] as number) * gradScale) : (g[i] as number);
      const mi = m[i] as number;
      let pi = p[i] as number;
      if (decayed) pi = Math.fround(pi * decay);
      // exp_avg.lerp_(grad, 1 − β1): vectorized lerp = fma(coeff, end − start, base)
      const mNew = fmaF32(lerpCoeff, Math.fround(gi - mi), smallWeight ? mi : gi);
      // exp_avg_sq.mul_(β2).addcmul_(g, g, value=1 − β2): the compiler fuses the last multiply-add
      const vNew = fmaF32(Math.fround(oneMinusB2 * gi), gi, Math.fround((v[i] as number) * b2));
      let second = vNew;
      if (vMax !== undefined && vMaxOut !== undefined) {
        const prev = vMax[i] as number;
        second = Number.isNaN(prev) || Number.isNaN(vNew) ? Number.NaN : Math.max(prev, vNew);
        vMaxOut[i] = second;
      }
      const denom = Math.fround(Math.fround(Math.fround(Math.sqrt(second)) / bc2Sqrt) + eps);
      // param.addcdiv_(exp_avg, denom, value=−step_size) = p + (value·m)/denom
      pOut[i] = Math.fround(pi + Math.fround(Math.fround(negStepSize * mNew) / denom));
      mOut[i] = mNew;
      vOut[i] = vNew;
    }
    tf.tidy(() => {
      param.assign(tf.tensor(pOut, param.shape, 'float32'));
      slot.expAvg.assign(tf.tensor(mOut, param.shape, 'float32'));
      slot.expAvgSq.assign(tf.tensor(vOut, param.shape, 'float32'));
      if (vMaxOut !== undefined)
        slot.maxExpAvgSq?.assign(tf.tensor(vMaxOut, param.shape, 'float32'));
    });
  }

  /** The typed loop's arithmetic in three WGSL dispatches (webgpu). */
  private stepWebgpu(
    param: tf.Variable,
    grad: tf.Tensor,
    slot: AdamWSlot,
    gradScale: number,
  ): void {
    tf.tidy(() => {
      const next = adamwUpdateWebgpu(
        param,
        grad,
        slot.expAvg,
        slot.expAvgSq,
        this.coefficients(slot.step, gradScale),
      );
      slot.expAvg.assign(next.expAvg);
      slot.expAvgSq.assign(next.expAvgSq);
      param.assign(next.param);
    });
  }

  /** The same update in TensorFlow.js ops (any backend; no fused multiply-adds). */
  private stepTensorOps(
    param: tf.Variable,
    grad: tf.Tensor,
    slot: AdamWSlot,
    gradScale: number,
  ): void {
    const [beta1, beta2] = this.betas;
    const t = slot.step;
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** t);
    const stepSize = this.lr / (1 - beta1 ** t);
    tf.tidy(() => {
      if (gradScale !== 1) grad = tf.mul(grad, tf.scalar(gradScale));
      let p: tf.Tensor = param;
      if (this.weightDecay !== 0) p = tf.mul(p, tf.scalar(1 - this.lr * this.weightDecay));
      const m = lerp(slot.expAvg, grad, 1 - beta1);
      const v = tf.add(
        tf.mul(slot.expAvgSq, tf.scalar(beta2)),
        tf.mul(tf.mul(tf.scalar(1 - beta2), grad), grad),
      );
      let second: tf.Tensor = v;
      if (slot.maxExpAvgSq !== undefined) {
        second = tf.maximum(slot.maxExpAvgSq, v);
        slot.maxExpAvgSq.assign(second);
      }
      const denom = tf.add(
        tf.div(tf.sqrt(second), tf.scalar(biasCorrection2Sqrt)),
        tf.scalar(this.eps),
      );
      const updated = tf.add(p, tf.div(tf.mul(tf.scalar(-stepSize), m), denom));
      slot.expAvg.assign(m);
      slot.expAvgSq.assign(v);
      param.assign(updated);
    });
  }

  /**
   * The state tensors {@link AdamW.stateDict} reads (moments of every parameter stepped so far).
   *
   * @example
   * ```ts
   * await Promise.all(opt.stateTensors().map((t) => t.data())); // then stateDict() reads no GPU
   * ```
   */
  stateTensors(): tf.Tensor[] {
    const out: tf.Tensor[] = [];
    for (const slot of this.slots.values()) {
      out.push(slot.expAvg, slot.expAvgSq);
      if (slot.maxExpAvgSq !== undefined) out.push(slot.maxExpAvgSq);
    }
    return out;
  }

  /**
   * The state as plain typed arrays: `<name>.exp_avg`, `<name>.exp_avg_sq` (and
   * `<name>.max_exp_avg_sq` with amsgrad), plus each parameter's step count.
   *
   * @example
   * ```ts
   * const state = opt.stateDict();
   * await writeSafetensors('optimizer.safetensors', state.tensors);
   * ```
   */
  stateDict(): OptimizerState {
    const tensors: Record<string, StateTensor> = {};
    const steps: Record<string, number> = {};
    for (const [name, slot] of this.slots) {
      steps[name] = slot.step;
      tensors[`${name}.exp_avg`] = f32Tensor(slot.expAvg);
      tensors[`${name}.exp_avg_sq`] = f32Tensor(slot.expAvgSq);
      if (slot.maxExpAvgSq !== undefined) {
        tensors[`${name}.max_exp_avg_sq`] = f32Tensor(slot.maxExpAvgSq);
      }
    }
    return { kind: 'adamw', steps, tensors };
  }

  /**
   * Restores a state written by {@link AdamW.stateDict}; the next step continues bit-identically.
   *
   * @example
   * ```ts
   * const resumed = new AdamW(params, { lr: 2e-4 });
   * resumed.loadStateDict(saved);
   * ```
   */
  loadStateDict(state: OptimizerState): void {
    checkKind(state, 'adamw');
    this.disposeSlots();
    for (const [name, step] of Object.entries(state.steps)) {
      const param = paramOf(this.params, name);
      const read = (key: string): tf.Variable => {
        const data = f32StateArray(state, `${name}.${key}`, param).slice();
        // inside tidy, so the initial tensor does not keep a second reference to the data
        return tf.tidy(() => tf.variable(tf.tensor(data, param.shape, 'float32'), false));
      };
      this.slots.set(name, {
        step,
        expAvg: read('exp_avg'),
        expAvgSq: read('exp_avg_sq'),
        maxExpAvgSq: this.amsgrad ? read('max_exp_avg_sq') : undefined,
      });
    }
  }

  /**
   * Bytes of optimizer state held in tensors (8 per parameter element, 12 with amsgrad).
   *
   * @example
   * ```ts
   * opt.stateBytes(); // 8 × number of trained elements, after the first step
   * ```
   */
  stateBytes(): number {
    let bytes = 0;
    for (const slot of this.slots.values()) {
      bytes += 4 * (slot.expAvg.size + slot.expAvgSq.size + (slot.maxExpAvgSq?.size ?? 0));
    }
    return bytes;
  }

  /**
   * Frees the state tensors (not the parameters).
   *
   * @example
   * ```ts
   * opt.dispose();
   * ```
   */
  dispose(): void {
    this.disposeSlots();
  }

  private disposeSlots(): void {
    for (const slot of this.slots.values()) {
      slot.expAvg.dispose();
      slot.expAvgSq.dispose();
      slot.maxExpAvgSq?.dispose();
    }
    this.slots.clear();
  }

  private slotOf(name: string, param: tf.Variable): AdamWSlot {
    let slot = this.slots.get(name);
    if (slot === undefined) {
      slot = {
        step: 0,
        expAvg: zeroVariable(param),
        expAvgSq: zeroVariable(param),
        maxExpAvgSq: this.amsgrad ? zeroVariable(param) : undefined,
      };
      this.slots.set(name, slot);
    }
    return slot;
  }
}

function zeroVariable(param: tf.Tensor): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zerosLike(param), false));
}

/**
 * torch's `lerp(start, end, w)` for a scalar weight: `start + w·(end − start)` when |w| < 0.5,
 * else `end − (end − start)·(1 − w)` (torch fuses the multiply-add; here it rounds twice, so
 * the moment can differ from torch's in the last bit).
 */
function lerp(start: tf.Tensor, end: tf.Tensor, weight: number): tf.Tensor {
  const diff = tf.sub(end, start);
  if (Math.abs(weight) < 0.5) return tf.add(start, tf.mul(tf.scalar(weight), diff));
  const w = Math.fround(weight);
  return tf.sub(end, tf.mul(diff, tf.scalar(1 - w)));
}
