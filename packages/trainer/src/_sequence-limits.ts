import type { LimitSettings } from './_device-limits';
import { TrainerError } from './errors';
import type { LlamaModel } from './llama-model';

// The settings a limit error tells the user to change, with their names in the trainer API, the
// qlora CLI and the experiment config, so every message names the same things.
export const SETTINGS = {
  trainMaxLength: 'sft.maxLength (qlora train --max-length; experiment finetune.maxLength)',
  trainBatchSize: 'batchSize (qlora train --batch-size; experiment finetune.batchSize)',
  evalBatchSize: 'evaluation.batchSize (qlora eval --batch-size; experiment evalBatchSize)',
  evalMaxLength: 'evaluation.maxLength (default: max_position_embeddings)',
  maxGenTokens:
    'maxGenTokens (qlora eval --max-gen-tokens; experiment benchmarks.gsm8k.maxGenTokens)',
} as const;

export const TRAIN_LIMITS: LimitSettings = {
  what: 'training step',
  batch: SETTINGS.trainBatchSize,
  length: SETTINGS.trainMaxLength,
};

export const EVAL_LOSS_LIMITS: LimitSettings = {
  what: 'evaluation-loss batch',
  batch: SETTINGS.trainBatchSize,
  length: SETTINGS.trainMaxLength,
};

export const LOGLIKELIHOOD_LIMITS: LimitSettings = {
  what: 'loglikelihood batch',
  batch: SETTINGS.evalBatchSize,
  length: SETTINGS.evalMaxLength,
};

export const GENERATION_LIMITS: LimitSettings = {
  what: 'generation batch',
  batch: SETTINGS.evalBatchSize,
  length: `${SETTINGS.evalMaxLength} or ${SETTINGS.maxGenTokens}`,
};

export const FORWARD_LIMITS: LimitSettings = {
  what: 'forward pass',
  batch: 'the batch size (rows per call)',
  length: 'the sequence length',
};

/** `max_position_embeddings of <model>`, as every message says it. */
export function positionsOf(model: LlamaModel): string {
  return `${model.config.maxPositionEmbeddings} positions (max_position_embeddings of ${model.name ?? 'this model'})`;
}

/**
 * `E_SEQUENCE_TOO_LONG`: `what` needs `tokens` positions, the model has fewer.
 *
 * @example
 * ```ts
 * throw sequenceTooLong(model, 'training sequences', 'a maxLength of 4096', 'lower sft.maxLength');
 * ```
 */
export function sequenceTooLong(
  model: LlamaModel,
  what: string,
  got: string,
  hint: string,
): TrainerError {
  return new TrainerError(
    'E_SEQUENCE_TOO_LONG',
    `${what}: expected at most ${positionsOf(model)}, got ${got}. Hint: ${hint}.`,
  );
}

export const GREEDY_LIMITS: LimitSettings = {
  what: 'greedy generation',
  batch: 'the number of prompts per call',
  length: 'the prompt length or maxNewTokens',
};
