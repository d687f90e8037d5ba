import type * as tf from '@tensorflow/tfjs-core';
import { denseWeightOf } from './dense-linear';
import { LoraError } from './errors';
import type { Linear } from './linear';
import { LoraLinear } from './lora-linear';
import { Nf4Linear } from './nf4-linear';

/**
 * The f32 weight `[out, in]` of a projection that a tensor-core layer converts: a dense weight as
 * is, an NF4 one dequantized (call inside tf.tidy). `what` names the caller in errors: a layer
 * with an adapter (merge it first) or another base is refused.
 */
export function convertibleWeight(linear: Linear, what: string): () => tf.Tensor2D {
  if (linear instanceof LoraLinear) {
    throw new LoraError(
      'E_ALREADY_INJECTED',
      `${what}: expected a projection without an adapter, got one on ${linear.name}. Hint: merge it first (mergeAndUnload).`,
    );
  }
  if (linear instanceof Nf4Linear) return () => linear.dequantize();
  const dense = denseWeightOf(linear);
  if (dense === undefined) {
    throw new LoraError(
      'E_BASE_WEIGHT',
      `${what} ${linear.name}: expected a dense f32 [${linear.outFeatures}, ${linear.inFeatures}] or NF4 weight, got ${Object.keys(linear.weights()).join(', ') || 'none'}`,
    );
  }
  return () => dense;
}
