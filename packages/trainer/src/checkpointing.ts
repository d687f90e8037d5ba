import { loraLayers } from '@qlora/lora';
import * as tf from '@tensorflow/tfjs-core';
import { guardDeviceErrors } from './_device-limits';
import {
  dropoutCounters,
  loraLayersOf,
  namedParameters,
  restoreDropoutCounters,
} from './_lora-state';
import { TRAIN_LIMITS } from './_sequence-limits';
import {
  decoderLayer,
  embed,
  type FlatBatch,
  forwardLossSum,
  headLossSum,
  prepareBatch,
} from './_train-forward';
import { ensureGradients } from './ensure-gradients';
import type { LlamaModel } from './llama-model';

/**
 * Options of {@link lossGradients}.
 *
 * @example
 * ```ts
 * const options: LossGradientOptions = { gradientCheckpointing: true, scale: 1 / 512 };
 * ```
 */
export interface LossGradientOptions {
  /**
   * Recompute each decoder layer during backward instead of keeping its activations
   * (HF `gradient_checkpointing=True`): memory ≈ one layer's activations + every layer's input.
   * Default false.
   */
  gradientCheckpointing?: boolean;
  /** The loss differentiated is `scale · Σ token losses` (e.g. 1 / target tokens). Default 1. */
  scale?: number;
}

/**
 * What {@link lossGradients} returns.
 *
 * @example
 * ```ts
 * const { loss, labelCount, grads }: LossGradients = lossGradients(model, batch);
 * ```
 */
export interface LossGradients {
  /** `scale · Σ` cross-entropy over the target tokens (with scale 1/N: this batch's share of the mean). */
  loss: number;
  /** Target tokens of the batch (labels ≠ −100 after the causal shift). */
  labelCount: number;
  /** d(scale · lossSum)/dθ for every adapter tensor, by PEFT name. The caller disposes them. */
  grads: Record<string, tf.Tensor>;
}

/**
 * Gradients of the causal-LM loss of one micro-batch with respect to the LoRA adapter (every
 * A and B, PEFT-named), as transformers' `ForCausalLMLoss` (shifted labels, −100 ignored,
 * position ids 0…T−1, padding keys masked). With `gradientCheckpointing`, the forward keeps only
 * each decoder layer's input and the backward recomputes the layers one at a time, last first,
 * each under its own `tf.grads` with the incoming gradient as `dy` — the same recomputation as
 * `torch.utils.checkpoint` (non-reentrant). It is done layer by layer rather than inside a
 * `tf.customGrad`, because a gradient function cannot open a nested tape in tfjs-core 4.22 (the
 * inner `gradients()` call replaces and then clears the outer tape). LoRA dropout masks are
 * replayed exactly in the recomputation.
 *
 * @example
 * ```ts
 * const batch = collateBatch(examples, { padTokenId: 0 });
 * const { loss, labelCount, grads } = lossGradients(model, batch, { gradientCheckpointing: true });
 * loss / labelCount; // mean token loss (scale 1)
 * ```
 */
export function lossGradients(
  model: LlamaModel,
  batch: FlatBatch,
  options: LossGradientOptions = {},
): LossGradients {
  const { lossTensor, labelCount, grads } = lossGradientTensors(model, batch, options);
  const loss = lossTensor.dataSync()[0] as number;
  lossTensor.dispose();
  return { loss, labelCount, grads };
}

/**
 * {@link lossGradients} with an asynchronous read of the loss, for backends that cannot read
 * synchronously (tfjs-webgpu in Node, WebGL in a worker). Same values.
 *
 * @example
 * ```ts
 * const { loss, grads } = await lossGradientsAsync(model, batch, { gradientCheckpointing: true });
 * ```
 */
export async function lossGradientsAsync(
  model: LlamaModel,
  batch: FlatBatch,
  options: LossGradientOptions = {},
): Promise<LossGradients> {
  let grads: Record<string, tf.Tensor> = {};
  try {
    // On webgpu, inside an error scope: a buffer the device refused fails here, typed.
    return await guardDeviceErrors(TRAIN_LIMITS, async () => {
      const result = lossGradientTensors(model, batch, options);
      grads = result.grads;
      try {
        const loss = (await result.lossTensor.data())[0] as number;
        return { loss, labelCount: result.labelCount, grads };
      } finally {
        result.lossTensor.dispose();
      }
    });
  } catch (error) {
    tf.dispose(Object.values(grads));
    throw error;
  }
}

/** What {@link lossGradientTensors} returns: the loss still on the backend. */
export interface LossGradientTensors {
  lossTensor: tf.Scalar;
  labelCount: number;
  grads: Record<string, tf.Tensor>;
}

/**
 * {@link lossGradients} without any read: the scaled loss stays a backend scalar (the caller
 * reads and disposes it), so a training step can queue its work and read once at the end.
 */
export function lossGradientTensors(
  model: LlamaModel,
  batch: FlatBatch,
  options: LossGradientOptions = {},
): LossGradientTensors {
  ensureGradients();
  const scale = options.scale ?? 1;
  const params = namedParameters(model);
  const prepared = prepareBatch(model, batch);
  try {
    if (!options.gradientCheckpointing) {
      const { value, grads } = tf.variableGrads(
        () => tf.tidy(() => tf.mul(forwardLossSum(model, prepared), tf.scalar(scale)) as tf.Scalar),
        params.map((p) => p.variable),
      );
      const out: Record<string, tf.Tensor> = {};
      for (const p of params) {
        const g = grads[p.variable.name];
        if (g) out[p.name] = g;
      }
      return { lossTensor: value, labelCount: prepared.labelCount, grads: out };
    }
    return checkpointedGradients(model, prepared, params, scale);
  } finally {
    prepared.dispose();
  }
}

function checkpointedGradients(
  model: LlamaModel,
  prepared: ReturnType<typeof prepareBatch>,
  params: ReturnType<typeof namedParameters>,
  scale: number,
): LossGradientTensors {
  const layerCount = model.layers.length;
  const inputs: tf.Tensor[] = [];
  const counters: number[][] = [];
  const allLora = loraLayers(model);
  // Forward without a tape: only the layer inputs survive.
  let hidden: tf.Tensor = embed(model, prepared);
  for (let i = 0; i < layerCount; i++) {
    inputs.push(hidden);
    counters.push(dropoutCounters(loraLayersOf(model, i)));
    hidden = decoderLayer(model, i, hidden, prepared);
  }
  const afterForward = dropoutCounters(allLora);
  const out: Record<string, tf.Tensor> = {};
  let lossTensor: tf.Scalar | undefined;
  try {
    const [scaledLoss, dLast] = tf.tidy(() => {
      const { value, grads } = tf.valueAndGrads((h: tf.Tensor) =>
        tf.mul(headLossSum(model, h, prepared), tf.scalar(scale)),
      )([hidden]);
      return [value as tf.Scalar, grads[0] as tf.Tensor];
    });
    lossTensor = scaledLoss;
    let dy = dLast;
    for (let i = layerCount - 1; i >= 0; i--) {
      const layerParams = params.filter((p) => p.layer === i);
      const x = inputs[i] as tf.Tensor;
      const needInput = i > 0;
      const lora = loraLayersOf(model, i);
      restoreDropoutCounters(lora, counters[i] as number[]);
      const xs = [...(needInput ? [x] : []), ...layerParams.map((p) => p.variable)];
      if (xs.length === 0) continue;
      const grads = tf.grads((...args: tf.Tensor[]) =>
        decoderLayer(model, i, needInput ? (args[0] as tf.Tensor) : x, prepared),
      )(xs, dy as tf.Tensor3D);
      dy.dispose();
      const offset = needInput ? 1 : 0;
      layerParams.forEach((p, k) => {
        out[p.name] = grads[offset + k] as tf.Tensor;
      });
      dy = needInput ? (grads[0] as tf.Tensor) : tf.scalar(0);
    }
    dy.dispose();
  } catch (error) {
    lossTensor?.dispose();
    throw error;
  } finally {
    tf.dispose(inputs);
    hidden.dispose();
    restoreDropoutCounters(allLora, afterForward);
  }
  // Same order as the parameters (A then B, layer by layer) regardless of the backward order.
  const ordered: Record<string, tf.Tensor> = {};
  for (const p of params) {
    const g = out[p.name];
    if (g) ordered[p.name] = g;
  }
  return { lossTensor: lossTensor as tf.Scalar, labelCount: prepared.labelCount, grads: ordered };
}
