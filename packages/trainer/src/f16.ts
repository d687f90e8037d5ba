import { F16Linear, type F16Report, useF16Projections } from '@qlora/lora';
import type { LlamaModel } from './llama-model';

/**
 * Switches a loaded model to evaluation on the f16 tensor cores (issue 10): every projection and
 * the output head become `F16Linear`s (f16 weights, each output channel scaled by a power of two;
 * activations scaled and rounded per token as they arrive; f32 sums). Embeddings, norms and
 * attention stay f32. The rounding to 11 significant bits is TF32's precision, far finer than
 * W8A8's; the cost is stated in BENCHMARKS.md. Evaluation only: the model can no longer be
 * trained. Needs `initBackend('webgpu', { f16TensorCores: true })` on a GPU with f16 subgroup
 * matrices (NVIDIA through Vulkan).
 *
 * @example
 * ```ts
 * await initBackend('webgpu', { f16TensorCores: true });
 * const { model } = await loadModel('./Llama-3.2-1B');
 * useF16Inference(model); // { converted: 113, parameters: 1235814400 }
 * ```
 */
export function useF16Inference(model: LlamaModel): F16Report {
  const report = useF16Projections(model);
  const head = model.lmHead;
  if (head instanceof F16Linear) return report;
  model.lmHead = F16Linear.fromLinear(head);
  // A tied head's weight is the embedding table, which the model still needs.
  if (!model.config.tieWordEmbeddings) head.dispose();
  return {
    converted: report.converted + 1,
    parameters: report.parameters + head.inFeatures * head.outFeatures,
  };
}
