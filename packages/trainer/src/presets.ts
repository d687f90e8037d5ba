import type { TrainConfig } from './train';

/**
 * Names of the built-in training presets.
 *
 * @example
 * ```ts
 * const name: TrainPresetName = 'unsloth';
 * ```
 */
export type TrainPresetName = 'unsloth' | 'qlora-paper';

/**
 * Built-in hyperparameter sets.
 * - `unsloth`: the Unsloth Llama 3.x Alpaca/Conversational notebooks — LoRA r 16, alpha 16,
 *   dropout 0 on all seven linear projections, lr 2e-4, batch 2 × accumulation 4, warmup 5 steps,
 *   linear decay, weight decay 0.01 (the notebooks' value until 2025-10-30, 0.001 since),
 *   8-bit AdamW, seed 3407 (data order and LoRA init), max grad norm 1.0 (HF default).
 * - `qlora-paper`: Dettmers et al. 2023 (`qlora.py`) — LoRA r 64, alpha 16, dropout 0.1 on all
 *   linear projections, constant lr 2e-4 (transformers' `constant` schedule ignores warmup),
 *   max grad norm 0.3, batch 1 × accumulation 16, weight decay 0, 32-bit AdamW, seed 42.
 *
 * @example
 * ```ts
 * TRAIN_PRESETS.unsloth.learningRate; // 2e-4
 * TRAIN_PRESETS['qlora-paper'].lora?.r; // 64
 * ```
 */
export const TRAIN_PRESETS: Readonly<Record<TrainPresetName, Readonly<TrainConfig>>> = {
  unsloth: {
    lora: { r: 16, alpha: 16, dropout: 0, seed: 3407 },
    optimizer: 'adamw_8bit',
    learningRate: 2e-4,
    weightDecay: 0.01,
    schedule: 'linear',
    warmupSteps: 5,
    batchSize: 2,
    gradientAccumulationSteps: 4,
    maxGradNorm: 1,
    seed: 3407,
  },
  'qlora-paper': {
    lora: { r: 64, alpha: 16, dropout: 0.1, seed: 42 },
    optimizer: 'adamw',
    learningRate: 2e-4,
    weightDecay: 0,
    schedule: 'constant',
    batchSize: 1,
    gradientAccumulationSteps: 16,
    maxGradNorm: 0.3,
    seed: 42,
  },
};

/**
 * A preset with overrides (a shallow merge; `lora` is merged one level deeper).
 *
 * @example
 * ```ts
 * const config = trainPreset('unsloth', { maxSteps: 60, lora: { r: 8 } });
 * config.lora; // { r: 8, alpha: 16, dropout: 0, seed: 3407 }
 * ```
 */
export function trainPreset(name: TrainPresetName, overrides: TrainConfig = {}): TrainConfig {
  const base = TRAIN_PRESETS[name];
  if (base === undefined) {
    throw new RangeError(
      `[@qlora/trainer] training preset: expected one of ${Object.keys(TRAIN_PRESETS).join(', ')}, got ${JSON.stringify(name)}`,
    );
  }
  return { ...base, ...overrides, lora: { ...base.lora, ...overrides.lora } };
}
