import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AlpacaRecord,
  collateBatch,
  type PromptTemplate,
  type RenderedPrompt,
  type SftOptions,
  type Tokenizer,
  type TokenSequence,
  tokenizeForSft,
} from '@qlora/datasets';
import { type InjectLoraOptions, injectLora, loraLayers, setLoraTraining } from '@qlora/lora';
import { saveAdapter } from '@qlora/lora/node';
import * as tf from '@tensorflow/tfjs-core';
import { checkDeviceFits, guardDeviceErrors } from './_device-limits';
import { dropoutCounters, namedParameters, restoreDropoutCounters } from './_lora-state';
import { EVAL_LOSS_LIMITS, SETTINGS, sequenceTooLong, TRAIN_LIMITS } from './_sequence-limits';
import { forwardLossSum, prepareBatch } from './_train-forward';
import { trimWebgpuBufferPool } from './_webgpu-pool';
import { lossGradientTensors } from './checkpointing';
import { ensureGradients } from './ensure-gradients';
import { TrainerError } from './errors';
import type { LlamaModel } from './llama-model';
import { AdamW } from './optim/adamw';
import { AdamW8bit } from './optim/adamw-8bit';
import {
  clipCoefficient,
  findNonFiniteGradientsAsync,
  gradNormAsync,
  NonFiniteGuard,
} from './optim/gradients';
import { createSchedule, type ScheduleName, warmupStepsFromRatio } from './optim/schedule';
import type { NamedVariables, Optimizer } from './optim/types';
import {
  findLatestCheckpoint,
  type JsonValue,
  loadCheckpoint,
  writeCheckpoint,
} from './run/checkpoint';
import { Rng, type RngState } from './run/prng';
import { appendStepLog, repairStepLog } from './run/step-log';

/**
 * Hyperparameters of {@link train}, named after transformers' `TrainingArguments` (defaults are
 * its defaults unless said otherwise). Stored in every checkpoint; a resume must use the same.
 *
 * @example
 * ```ts
 * const config: TrainConfig = { lora: { r: 16, alpha: 16 }, learningRate: 2e-4, batchSize: 2,
 *   gradientAccumulationSteps: 4, warmupSteps: 5, maxSteps: 60, optimizer: 'adamw_8bit' };
 * ```
 */
export interface TrainConfig {
  /** LoRA to inject when the model has no adapter yet (`get_peft_model`). */
  lora?: InjectLoraOptions;
  /** `optim`: `'adamw'` (torch AdamW) or `'adamw_8bit'` (bitsandbytes). Default `'adamw'`. */
  optimizer?: 'adamw' | 'adamw_8bit';
  /** `learning_rate`. Default 5e-5. */
  learningRate?: number;
  /** `weight_decay` (decoupled). Default 0. */
  weightDecay?: number;
  /** `adam_beta1`, `adam_beta2`. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** `adam_epsilon`. Default 1e-8. */
  eps?: number;
  /** `lr_scheduler_type`. Default `'linear'`. */
  schedule?: ScheduleName;
  /** `warmup_steps` (wins over `warmupRatio`). Default 0. */
  warmupSteps?: number;
  /** `warmup_ratio`: warmup = ceil(total · ratio). Default 0. */
  warmupRatio?: number;
  /** `per_device_train_batch_size`. Default 8. */
  batchSize?: number;
  /** `gradient_accumulation_steps`. Default 1. */
  gradientAccumulationSteps?: number;
  /** `max_grad_norm`; 0 disables clipping (the norm is still logged). Default 1. */
  maxGradNorm?: number;
  /** `num_train_epochs` (ignored when `maxSteps` > 0). Default 1. */
  epochs?: number;
  /** `max_steps`: optimizer steps; overrides `epochs` when > 0. Default 0. */
  maxSteps?: number;
  /** `seed` of the data order. Default 42. */
  seed?: number;
  /** Shuffle the examples every epoch (seeded `Rng` permutation); false keeps dataset order. Default true. */
  shuffle?: boolean;
  /**
   * How micro-batch losses combine over an accumulation window. `'token-weighted'` (default):
   * Σ token losses of the window / its target tokens — what HF Trainer does now (transformers ≥
   * 4.46 passes `num_items_in_batch` to `ForCausalLMLoss`). `'mean-per-micro-batch'`: each
   * micro-batch's mean loss / `gradientAccumulationSteps` (older HF).
   */
  lossNormalization?: 'token-weighted' | 'mean-per-micro-batch';
  /** `gradient_checkpointing`: recompute layers in backward. Default false. */
  gradientCheckpointing?: boolean;
  /** Stop with `E_NONFINITE` after this many NaN/Inf steps in a row (each is skipped). Default 3. */
  maxConsecutiveNonFinite?: number;
  /** Evaluate the loss on `options.evalDataset` every N optimizer steps (and at the end). Default 0 (off). */
  evalSteps?: number;
  /** `save_steps`: checkpoint every N optimizer steps (with a `runDir`; the end is always saved). Default 0. */
  saveSteps?: number;
  /** `save_total_limit`: keep the newest K checkpoints. Default: all. */
  saveTotalLimit?: number;
  /** Padding id for collation (default: the config's pad id, else 0). */
  padTokenId?: number;
}

/**
 * The training data: tokenized examples (`{ inputIds, labels }`, labels −100 where no loss),
 * or records with a tokenizer (and a template for Alpaca records), tokenized with
 * `tokenizeForSft`. Examples without a single target token are dropped (they add 0/0).
 *
 * @example
 * ```ts
 * const data: TrainDataset = { records: alpaca, tokenizer, template: UNSLOTH_ALPACA_TEMPLATE,
 *   sft: { trainOnInputs: true, maxLength: 2048 } };
 * ```
 */
export type TrainDataset =
  | readonly TokenSequence[]
  | {
      records: readonly (AlpacaRecord | RenderedPrompt)[];
      tokenizer: Tokenizer;
      template?: PromptTemplate;
      sft?: SftOptions;
    };

/**
 * One report of {@link TrainOptions.onProgress}, after every optimizer step.
 *
 * @example
 * ```ts
 * const p: TrainProgress = { step: 3, totalSteps: 60, epoch: 0, loss: 1.92, lr: 1.2e-4, gradNorm: 0.8,
 *   tokensPerSecond: 812, elapsedMs: 5400, etaMs: 102600, skipped: false };
 * ```
 */
export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  elapsedMs: number;
  etaMs: number;
  /** True when the step's gradients held NaN/Inf and no update was made. */
  skipped: boolean;
  /** Held-out loss, on evaluation steps. */
  evalLoss?: number;
}

/**
 * Run-time options of {@link train} (not stored in checkpoints).
 *
 * @example
 * ```ts
 * await train(model, data, config, { runDir: 'runs/a', resume: true, onProgress: (p) => console.log(p.loss) });
 * ```
 */
export interface TrainOptions {
  /** Run directory: `steps.jsonl`, `checkpoint-<step>/`, and `adapter/` (PEFT) at the end. */
  runDir?: string;
  /** Continue from the newest complete checkpoint in `runDir` (a fresh start if there is none). */
  resume?: boolean;
  /** Held-out data for `evalSteps`. */
  evalDataset?: TrainDataset;
  onProgress?: (progress: TrainProgress) => void;
  /** Stops between optimizer steps with `E_ABORTED`. */
  signal?: AbortSignal;
  /** `base_model_name_or_path` written into `adapter_config.json`. */
  baseModelNameOrPath?: string;
  /** Called after each checkpoint is written (tests use it to kill the process there). */
  onCheckpoint?: (step: number, path: string) => void | Promise<void>;
}

/**
 * What {@link train} returns.
 *
 * @example
 * ```ts
 * const { losses, skippedSteps, adapterDir } = await train(model, data, config, { runDir: 'runs/a' });
 * ```
 */
export interface TrainResult {
  /** Optimizer steps of the run. */
  totalSteps: number;
  /** Step this invocation started from (0, or the checkpoint's step on resume). */
  startStep: number;
  /** Loss of every step run by this invocation, in order. */
  losses: number[];
  /** Global gradient norms (before clipping) of those steps. */
  gradNorms: number[];
  /** Steps skipped for NaN/Inf gradients. */
  skippedSteps: number[];
  /** `[step, loss]` of every evaluation. */
  evalLosses: [number, number][];
  /** `<runDir>/adapter` when a run directory was given. */
  adapterDir?: string;
  /** Examples dropped because they had no target token. */
  droppedExamples: number;
}

interface ResolvedConfig {
  lora: InjectLoraOptions | null;
  optimizer: 'adamw' | 'adamw_8bit';
  learningRate: number;
  weightDecay: number;
  betas: [number, number];
  eps: number;
  schedule: ScheduleName;
  warmupSteps: number | null;
  warmupRatio: number;
  batchSize: number;
  gradientAccumulationSteps: number;
  maxGradNorm: number;
  epochs: number;
  maxSteps: number;
  seed: number;
  shuffle: boolean;
  lossNormalization: 'token-weighted' | 'mean-per-micro-batch';
  gradientCheckpointing: boolean;
  maxConsecutiveNonFinite: number;
  evalSteps: number;
  saveSteps: number;
  saveTotalLimit: number | null;
  padTokenId: number;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new TrainerError(
      'E_TRAIN_CONFIG',
      `${name}: expected an integer ≥ 1, got ${value}. Hint: see TrainConfig.`,
    );
  }
  return value;
}

function nonNegative(name: string, value: number, integer = false): number {
  if (!(Number.isFinite(value) && value >= 0) || (integer && !Number.isInteger(value))) {
    throw new TrainerError(
      'E_TRAIN_CONFIG',
      `${name}: expected ${integer ? 'an integer' : 'a number'} ≥ 0, got ${value}.`,
    );
  }
  return value;
}

function resolveConfig(model: LlamaModel, config: TrainConfig): ResolvedConfig {
  const resolved: ResolvedConfig = {
    lora: config.lora ?? null,
    optimizer: config.optimizer ?? 'adamw',
    learningRate: nonNegative('learningRate', config.learningRate ?? 5e-5),
    weightDecay: nonNegative('weightDecay', config.weightDecay ?? 0),
    betas: config.betas ?? [0.9, 0.999],
    eps: config.eps ?? 1e-8,
    schedule: config.schedule ?? 'linear',
    warmupSteps:
      config.warmupSteps === undefined
        ? null
        : nonNegative('warmupSteps', config.warmupSteps, true),
    warmupRatio: nonNegative('warmupRatio', config.warmupRatio ?? 0),
    batchSize: positiveInteger('batchSize', config.batchSize ?? 8),
    gradientAccumulationSteps: positiveInteger(
      'gradientAccumulationSteps',
      config.gradientAccumulationSteps ?? 1,
    ),
    maxGradNorm: nonNegative('maxGradNorm', config.maxGradNorm ?? 1),
    epochs: positiveInteger('epochs', config.epochs ?? 1),
    maxSteps: nonNegative('maxSteps', config.maxSteps ?? 0, true),
    seed: config.seed ?? 42,
    shuffle: config.shuffle ?? true,
    lossNormalization: config.lossNormalization ?? 'token-weighted',
    gradientCheckpointing: config.gradientCheckpointing ?? false,
    maxConsecutiveNonFinite: positiveInteger(
      'maxConsecutiveNonFinite',
      config.maxConsecutiveNonFinite ?? 3,
    ),
    evalSteps: nonNegative('evalSteps', config.evalSteps ?? 0, true),
    saveSteps: nonNegative('saveSteps', config.saveSteps ?? 0, true),
    saveTotalLimit:
      config.saveTotalLimit === undefined
        ? null
        : positiveInteger('saveTotalLimit', config.saveTotalLimit),
    padTokenId: config.padTokenId ?? model.config.padTokenId ?? 0,
  };
  if (!['adamw', 'adamw_8bit'].includes(resolved.optimizer)) {
    throw new TrainerError(
      'E_TRAIN_CONFIG',
      `optimizer: expected 'adamw' or 'adamw_8bit', got ${JSON.stringify(resolved.optimizer)}.`,
    );
  }
  if (resolved.warmupRatio >= 1) {
    throw new TrainerError(
      'E_TRAIN_CONFIG',
      `warmupRatio: expected a number in [0, 1), got ${resolved.warmupRatio}.`,
    );
  }
  return resolved;
}

/**
 * Refuses, before any tokenization, an SFT `maxLength` the model has no positions for: training
 * would otherwise fail (or, in transformers, rotate past the trained positions) at the first long
 * example.
 */
function checkMaxLength(model: LlamaModel, dataset: TrainDataset, role: string): void {
  if (Array.isArray(dataset)) return;
  const maxLength = (dataset as { sft?: SftOptions }).sft?.maxLength;
  const positions = model.config.maxPositionEmbeddings;
  if (maxLength !== undefined && maxLength > positions) {
    throw sequenceTooLong(
      model,
      `${role} maxLength`,
      `a maxLength of ${maxLength} tokens`,
      `lower ${SETTINGS.trainMaxLength} to at most ${positions}`,
    );
  }
}

/** Refuses examples longer than the model's positions, naming the first and how many. */
function checkExampleLengths(
  model: LlamaModel,
  examples: readonly TokenSequence[],
  role: string,
): number {
  const positions = model.config.maxPositionEmbeddings;
  let longest = 0;
  let first = -1;
  let over = 0;
  examples.forEach((example, i) => {
    const length = example.inputIds.length;
    if (length > longest) longest = length;
    if (length > positions) {
      over++;
      if (first < 0) first = i;
    }
  });
  if (over > 0) {
    throw sequenceTooLong(
      model,
      `${role} example ${first}`,
      `${(examples[first] as TokenSequence).inputIds.length} tokens (${over} of ${examples.length} examples are longer)`,
      `lower ${SETTINGS.trainMaxLength} to at most ${positions} (longer examples are dropped), or cut the sequences yourself`,
    );
  }
  return longest;
}

/** Tokenizes (when needed) and drops examples with no target token after the causal shift. */
function materialize(dataset: TrainDataset): { examples: TokenSequence[]; dropped: number } {
  let sequences: readonly TokenSequence[];
  if (Array.isArray(dataset)) {
    sequences = dataset as readonly TokenSequence[];
  } else {
    const { records, tokenizer, template, sft } = dataset as Exclude<
      TrainDataset,
      readonly TokenSequence[]
    >;
    const out: TokenSequence[] = [];
    for (const record of records) {
      const example = tokenizeForSft(record, tokenizer, {
        ...sft,
        ...(template ? { template } : {}),
        overflow: 'drop',
      });
      if (example) out.push({ inputIds: example.inputIds, labels: example.labels });
    }
    sequences = out;
  }
  const examples = sequences.filter((s) => s.labels.slice(1).some((l) => l !== -100));
  return { examples, dropped: sequences.length - examples.length };
}

function shiftedLabelCount(sequence: TokenSequence): number {
  let n = 0;
  for (let t = 1; t < sequence.labels.length; t++) if (sequence.labels[t] !== -100) n++;
  return n;
}

// An asynchronous read leaves the values cached beside the tensor, so the synchronous reads of
// stateDict() and saveAdapter() that follow find them on backends that cannot read
// synchronously (tfjs-webgpu in Node); on cpu/wasm it changes nothing.
async function readAhead(tensors: readonly tf.Tensor[]): Promise<void> {
  await Promise.all(tensors.map((t) => t.data()));
}

/** Mean token loss of `examples` in batches (no gradients, dropout off). */
async function evaluateLoss(
  model: LlamaModel,
  examples: readonly TokenSequence[],
  batchSize: number,
  padTokenId: number,
): Promise<number> {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = collateBatch(examples.slice(i, i + batchSize), { padTokenId });
    checkDeviceFits(
      model.config,
      { batch: batch.batchSize, steps: batch.seqLength },
      EVAL_LOSS_LIMITS,
    );
    await guardDeviceErrors(EVAL_LOSS_LIMITS, async () => {
      const prepared = prepareBatch(model, batch);
      try {
        const value = tf.tidy(() => forwardLossSum(model, prepared));
        try {
          sum += (await value.data())[0] as number;
        } finally {
          value.dispose();
        }
        count += prepared.labelCount;
      } finally {
        prepared.dispose();
      }
    });
    trimWebgpuBufferPool();
  }
  return count === 0 ? Number.NaN : sum / count;
}

interface DataPosition {
  epoch: number;
  index: number;
  dropout_calls: number[];
  elapsed_ms: number;
}

function checkAborted(signal: AbortSignal | undefined, step: number): void {
  if (signal?.aborted) {
    throw new TrainerError(
      'E_ABORTED',
      `training aborted: expected to continue, got an abort signal before step ${step + 1}. Hint: resume with { resume: true } from the last checkpoint.`,
    );
  }
}

/**
 * Fine-tunes the LoRA adapter of a Llama model as HF Trainer/SFTTrainer does: per optimizer
 * step, `gradientAccumulationSteps` micro-batches of `batchSize` examples (right-padded), the
 * causal-LM loss on the target tokens only (labels −100 ignored; token-weighted over the window
 * by default), global-norm clipping, AdamW or 8-bit AdamW at the schedule's learning rate
 * (warmup by steps or ratio; constant, linear, cosine), a seeded shuffle per epoch, optional
 * gradient checkpointing, a NaN/Inf guard that skips a step and stops after repeated failures,
 * and held-out evaluation every `evalSteps`.
 *
 * With a `runDir`: a JSONL line per step in `steps.jsonl` (loss, lr, grad norm, tokens/s, tensor
 * memory), atomic checkpoints every `saveSteps` and at the end (adapter, optimizer state, RNG,
 * data position, config), and the final adapter in PEFT format in `<runDir>/adapter`.
 * `{ resume: true }` continues from the newest complete checkpoint to the same final adapter,
 * bit for bit on the cpu backend, as an uninterrupted run.
 *
 * @example
 * ```ts
 * const { model, tokenizer } = await loadModel('./Llama-3.2-1B');
 * const result = await train(model, { records, tokenizer: tokenizer!, template: UNSLOTH_ALPACA_TEMPLATE },
 *   trainPreset('unsloth', { maxSteps: 60 }),
 *   { runDir: 'runs/alpaca', resume: true, onProgress: (p) => console.log(p.step, p.loss) });
 * result.adapterDir; // 'runs/alpaca/adapter' (PeftModel.from_pretrained loads it)
 * ```
 */
export async function train(
  model: LlamaModel,
  dataset: TrainDataset,
  config: TrainConfig = {},
  options: TrainOptions = {},
): Promise<TrainResult> {
  ensureGradients();
  const cfg = resolveConfig(model, config);
  checkMaxLength(model, dataset, 'training');
  if (options.evalDataset) checkMaxLength(model, options.evalDataset, 'evaluation');
  const { examples, dropped } = materialize(dataset);
  if (examples.length === 0) {
    throw new TrainerError(
      'E_TRAIN_CONFIG',
      'training data: expected at least one example with a target token, got none. Hint: check the labels (−100 masks a position).',
    );
  }
  const evalExamples = options.evalDataset ? materialize(options.evalDataset).examples : [];
  // Pre-flight, before any step: the longest example fixes the widest batch (right padding).
  const longest = checkExampleLengths(model, examples, 'training');
  checkDeviceFits(
    model.config,
    { batch: Math.min(cfg.batchSize, examples.length), steps: longest },
    TRAIN_LIMITS,
  );
  if (evalExamples.length > 0 && cfg.evalSteps > 0) {
    const evalLongest = checkExampleLengths(model, evalExamples, 'evaluation');
    checkDeviceFits(
      model.config,
      { batch: Math.min(cfg.batchSize, evalExamples.length), steps: evalLongest },
      EVAL_LOSS_LIMITS,
    );
  }
  if (loraLayers(model).length === 0) {
    if (cfg.lora === null) {
      throw new TrainerError(
        'E_TRAIN_CONFIG',
        'model adapter: expected a model with LoRA layers or config.lora, got neither. Hint: pass { lora: { r: 16, alpha: 16 } } or call injectLora(model) first.',
      );
    }
    injectLora(model, cfg.lora);
  }
  const microPerEpoch = Math.ceil(examples.length / cfg.batchSize);
  const stepsPerEpoch = Math.ceil(microPerEpoch / cfg.gradientAccumulationSteps);
  const totalSteps = cfg.maxSteps > 0 ? cfg.maxSteps : cfg.epochs * stepsPerEpoch;
  const warmupSteps = cfg.warmupSteps ?? warmupStepsFromRatio(totalSteps, cfg.warmupRatio);
  const lrAt = createSchedule(cfg.schedule, { lr: cfg.learningRate, warmupSteps, totalSteps });

  const parameters = namedParameters(model);
  const named: Record<string, tf.Variable> = {};
  for (const p of parameters) named[p.name] = p.variable;
  const optimizerOptions = {
    lr: cfg.learningRate,
    betas: cfg.betas,
    eps: cfg.eps,
    weightDecay: cfg.weightDecay,
  };
  const optimizer: Optimizer =
    cfg.optimizer === 'adamw_8bit'
      ? new AdamW8bit(named as NamedVariables, optimizerOptions)
      : new AdamW(named as NamedVariables, optimizerOptions);
  const allLora = loraLayers(model);
  const configJson = JSON.parse(JSON.stringify(cfg)) as JsonValue;

  // Data order: the RNG state at the start of the current epoch regenerates its permutation.
  let rng = Rng.fromSeed(cfg.seed);
  let epochStart: RngState = rng.state();
  let epoch = 0;
  let index = 0;
  let order: number[] = [];
  const newEpochOrder = (): void => {
    epochStart = rng.state();
    order = cfg.shuffle
      ? rng.permutation(examples.length)
      : Array.from({ length: examples.length }, (_, i) => i);
  };
  let startStep = 0;
  let elapsedBefore = 0;
  const logPath = options.runDir ? join(options.runDir, 'steps.jsonl') : undefined;

  if (options.resume && options.runDir) {
    const found = await findLatestCheckpoint(options.runDir);
    if (found) {
      const ckpt = await loadCheckpoint(found.path);
      if (JSON.stringify(ckpt.config) !== JSON.stringify(configJson)) {
        throw new TrainerError(
          'E_RESUME',
          `resume from ${found.path}: expected the same training config, got a different one (checkpoint ${JSON.stringify(ckpt.config)}). Hint: resume with the original config or start a new run directory.`,
        );
      }
      for (const p of parameters) {
        const entry = ckpt.adapter[p.name];
        if (entry?.dtype !== 'F32') {
          throw new TrainerError(
            'E_RESUME',
            `resume from ${found.path}: expected adapter tensor ${p.name} (F32), got ${entry?.dtype ?? 'none'}.`,
          );
        }
        p.variable.assign(tf.tensor(entry.data as Float32Array, p.variable.shape));
      }
      optimizer.loadStateDict(ckpt.optimizer);
      const position = ckpt.dataPosition as unknown as DataPosition;
      const startState = ckpt.rng.epoch_start;
      if (!startState) {
        throw new TrainerError(
          'E_RESUME',
          `resume from ${found.path}: expected an epoch_start RNG state, got none.`,
        );
      }
      rng = Rng.fromState(startState);
      newEpochOrder();
      epoch = position.epoch;
      index = position.index;
      restoreDropoutCounters(allLora, position.dropout_calls);
      elapsedBefore = position.elapsed_ms;
      startStep = ckpt.step;
      if (logPath) repairStepLog(logPath, startStep);
    }
  }
  if (startStep === 0) {
    newEpochOrder();
    if (logPath) {
      mkdirSync(options.runDir as string, { recursive: true });
      writeFileSync(logPath, '');
    }
  }

  const guard = new NonFiniteGuard({ maxConsecutiveSkips: cfg.maxConsecutiveNonFinite });
  const result: TrainResult = {
    totalSteps,
    startStep,
    losses: [],
    gradNorms: [],
    skippedSteps: [],
    evalLosses: [],
    droppedExamples: dropped,
  };
  const started = Date.now();

  const saveCheckpoint = async (step: number): Promise<void> => {
    if (!options.runDir) return;
    await readAhead(optimizer.stateTensors?.() ?? []);
    const adapter: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const p of parameters) {
      adapter[p.name] = {
        dtype: 'F32',
        shape: p.variable.shape,
        data: (await p.variable.data()) as Float32Array,
      };
    }
    const position: DataPosition = {
      epoch,
      index,
      dropout_calls: dropoutCounters(allLora),
      elapsed_ms: elapsedBefore + (Date.now() - started),
    };
    const path = await writeCheckpoint(
      options.runDir,
      {
        step,
        adapter,
        optimizer: optimizer.stateDict(),
        rng: { epoch_start: epochStart, data: rng.state() },
        dataPosition: position as unknown as JsonValue,
        config: configJson,
      },
      cfg.saveTotalLimit === null ? {} : { keepLast: cfg.saveTotalLimit },
    );
    await options.onCheckpoint?.(step, path);
  };

  setLoraTraining(model, true);
  try {
    let previousShapes = '';
    for (let step = startStep; step < totalSteps; step++) {
      checkAborted(options.signal, step);
      if (index >= examples.length) {
        epoch += 1;
        index = 0;
        newEpochOrder();
      }
      const stepStart = Date.now();
      // The accumulation window: up to GA micro-batches, never crossing the epoch end.
      const micro: TokenSequence[][] = [];
      for (let m = 0; m < cfg.gradientAccumulationSteps && index < examples.length; m++) {
        const ids = order.slice(index, index + cfg.batchSize);
        micro.push(ids.map((i) => examples[i] as TokenSequence));
        index += ids.length;
      }
      const windowTargets = micro.reduce(
        (sum, seqs) => sum + seqs.reduce((s, q) => s + shiftedLabelCount(q), 0),
        0,
      );
      let tokens = 0;
      const lr = lrAt(step);
      optimizer.lr = lr;
      let loss = 0;
      let nonFinite: string[] = [];
      const stepShapes: string[] = [];
      let totalNorm = 0;
      // The step's gradients, summed over its micro-batches; clipped by the optimizer's gradScale.
      let summed: Record<string, tf.Tensor> = {};
      let skipped = false;
      try {
        // The step's GPU work, up to its reads, runs inside a WebGPU error scope (on webgpu): a
        // buffer the device could not allocate fails the step before the optimizer applies garbage.
        await guardDeviceErrors(TRAIN_LIMITS, async () => {
          // Nothing is read until the step's gradients are complete: the micro-batch losses stay
          // on the backend and are read (asynchronously) with the gradient norm, then summed in
          // order.
          const lossTensors: tf.Tensor[] = [];
          try {
            for (const seqs of micro) {
              const batch = collateBatch(seqs, { padTokenId: cfg.padTokenId });
              stepShapes.push(`${batch.batchSize}x${batch.seqLength}`);
              tokens += batch.tokenCount;
              const microTargets = seqs.reduce((s, q) => s + shiftedLabelCount(q), 0);
              const scale =
                cfg.lossNormalization === 'token-weighted'
                  ? 1 / windowTargets
                  : 1 / (microTargets * cfg.gradientAccumulationSteps);
              const r = lossGradientTensors(model, batch, {
                gradientCheckpointing: cfg.gradientCheckpointing,
                scale: microTargets === 0 ? 0 : scale,
              });
              lossTensors.push(r.lossTensor);
              const next: Record<string, tf.Tensor> = {};
              for (const [name, g] of Object.entries(r.grads)) {
                const previous = summed[name];
                if (previous) {
                  next[name] = tf.add(previous, g);
                  previous.dispose();
                  g.dispose();
                } else {
                  next[name] = g;
                }
              }
              summed = next;
            }
            const lossValues = await Promise.all(lossTensors.map((t) => t.data()));
            for (const values of lossValues) loss += values[0] as number;
            totalNorm = await gradNormAsync(summed);
            // One check per step: a NaN/±Inf gradient element makes the total norm non-finite,
            // so the gradients are searched only then (a finite-but-overflowing norm finds none).
            if (!Number.isFinite(totalNorm)) {
              nonFinite = await findNonFiniteGradientsAsync(summed);
            }
          } finally {
            tf.dispose(lossTensors);
          }
        });
        // clip_grad_norm_ (max_grad_norm ≤ 0: off, a factor of 1), applied inside the update.
        const gradScale = cfg.maxGradNorm > 0 ? clipCoefficient(cfg.maxGradNorm, totalNorm) : 1;
        if (guard.record(step + 1, nonFinite)) optimizer.step(summed, { gradScale });
        else skipped = true;
      } finally {
        tf.dispose(Object.values(summed));
      }
      if (skipped) result.skippedSteps.push(step + 1);
      result.losses.push(loss);
      result.gradNorms.push(totalNorm);

      const done = step + 1;
      let evalLoss: number | undefined;
      if (
        evalExamples.length > 0 &&
        cfg.evalSteps > 0 &&
        (done % cfg.evalSteps === 0 || done === totalSteps)
      ) {
        const counters = dropoutCounters(allLora);
        setLoraTraining(model, false);
        evalLoss = await evaluateLoss(model, evalExamples, cfg.batchSize, cfg.padTokenId);
        setLoraTraining(model, true);
        restoreDropoutCounters(allLora, counters);
        result.evalLosses.push([done, evalLoss]);
      }
      const now = Date.now();
      const stepMs = Math.max(now - stepStart, 1);
      const elapsedMs = elapsedBefore + (now - started);
      const runSteps = done - startStep;
      const etaMs = ((now - started) / runSteps) * (totalSteps - done);
      const tokensPerSecond = (tokens * 1000) / stepMs;
      if (logPath) {
        appendStepLog(logPath, {
          step: done,
          epoch,
          loss,
          lr,
          grad_norm: totalNorm,
          tokens,
          tokens_per_second: tokensPerSecond,
          memory_bytes: tf.memory().numBytes,
          elapsed_ms: elapsedMs,
          ...(skipped ? { skipped: true } : {}),
          ...(evalLoss !== undefined ? { eval_loss: evalLoss } : {}),
        });
      }
      // The pool is trimmed only when the batch shapes change: steps of one shape reuse every
      // pooled buffer, and re-creating them each step would cost allocations and zero-fills.
      const shapes = stepShapes.join(',');
      if (shapes !== previousShapes) trimWebgpuBufferPool();
      previousShapes = shapes;
      options.onProgress?.({
        step: done,
        totalSteps,
        epoch,
        loss,
        lr,
        gradNorm: totalNorm,
        tokensPerSecond,
        elapsedMs,
        etaMs,
        skipped,
        ...(evalLoss !== undefined ? { evalLoss } : {}),
      });
      if (done === totalSteps || (cfg.saveSteps > 0 && done % cfg.saveSteps === 0)) {
        await saveCheckpoint(done);
      }
    }
  } finally {
    setLoraTraining(model, false);
    optimizer.dispose();
  }
  if (options.runDir) {
    const adapterDir = join(options.runDir, 'adapter');
    await readAhead(parameters.map((p) => p.variable));
    await saveAdapter(
      model,
      adapterDir,
      options.baseModelNameOrPath ? { baseModelNameOrPath: options.baseModelNameOrPath } : {},
    );
    result.adapterDir = adapterDir;
  }
  return result;
}
