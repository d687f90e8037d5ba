import * as tf from '@tensorflow/tfjs-core';
import { TrainerError } from '../errors';
import type { NamedVariables, OptimizerState, StateTensor } from './types';

/** Looks the parameter of a gradient up; shapes must agree. */
export function paramOf(params: NamedVariables, name: string, grad?: tf.Tensor): tf.Variable {
  const param = params[name];
  if (param === undefined) {
    throw new TrainerError(
      'E_OPTIMIZER',
      `Unknown parameter ${JSON.stringify(name)}: expected one of ${Object.keys(params).length} registered names, got a gradient or state for it. ` +
        'Key the gradients by the names passed to the optimizer.',
    );
  }
  if (grad !== undefined) {
    if (grad.dtype !== 'float32' || !sameShape(grad.shape, param.shape)) {
      throw new TrainerError(
        'E_OPTIMIZER',
        `Gradient of ${name}: expected float32 [${param.shape}], got ${grad.dtype} [${grad.shape}].`,
      );
    }
  }
  return param;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Checks lr, betas, eps, weight decay as torch does. */
export function validateHyperparameters(
  lr: number,
  betas: readonly [number, number],
  eps: number,
  weightDecay: number,
): void {
  validateLearningRate(lr);
  betas.forEach((beta, i) => {
    if (!(beta >= 0 && beta < 1)) {
      throw new TrainerError(
        'E_OPTIMIZER',
        `Invalid beta parameter at index ${i}: expected 0 ≤ β < 1, got ${beta}.`,
      );
    }
  });
  if (!(eps >= 0)) {
    throw new TrainerError('E_OPTIMIZER', `Invalid epsilon: expected ≥ 0, got ${eps}.`);
  }
  if (!(weightDecay >= 0)) {
    throw new TrainerError(
      'E_OPTIMIZER',
      `Invalid weight decay: expected ≥ 0, got ${weightDecay}.`,
    );
  }
}

export function validateLearningRate(lr: number): void {
  if (!(lr >= 0) || !Number.isFinite(lr)) {
    throw new TrainerError(
      'E_OPTIMIZER',
      `Invalid learning rate: expected a finite number ≥ 0, got ${lr}. Check the schedule.`,
    );
  }
}

export function f32Tensor(t: tf.Tensor): StateTensor {
  // dataSync may hand out the backend's own array: copy before anyone can mutate it.
  return {
    dtype: 'F32',
    shape: [...t.shape],
    data: Float32Array.from(t.dataSync() as Float32Array),
  };
}

/** Reads an F32 state tensor of the parameter's size, or throws naming what is wrong. */
export function f32StateArray(state: OptimizerState, key: string, param: tf.Tensor): Float32Array {
  const t = state.tensors[key];
  if (t === undefined || t.dtype !== 'F32' || t.data.length !== param.size) {
    throw new TrainerError(
      'E_OPTIMIZER',
      `Optimizer state ${key}: expected F32 with ${param.size} elements, got ${t === undefined ? 'nothing' : `${t.dtype} with ${t.data.length}`}. ` +
        'Was the checkpoint written for other parameters or another optimizer?',
    );
  }
  return t.data;
}

export function checkKind(state: OptimizerState, kind: OptimizerState['kind']): void {
  if (state.kind !== kind) {
    throw new TrainerError(
      'E_OPTIMIZER',
      `Optimizer state kind: expected ${kind}, got ${String(state.kind)}. Resume with the optimizer the run was started with.`,
    );
  }
}

/**
 * float32 `a·b + c` with a single rounding, the fused multiply-add of torch's vectorized CPU
 * kernels. `a·b` of two float32 values is exact in a double; the sum rounds to double and then to
 * float32 (a double rounding that can differ from a true fused operation only in rare exact
 * halfway cases).
 */
export function fmaF32(a: number, b: number, c: number): number {
  return Math.fround(a * b + c);
}

/** Element loops on backends whose data lives in JS or WASM memory, tensor ops elsewhere. */
export function defaultArithmetic(): 'torch-cpu' | 'tensor-ops' {
  const backend = tf.getBackend();
  return backend === 'cpu' || backend === 'wasm' ? 'torch-cpu' : 'tensor-ops';
}
