import * as tf from '@tensorflow/tfjs-core';
import { TrainerError } from '../errors';
import {
  checkKind,
  f32StateArray,
  fmaF32,
  paramOf,
  validateHyperparameters,
  validateLearningRate,
} from './_common';
import {
  dequantizeBlockwise,
  OPTIMIZER_BLOCKSIZE,
  quantizeBlockwise,
  signedDynamicMap,
  unsignedDynamicMap,
} from './dynamic-map';
import type {
  NamedGradients,
  NamedVariables,
  Optimizer,
  OptimizerState,
  OptimizerStepOptions,
  StateTensor,
} from './types';

/**
 * Hyperparameters of {@link AdamW8bit}; the defaults are `bitsandbytes.optim.AdamW8bit`'s
 * (HF `optim="adamw_8bit"` passes the TrainingArguments values instead: lr, weight decay, betas
 * (0.9, 0.999), eps 1e-8).
 *
 * @example
 * ```ts
 * const options: AdamW8bitOptions = { lr: 2e-4, weightDecay: 0.001 }; // Unsloth notebooks
 * ```
 */
export interface AdamW8bitOptions {
  /** Learning rate (default 1e-3); the `lr` property can be changed between steps. */
  lr?: number;
  /** (β1, β2), default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay (default 0.01): `p ← p·(1 − lr·wd)` when > 0. */
  weightDecay?: number;
  /** Parameters with fewer elements keep float32 state, as bitsandbytes (default 4096). */
  min8bitSize?: number;
}

type Slot8bit = {
  bits: 8;
  step: number;
  size: number;
  /** uint8 codes, four per int32 element (TensorFlow.js has no uint8 dtype). */
  codes1: tf.Tensor;
  absmax1: tf.Tensor;
  codes2: tf.Tensor;
  absmax2: tf.Tensor;
};

type Slot32bit = { bits: 32; step: number; state1: tf.Tensor; state2: tf.Tensor };

const SIGNED = signedDynamicMap();
const UNSIGNED = unsignedDynamicMap();

/**
 * 8-bit AdamW as `bitsandbytes.optim.AdamW8bit` (HF `optim="adamw_8bit"`, the Unsloth default),
 * with the arithmetic of bitsandbytes' pure-PyTorch CPU kernel: both moments are stored
 * blockwise-quantized — uint8 codes of the signed dynamic map for m, of the unsigned map for v,
 * one float32 absmax per 256 values — and each step dequantizes them (`code[q]·absmax`), runs the
 * float32 Adam update (`m ← m·β1 + (1−β1)·g`, `v ← v·β2 + (1−β2)·g²`,
 * `p ← p·(1 − lr·wd) − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)`) and requantizes (absmax per
 * block, nearest code). Parameters under `min8bitSize` elements keep float32 state and
 * bitsandbytes' 32-bit update. State takes ≈ 2 bytes + 8/256 per element instead of 8.
 *
 * @example
 * ```ts
 * const w = tf.variable(tf.randomNormal([64, 128]), true, 'w');
 * const opt = new AdamW8bit({ w }, { lr: 2e-4, weightDecay: 0.001 });
 * opt.step({ w: tf.onesLike(w) });
 * opt.stateBytes(); // 16640 = 2 × 8192 code bytes + 2 × 32 blocks × 4 B of absmax
 * ```
 */
export class AdamW8bit implements Optimizer {
  lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly min8bitSize: number;
  private readonly params: NamedVariables;
  private readonly slots = new Map<string, Slot8bit | Slot32bit>();

  constructor(params: NamedVariables, options: AdamW8bitOptions = {}) {
    this.params = params;
    this.lr = options.lr ?? 1e-3;
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    this.min8bitSize = options.min8bitSize ?? 4096;
    validateHyperparameters(this.lr, this.betas, this.eps, this.weightDecay);
  }

  /**
   * One update of every parameter that has a gradient in `grads` (each first multiplied by
   * `options.gradScale` when given).
   *
   * @example
   * ```ts
   * opt.lr = schedule(step);
   * opt.step(grads);
   * ```
   */
  step(grads: NamedGradients, options: OptimizerStepOptions = {}): void {
    validateLearningRate(this.lr);
    const gradScale = Math.fround(options.gradScale ?? 1);
    for (const [name, raw] of Object.entries(grads)) {
      const param = paramOf(this.params, name, raw);
      const slot = this.slotOf(name, param);
      slot.step += 1;
      // clip_grad_norm_'s grad.mul_(coef), one float32 product per element
      const grad = gradScale === 1 ? raw : tf.mul(raw, tf.scalar(gradScale));
      try {
        if (slot.bits === 8) this.step8bit(param, grad, slot);
        else this.step32bit(param, grad, slot);
      } finally {
        if (grad !== raw) grad.dispose();
      }
    }
  }

  /** bitsandbytes `_optimizer_update_8bit_blockwise_cpu`, optimizer "adam". */
  private step8bit(param: tf.Variable, grad: tf.Tensor, slot: Slot8bit): void {
    const [beta1, beta2] = this.betas;
    const n = slot.size;
    const g = grad.dataSync() as Float32Array;
    const p = param.dataSync() as Float32Array;
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    dequantizeBlockwise(
      codesOf(slot.codes1, n),
      slot.absmax1.dataSync() as Float32Array,
      SIGNED,
      OPTIMIZER_BLOCKSIZE,
      m,
    );
    dequantizeBlockwise(
      codesOf(slot.codes2, n),
      slot.absmax2.dataSync() as Float32Array,
      UNSIGNED,
      OPTIMIZER_BLOCKSIZE,
      v,
    );
    const b1 = Math.fround(beta1);
    const oneMinusB1 = Math.fround(1 - beta1);
    const b2 = Math.fround(beta2);
    const oneMinusB2 = Math.fround(1 - beta2);
    const correction2 = Math.fround(Math.sqrt(1 - beta2 ** slot.step));
    const negStepSize = Math.fround(-this.lr / (1 - beta1 ** slot.step));
    const eps = Math.fround(this.eps);
    const decayed = this.weightDecay > 0;
    const decay = Math.fround(1 - this.lr * this.weightDecay);
    const pOut = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const gi = g[i] as number;
      // state1.mul_(β1).add_(grad, alpha=1−β1): torch's add with alpha is a fused multiply-add
      const mi = fmaF32(gi, oneMinusB1, Math.fround((m[i] as number) * b1));
      // state2.mul_(β2).addcmul_(grad, grad, value=1−β2)
      const vi = fmaF32(Math.fround(oneMinusB2 * gi), gi, Math.fround((v[i] as number) * b2));
      const denom = Math.fround(Math.fround(Math.fround(Math.sqrt(vi)) / correction2) + eps);
      let pi = p[i] as number;
      if (decayed) pi = Math.fround(pi * decay);
      pOut[i] = Math.fround(pi + Math.fround(Math.fround(negStepSize * mi) / denom));
      m[i] = mi;
      v[i] = vi;
    }
    const blocks = blockCount(n);
    const codes1 = new Uint8Array(paddedLength(n));
    const codes2 = new Uint8Array(paddedLength(n));
    const absmax1 = new Float32Array(blocks);
    const absmax2 = new Float32Array(blocks);
    quantizeBlockwise(m, SIGNED, OPTIMIZER_BLOCKSIZE, codes1.subarray(0, n), absmax1);
    quantizeBlockwise(v, UNSIGNED, OPTIMIZER_BLOCKSIZE, codes2.subarray(0, n), absmax2);
    tf.dispose([slot.codes1, slot.absmax1, slot.codes2, slot.absmax2]);
    slot.codes1 = packedCodes(codes1);
    slot.codes2 = packedCodes(codes2);
    slot.absmax1 = tf.tensor1d(absmax1, 'float32');
    slot.absmax2 = tf.tensor1d(absmax2, 'float32');
    tf.tidy(() => param.assign(tf.tensor(pOut, param.shape, 'float32')));
  }

  /** bitsandbytes `_optimizer_update_32bit_cpu`, optimizer "adam" (parameters < min8bitSize). */
  private step32bit(param: tf.Variable, grad: tf.Tensor, slot: Slot32bit): void {
    const [beta1, beta2] = this.betas;
    const g = grad.dataSync() as Float32Array;
    const p = param.dataSync() as Float32Array;
    const m = slot.state1.dataSync() as Float32Array;
    const v = slot.state2.dataSync() as Float32Array;
    const n = p.length;
    const b1 = Math.fround(beta1);
    const oneMinusB1 = Math.fround(1 - beta1);
    const b2 = Math.fround(beta2);
    const oneMinusB2 = Math.fround(1 - beta2);
    const correction1 = 1 - beta1 ** slot.step;
    const correction2 = Math.sqrt(1 - beta2 ** slot.step);
    const stepSize = Math.fround((-this.lr * correction2) / correction1);
    const epsScaled = Math.fround(this.eps * correction2);
    const decayed = this.weightDecay > 0;
    const decay = Math.fround(1 - this.lr * this.weightDecay);
    const pOut = new Float32Array(n);
    const mOut = new Float32Array(n);
    const vOut = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const gi = g[i] as number;
      const mi = fmaF32(gi, oneMinusB1, Math.fround((m[i] as number) * b1));
      const vi = fmaF32(Math.fround(oneMinusB2 * gi), gi, Math.fround((v[i] as number) * b2));
      let pi = p[i] as number;
      if (decayed) pi = Math.fround(pi * decay);
      const update = Math.fround(mi / Math.fround(Math.fround(Math.sqrt(vi)) + epsScaled));
      // p_float.add_(update, alpha=step_size): fused multiply-add
      pOut[i] = fmaF32(update, stepSize, pi);
      mOut[i] = mi;
      vOut[i] = vi;
    }
    tf.dispose([slot.state1, slot.state2]);
    slot.state1 = tf.tensor(mOut, param.shape, 'float32');
    slot.state2 = tf.tensor(vOut, param.shape, 'float32');
    tf.tidy(() => param.assign(tf.tensor(pOut, param.shape, 'float32')));
  }

  /**
   * The state tensors {@link AdamW8bit.stateDict} reads (codes, absmax or f32 states).
   *
   * @example
   * ```ts
   * await Promise.all(opt.stateTensors().map((t) => t.data())); // then stateDict() reads no GPU
   * ```
   */
  stateTensors(): tf.Tensor[] {
    const out: tf.Tensor[] = [];
    for (const slot of this.slots.values()) {
      for (const value of Object.values(slot)) if (value instanceof tf.Tensor) out.push(value);
    }
    return out;
  }

  /**
   * The state as plain typed arrays with bitsandbytes' names: `<name>.state1` / `.state2` (U8
   * codes, the parameter's shape) and `<name>.absmax1` / `.absmax2` (F32 per block), or
   * `state1` / `state2` as F32 for parameters kept in 32 bits.
   *
   * @example
   * ```ts
   * const state = opt.stateDict();
   * state.tensors['w.state1'].dtype; // 'U8'
   * ```
   */
  stateDict(): OptimizerState {
    const tensors: Record<string, StateTensor> = {};
    const steps: Record<string, number> = {};
    for (const [name, slot] of this.slots) {
      steps[name] = slot.step;
      const shape = [...paramOf(this.params, name).shape];
      if (slot.bits === 8) {
        tensors[`${name}.state1`] = {
          dtype: 'U8',
          shape,
          data: codesOf(slot.codes1, slot.size).slice(),
        };
        tensors[`${name}.absmax1`] = f32Copy(slot.absmax1);
        tensors[`${name}.state2`] = {
          dtype: 'U8',
          shape,
          data: codesOf(slot.codes2, slot.size).slice(),
        };
        tensors[`${name}.absmax2`] = f32Copy(slot.absmax2);
      } else {
        tensors[`${name}.state1`] = f32Copy(slot.state1);
        tensors[`${name}.state2`] = f32Copy(slot.state2);
      }
    }
    return { kind: 'adamw8bit', steps, tensors };
  }

  /**
   * Restores a state written by {@link AdamW8bit.stateDict}.
   *
   * @example
   * ```ts
   * const resumed = new AdamW8bit(params, { lr: 2e-4 });
   * resumed.loadStateDict(saved);
   * ```
   */
  loadStateDict(state: OptimizerState): void {
    checkKind(state, 'adamw8bit');
    this.disposeSlots();
    for (const [name, step] of Object.entries(state.steps)) {
      const param = paramOf(this.params, name);
      if (param.size >= this.min8bitSize) {
        const blocks = blockCount(param.size);
        const codes = (key: string): tf.Tensor => {
          const t = state.tensors[`${name}.${key}`];
          if (t === undefined || t.dtype !== 'U8' || t.data.length !== param.size) {
            throw new TrainerError(
              'E_OPTIMIZER',
              `Optimizer state ${name}.${key}: expected U8 with ${param.size} elements, got ${t === undefined ? 'nothing' : `${t.dtype} with ${t.data.length}`}.`,
            );
          }
          const padded = new Uint8Array(paddedLength(param.size));
          padded.set(t.data);
          return packedCodes(padded);
        };
        const absmax = (key: string): tf.Tensor => {
          const t = state.tensors[`${name}.${key}`];
          if (t === undefined || t.dtype !== 'F32' || t.data.length !== blocks) {
            throw new TrainerError(
              'E_OPTIMIZER',
              `Optimizer state ${name}.${key}: expected F32 with ${blocks} blocks, got ${t === undefined ? 'nothing' : `${t.dtype} with ${t.data.length}`}.`,
            );
          }
          return tf.tensor1d(t.data.slice(), 'float32');
        };
        this.slots.set(name, {
          bits: 8,
          step,
          size: param.size,
          codes1: codes('state1'),
          absmax1: absmax('absmax1'),
          codes2: codes('state2'),
          absmax2: absmax('absmax2'),
        });
      } else {
        this.slots.set(name, {
          bits: 32,
          step,
          state1: tf.tensor(f32StateArray(state, `${name}.state1`, param).slice(), param.shape),
          state2: tf.tensor(f32StateArray(state, `${name}.state2`, param).slice(), param.shape),
        });
      }
    }
  }

  /**
   * Bytes of optimizer state held in tensors: per 8-bit parameter of n elements
   * 2·n (codes) + 2·4·⌈n/256⌉ (absmax); 8·n for parameters kept in 32 bits.
   *
   * @example
   * ```ts
   * opt.stateBytes(); // ≈ 2.03 × trained elements
   * ```
   */
  stateBytes(): number {
    let bytes = 0;
    for (const slot of this.slots.values()) {
      const tensors =
        slot.bits === 8
          ? [slot.codes1, slot.absmax1, slot.codes2, slot.absmax2]
          : [slot.state1, slot.state2];
      for (const t of tensors) bytes += 4 * t.size;
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
      if (slot.bits === 8) tf.dispose([slot.codes1, slot.absmax1, slot.codes2, slot.absmax2]);
      else tf.dispose([slot.state1, slot.state2]);
    }
    this.slots.clear();
  }

  private slotOf(name: string, param: tf.Variable): Slot8bit | Slot32bit {
    let slot = this.slots.get(name);
    if (slot === undefined) {
      if (param.size >= this.min8bitSize) {
        // bitsandbytes starts from all-zero codes and absmax 0 (dequantizes to ±0).
        slot = {
          bits: 8,
          step: 0,
          size: param.size,
          codes1: packedCodes(new Uint8Array(paddedLength(param.size))),
          absmax1: tf.zeros([blockCount(param.size)]),
          codes2: packedCodes(new Uint8Array(paddedLength(param.size))),
          absmax2: tf.zeros([blockCount(param.size)]),
        };
      } else {
        slot = { bits: 32, step: 0, state1: tf.zerosLike(param), state2: tf.zerosLike(param) };
      }
      this.slots.set(name, slot);
    }
    return slot;
  }
}

function blockCount(n: number): number {
  return Math.ceil(n / OPTIMIZER_BLOCKSIZE);
}

function paddedLength(n: number): number {
  return 4 * Math.ceil(n / 4);
}

/** uint8 codes (length a multiple of 4) as an int32 tensor of a quarter the length. */
function packedCodes(codes: Uint8Array): tf.Tensor {
  return tf.tensor1d(new Int32Array(codes.buffer, codes.byteOffset, codes.length / 4), 'int32');
}

/** The first n uint8 codes of a packed tensor (a view: copy before keeping it). */
function codesOf(packed: tf.Tensor, n: number): Uint8Array {
  const words = packed.dataSync() as Int32Array;
  return new Uint8Array(words.buffer, words.byteOffset, n);
}

function f32Copy(t: tf.Tensor): StateTensor {
  return {
    dtype: 'F32',
    shape: [...t.shape],
    data: Float32Array.from(t.dataSync() as Float32Array),
  };
}
