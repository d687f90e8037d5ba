import { TrainerError } from '../errors';

/**
 * The learning-rate schedules of transformers' `get_scheduler` that the trainer supports.
 *
 * @example
 * ```ts
 * const name: ScheduleName = 'linear'; // lr_scheduler_type="linear", the Unsloth default
 * ```
 */
export type ScheduleName = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine';

/**
 * Options of {@link createSchedule}, named like `TrainingArguments`.
 *
 * @example
 * ```ts
 * const options: ScheduleOptions = { lr: 2e-4, warmupSteps: 5, totalSteps: 60 };
 * ```
 */
export interface ScheduleOptions {
  /** The peak (base) learning rate. */
  lr: number;
  /** Linear warmup from 0 over this many optimizer steps (ignored by `constant`). Default 0. */
  warmupSteps?: number;
  /** Optimizer steps of the run (`max_steps`); required by `linear` and `cosine`. */
  totalSteps?: number;
  /** Cosine waves over the decay (default 0.5: from lr down to 0 once). */
  numCycles?: number;
}

/**
 * A schedule as transformers builds it (`get_scheduler(name, optimizer, num_warmup_steps,
 * num_training_steps)` over `torch.optim.lr_scheduler.LambdaLR`): returns the learning rate of
 * optimizer step `step` (0-based; the Trainer calls `scheduler.step()` after each optimizer step),
 * computed in double precision like Python's floats, `lr · λ(step)`:
 * - `constant`: λ = 1;
 * - `constant_with_warmup`: λ = step / max(1, warmup) during warmup, then 1;
 * - `linear`: warmup, then max(0, (total − step) / max(1, total − warmup));
 * - `cosine`: warmup, then max(0, ½·(1 + cos(π · numCycles · 2 · progress))) with
 *   progress = (step − warmup) / max(1, total − warmup). Past `total` the cosine rises again,
 *   as in transformers.
 *
 * @example
 * ```ts
 * const lrAt = createSchedule('linear', { lr: 2e-4, warmupSteps: 5, totalSteps: 60 });
 * lrAt(0); // 0
 * lrAt(5); // 0.0002
 * lrAt(59); // 0.0000036363636363636366
 * ```
 */
export function createSchedule(
  name: ScheduleName,
  options: ScheduleOptions,
): (step: number) => number {
  const { lr } = options;
  const warmup = options.warmupSteps ?? 0;
  const numCycles = options.numCycles ?? 0.5;
  if (!(Number.isFinite(lr) && lr >= 0)) {
    throw new TrainerError('E_SCHEDULE', `Schedule lr: expected a finite number ≥ 0, got ${lr}.`);
  }
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new TrainerError(
      'E_SCHEDULE',
      `Schedule warmupSteps: expected an integer ≥ 0, got ${warmup}.`,
    );
  }
  const needsTotal = name === 'linear' || name === 'cosine';
  const total = options.totalSteps ?? Number.NaN;
  if (needsTotal && (!Number.isInteger(total) || total < 0)) {
    throw new TrainerError(
      'E_SCHEDULE',
      `Schedule ${name} needs totalSteps: expected an integer ≥ 0, got ${options.totalSteps}. Pass the run's max_steps.`,
    );
  }
  const warmupFactor = (step: number): number => step / Math.max(1, warmup);
  let lambda: (step: number) => number;
  switch (name) {
    case 'constant':
      lambda = () => 1;
      break;
    case 'constant_with_warmup':
      lambda = (step) => (step < warmup ? warmupFactor(step) : 1);
      break;
    case 'linear':
      lambda = (step) =>
        step < warmup
          ? warmupFactor(step)
          : Math.max(0, (total - step) / Math.max(1, total - warmup));
      break;
    case 'cosine':
      lambda = (step) => {
        if (step < warmup) return warmupFactor(step);
        const progress = (step - warmup) / Math.max(1, total - warmup);
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
      };
      break;
    default:
      throw new TrainerError(
        'E_SCHEDULE',
        `Unknown schedule: expected constant, constant_with_warmup, linear or cosine, got ${JSON.stringify(name)}.`,
      );
  }
  return (step: number) => {
    if (!Number.isInteger(step) || step < 0) {
      throw new TrainerError('E_SCHEDULE', `Schedule step: expected an integer ≥ 0, got ${step}.`);
    }
    return lr * lambda(step);
  };
}

/**
 * Warmup steps from `warmup_ratio` as transformers computes them: `ceil(totalSteps · ratio)`.
 *
 * @example
 * ```ts
 * warmupStepsFromRatio(60, 0.1); // 6 (the TinyLlama notebook: warmup_ratio=0.1)
 * ```
 */
export function warmupStepsFromRatio(totalSteps: number, ratio: number): number {
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new TrainerError('E_SCHEDULE', `warmup ratio: expected 0 ≤ ratio ≤ 1, got ${ratio}.`);
  }
  return Math.ceil(totalSteps * ratio);
}
