import type { TrainConfig } from '../src/train';

// Shuffled epochs, LoRA dropout (replayed from saved counters), 8-bit AdamW state, a schedule,
// accumulation and clipping: everything a resume must restore.
export const RESUME_CONFIG: TrainConfig = {
  lora: { r: 2, alpha: 4, dropout: 0.1, seed: 5, initLoraWeights: false },
  optimizer: 'adamw_8bit',
  learningRate: 5e-3,
  weightDecay: 0.01,
  schedule: 'cosine',
  warmupSteps: 2,
  batchSize: 2,
  gradientAccumulationSteps: 2,
  maxGradNorm: 0.5,
  maxSteps: 7,
  seed: 11,
  saveSteps: 1,
  saveTotalLimit: 2,
};
