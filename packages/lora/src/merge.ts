import { LoraError } from './errors';
import { forgetLoraSettings, loraLayers } from './inject';
import type { LoraTargetModel } from './linear';
import { LoraLinear } from './lora-linear';

/**
 * What merging reports.
 *
 * @example
 * ```ts
 * const { merged, warnings }: MergeReport = mergeAdapter(model);
 * ```
 */
export interface MergeReport {
  /** Layers merged by this call. */
  merged: number;
  /** PEFT's warnings (e.g. for 4-bit bases), returned instead of printed. */
  warnings: string[];
}

/**
 * Folds every adapter into its base weight (`W ← W + s·B·A`), as PEFT's `merge_adapter`: the
 * forward becomes one matmul per projection and the adapter stays attached for
 * {@link unmergeAdapter}. NF4 bases are dequantized and merged into a dense f32 weight (the
 * 4-bit one is kept aside and restored exactly by unmerge); each such layer adds PEFT's rounding
 * warning to the report.
 *
 * @example
 * ```ts
 * const { merged, warnings } = mergeAdapter(model); // merged: 14, warnings: []
 * ```
 */
export function mergeAdapter(model: LoraTargetModel): MergeReport {
  const layers = loraLayers(model);
  if (layers.length === 0) {
    throw new LoraError(
      'E_NO_ADAPTER',
      'mergeAdapter: expected a model with LoRA layers, got none. Hint: injectLora or loadAdapter first.',
    );
  }
  const warnings: string[] = [];
  let merged = 0;
  for (const layer of layers) {
    if (layer.merged) continue;
    const warning = layer.merge();
    merged++;
    if (warning !== null) warnings.push(warning);
  }
  return { merged, warnings };
}

/**
 * Subtracts the adapters again (PEFT's `unmerge_adapter`): `W ← W − s·B·A` for dense bases
 * (not bit-exact), the original NF4 weights for 4-bit bases.
 *
 * @example
 * ```ts
 * mergeAdapter(model);
 * unmergeAdapter(model); // adapters active again, trainable
 * ```
 */
export function unmergeAdapter(model: LoraTargetModel): number {
  let count = 0;
  for (const layer of loraLayers(model)) {
    if (!layer.merged) continue;
    layer.unmerge();
    count++;
  }
  return count;
}

/**
 * Merges every adapter and removes the LoRA wrappers (PEFT's `merge_and_unload`): each targeted
 * projection becomes a dense f32 layer holding `W + s·B·A`, so `namedWeights()` is a plain dense
 * checkpoint. NF4 bases are dequantized (and their 4-bit tensors freed), with PEFT's warning
 * returned in the report.
 *
 * @example
 * ```ts
 * const { warnings } = mergeAndUnload(model);
 * // save model.namedWeights() as a dense safetensors checkpoint
 * ```
 */
export function mergeAndUnload(model: LoraTargetModel): MergeReport {
  const report = mergeAdapter(model);
  model.mapProjections((linear) => {
    if (!(linear instanceof LoraLinear)) return linear;
    const dense = linear.base;
    linear.loraA.dispose();
    linear.loraB.dispose();
    linear.releaseMergedSource();
    return dense;
  });
  forgetLoraSettings(model);
  return report;
}
