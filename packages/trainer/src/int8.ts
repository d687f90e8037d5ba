import { Int8Linear, type Int8Options, type Int8Report, useInt8Projections } from '@qlora/lora';
import type { LlamaModel } from './llama-model';

/**
 * Switches a loaded model to W8A8 inference on the int8 tensor cores (issue 10's optional
 * evaluation mode): every projection and the output head become `Int8Linear`s (int8 weights with
 * one absmax per output channel, activations quantized per token as they arrive). Embeddings,
 * norms and attention stay f32. Evaluation only: the model can no longer be trained. Needs
 * `initBackend('webgpu', { int8TensorCores: true })` on a GPU with int8 subgroup matrices, or
 * `{ arithmetic: 'emulated' }` (any backend, slow) to measure the accuracy cost.
 *
 * @example
 * ```ts
 * await initBackend('webgpu', { int8TensorCores: true });
 * const { model } = await loadModel('./Llama-3.2-1B');
 * useInt8Inference(model); // { converted: 113, parameters: 1235814400 }
 * ```
 */
export function useInt8Inference(model: LlamaModel, options: Int8Options = {}): Int8Report {
  const report = useInt8Projections(model, options);
  const head = model.lmHead;
  if (head instanceof Int8Linear) return report;
  model.lmHead = Int8Linear.fromLinear(head, options);
  // A tied head's weight is the embedding table, which the model still needs.
  if (!model.config.tieWordEmbeddings) head.dispose();
  return {
    converted: report.converted + 1,
    parameters: report.parameters + head.inFeatures * head.outFeatures,
  };
}
