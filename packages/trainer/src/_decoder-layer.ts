import * as tf from '@tensorflow/tfjs-core';
import {
  fusedRmsNorm,
  fusedRotarySplitHeads,
  fusedSwiglu,
  useFusedElementwise,
} from './_webgpu-fused';
import type { LlamaConfig } from './config';
import type { KvCache } from './kv-cache';
import type { LlamaLayer, LlamaModel } from './llama-model';
import { rotaryTables } from './rope';

// The one implementation of the Llama decoder maths, shared by inference (LlamaModel.forward,
// with or without a KV cache) and training (_train-forward.ts, layer by layer for gradient
// checkpointing). Keeping a single copy is what makes training logits bit-identical to
// inference logits on cpu: the same tfjs ops run in the same order.

// Large and finite, so a fully masked row (a left-padding query) softmaxes to uniform, not NaN.
const MASKED = -1e30;

/**
 * The per-forward tensors every decoder layer reads. The caller owns (and disposes) them.
 *
 * @example
 * ```ts
 * const inputs: AttentionInputs = attentionInputs(model, { batch, steps, past, positions, keyMask });
 * ```
 */
export interface AttentionInputs {
  /** `[B, 1, T, headDim]` rotary cos of the new positions. */
  cos: tf.Tensor4D;
  /** `[B, 1, T, headDim]` rotary sin of the new positions. */
  sin: tf.Tensor4D;
  /** `[B, 1, T, past + T]` additive mask: 0 where a query sees a key, a large negative elsewhere. */
  mask: tf.Tensor4D;
}

/**
 * Rotary tables and the additive attention mask for `steps` new tokens after `past` cached
 * ones: causal, and keys whose `keyMask` entry is 0 (padding) hidden.
 *
 * @example
 * ```ts
 * // one row of 3 tokens, no cache, positions 0…2, no padding
 * const { cos, sin, mask } = attentionInputs(model, {
 *   batch: 1, steps: 3, past: 0, positions: new Int32Array([0, 1, 2]), keyMask: () => 1,
 * });
 * ```
 */
export function attentionInputs(
  model: LlamaModel,
  shape: {
    batch: number;
    steps: number;
    past: number;
    /** `[B, T]` row-major position ids of the new tokens. */
    positions: Int32Array;
    /** Row `b`, key `j` (0 ≤ j < past + T): 1 for a real token, 0 for padding. */
    keyMask: (b: number, j: number) => number | undefined;
  },
): AttentionInputs {
  const { batch, steps, past, positions, keyMask } = shape;
  const headDim = model.config.headDim;
  const total = past + steps;
  const { cos, sin } = rotaryTables(model.inverseFrequencies, positions);
  const additive = new Float32Array(batch * steps * total);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < steps; i++) {
      const base = (b * steps + i) * total;
      for (let j = 0; j < total; j++) {
        if (j > past + i || keyMask(b, j) === 0) additive[base + j] = MASKED;
      }
    }
  }
  return {
    cos: tf.tensor4d(cos, [batch, 1, steps, headDim]),
    sin: tf.tensor4d(sin, [batch, 1, steps, headDim]),
    mask: tf.tensor4d(additive, [batch, 1, steps, total]),
  };
}

/**
 * transformers' `LlamaRMSNorm`: `weight * (x * rsqrt(mean(x², -1) + eps))` in f32. On webgpu (with
 * the fused kernels on) one WGSL dispatch per direction instead of a chain of tfjs ops.
 *
 * @example
 * ```ts
 * rmsNorm(tf.tensor2d([[3, 4]]), tf.ones([2]) as tf.Tensor1D, 0); // ≈ [[0.8485, 1.1314]]
 * ```
 */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  // The fused backward gives dx only: a trained norm weight takes the tfjs chain.
  if (useFusedElementwise() && !(weight instanceof tf.Variable))
    return fusedRmsNorm(x, weight, eps);
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(weight, tf.mul(x, tf.rsqrt(tf.add(variance, eps))));
}

function rotateHalf(x: tf.Tensor4D): tf.Tensor4D {
  const half = x.shape[3] / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  return tf.concat([tf.neg(x2 as tf.Tensor), x1 as tf.Tensor], 3) as tf.Tensor4D;
}

function applyRotary(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return tf.add(tf.mul(x, cos), tf.mul(rotateHalf(x), sin)) as tf.Tensor4D;
}

/**
 * One Llama decoder layer, `[B, T, H]` → `[B, T, H]`: RMSNorm, rotary grouped-query attention
 * (keys/values extended from and stored into `cache` when given), residual, RMSNorm, SwiGLU MLP,
 * residual. Intermediates are released; the result is the caller's.
 *
 * @example
 * ```ts
 * let hidden = tf.gather(model.embedTokens, ids);
 * model.layers.forEach((layer, index) => {
 *   hidden = decoderLayerForward(model.config, layer, hidden, inputs, cache && { cache, index });
 * });
 * ```
 */
export function decoderLayerForward(
  config: LlamaConfig,
  layer: LlamaLayer,
  hidden: tf.Tensor,
  inputs: AttentionInputs,
  kv?: { cache: KvCache; index: number },
): tf.Tensor3D {
  const [batch, steps] = hidden.shape as [number, number, number];
  const headDim = config.headDim;
  const heads = config.numAttentionHeads;
  const kvHeads = config.numKeyValueHeads;
  const groups = heads / kvHeads;
  const scale = headDim ** -0.5;
  return tf.tidy(() => {
    const splitHeads = (x: tf.Tensor, count: number): tf.Tensor4D =>
      tf.transpose(tf.reshape(x, [batch, steps, count, headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
    const fused = useFusedElementwise();
    const rotaryHeads = (x: tf.Tensor, count: number): tf.Tensor4D =>
      fused
        ? fusedRotarySplitHeads(x, inputs.cos, inputs.sin, count)
        : applyRotary(splitHeads(x, count), inputs.cos, inputs.sin);
    const normed = rmsNorm(hidden, layer.inputLayernorm, config.rmsNormEps);
    const q = rotaryHeads(layer.qProj.apply(normed), heads);
    let k = rotaryHeads(layer.kProj.apply(normed), kvHeads);
    let v = splitHeads(layer.vProj.apply(normed), kvHeads);
    if (kv) {
      const pastK = kv.cache.keys[kv.index];
      const pastV = kv.cache.values[kv.index];
      if (pastK && pastV) {
        k = tf.concat([pastK, k], 2) as tf.Tensor4D;
        v = tf.concat([pastV, v], 2) as tf.Tensor4D;
      }
      kv.cache.update(kv.index, k, v);
    }
    const keys = k.shape[2];
    // GQA without copying K/V: query heads j·g … j·g+g−1 share kv head j (repeat_interleave
    // order), so [B, Hq, T, D] is viewed as [B, Hkv, g·T, D] against [B, Hkv, Tk, D].
    // A power-of-two scale (head dims 4, 16, 64, 256) is exact on q: (s·q)·kᵀ = s·(q·kᵀ) bit for
    // bit, and scaling the [B, Hq, T, D] queries instead of the [B, Hq, T, Tk] scores saves one
    // scores-sized tensor and pass per layer.
    const scaleQueries = Number.isInteger(Math.log2(scale));
    const grouped = tf.reshape(scaleQueries ? tf.mul(q, scale) : q, [
      batch,
      kvHeads,
      groups * steps,
      headDim,
    ]);
    const rawScores = tf.reshape(tf.matMul(grouped, k, false, true), [batch, heads, steps, keys]);
    const scores = scaleQueries ? rawScores : tf.mul(rawScores, scale);
    const probs = tf.softmax(tf.add(scores, inputs.mask));
    const context = tf.reshape(
      tf.matMul(tf.reshape(probs, [batch, kvHeads, groups * steps, keys]), v),
      [batch, heads, steps, headDim],
    ); // [B, Hq, T, D]
    const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, steps, heads * headDim]);
    const attended = tf.add(hidden, layer.oProj.apply(merged));
    const normed2 = rmsNorm(attended, layer.postAttentionLayernorm, config.rmsNormEps);
    const gate = layer.gateProj.apply(normed2);
    const up = layer.upProj.apply(normed2);
    return tf.add(
      attended,
      layer.downProj.apply(
        fused ? fusedSwiglu(gate, up) : tf.mul(tf.mul(gate, tf.sigmoid(gate)), up),
      ),
    ) as tf.Tensor3D;
  });
}

/**
 * `[B, T, vocab]` logits from a last hidden state: the final RMSNorm, then the output head.
 *
 * @example
 * ```ts
 * const logits = headLogits(model, hidden); // [B, T, vocab]
 * ```
 */
export function headLogits(model: LlamaModel, hidden: tf.Tensor): tf.Tensor3D {
  return tf.tidy(
    () => model.lmHead.apply(rmsNorm(hidden, model.norm, model.config.rmsNormEps)) as tf.Tensor3D,
  );
}
