import { type LoraLinear, loraLayers } from '@qlora/lora';
import type * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from './llama-model';

// LoraLinear draws a fresh dropout seed per training forward from a per-layer call counter.
// Gradient checkpointing must recompute a layer with the masks of its first forward, and a
// resumed run must continue the counters, so the trainer saves and restores them (in layer order).

export function dropoutCounters(layers: readonly LoraLinear[]): number[] {
  return layers.map((l) => l.dropoutState());
}

export function restoreDropoutCounters(layers: readonly LoraLinear[], counters: readonly number[]) {
  layers.forEach((l, i) => {
    l.restoreDropoutState(counters[i] ?? 0);
  });
}

/** A trainable tensor with its PEFT name (`base_model.model.<module>.lora_A.weight`). */
export interface NamedParameter {
  name: string;
  variable: tf.Variable;
  layer: number;
}

/** The adapter variables of every LoRA layer, PEFT-named, in layer order (A then B). */
export function namedParameters(model: LlamaModel): NamedParameter[] {
  const out: NamedParameter[] = [];
  for (const lora of loraLayers(model)) {
    const match = /\.layers\.(\d+)\./.exec(lora.name);
    const layer = match ? Number(match[1]) : -1;
    for (const [suffix, variable] of Object.entries(lora.loraWeights())) {
      out.push({ name: `base_model.model.${lora.name}.${suffix}`, variable, layer });
    }
  }
  return out;
}

/** LoRA layers of decoder layer `index`. */
export function loraLayersOf(model: LlamaModel, index: number): LoraLinear[] {
  return loraLayers(model).filter((l) => l.name.includes(`.layers.${index}.`));
}
