import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { readInputText } from './_fs';
import { CliError } from './errors';

/**
 * The four MMLU computer-science subjects (lm-eval task names without the `mmlu_` prefix).
 *
 * @example
 * MMLU_CS_SUBJECTS.map((s) => `mmlu_${s}`); // ['mmlu_college_computer_science', …]
 */
export const MMLU_CS_SUBJECTS = [
  'college_computer_science',
  'high_school_computer_science',
  'computer_security',
  'machine_learning',
] as const;

const backendSchema = z
  .enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'])
  .describe(
    'TensorFlow.js backend: auto picks tensorflow (tfjs-node[-gpu] if installed), then webgpu, wasm, cpu.',
  );

const pathSchema = (what: string) =>
  z.string().min(1).describe(`${what} Relative paths resolve against the config file's folder.`);

const positiveInt = z.int().positive();

const modelSchema = z
  .strictObject({
    name: z.string().min(1).describe('Label in reports and charts, e.g. "Llama 3.2 1B".'),
    path: pathSchema(
      'Local Hugging Face model folder (config.json, *.safetensors or a bnb-4bit checkpoint, tokenizer.json).',
    ),
    backend: backendSchema
      .optional()
      .describe('Backend for this model; default: the top-level `backend`.'),
  })
  .describe('One model to evaluate, fine-tune and evaluate again.');

const hellaswagSchema = z
  .strictObject({
    limit: positiveInt
      .optional()
      .describe('Evaluate only the first N validation items (lm-eval --limit).'),
    path: pathSchema(
      'HellaSwag validation file (jsonl or parquet); default: the bundled small set.',
    ).optional(),
  })
  .describe('HellaSwag (acc, acc_norm), 0-shot as in lm-eval.');

const gsm8kSchema = z
  .strictObject({
    numFewshot: z
      .int()
      .min(0)
      .default(5)
      .describe('Few-shot examples per question (the paper: 5).'),
    seed: z.int().default(1234).describe('Few-shot sampling seed (lm-eval default 1234).'),
    limit: positiveInt.optional().describe('Evaluate only the first N test items.'),
    trainPath: pathSchema(
      'GSM8K train split (few-shot pool); default: the bundled small set.',
    ).optional(),
    testPath: pathSchema('GSM8K test split; default: the bundled small set.').optional(),
    maxGenTokens: positiveInt
      .optional()
      .describe('Maximum new tokens per answer (lm-eval HF default: 256).'),
  })
  .describe('GSM8K (strict and flexible exact match), generation until "Question:".');

const mmluSchema = z
  .strictObject({
    subjects: z
      .array(z.string().min(1))
      .min(1)
      .default([...MMLU_CS_SUBJECTS])
      .describe('MMLU subjects (without "mmlu_"); default: the four computer-science subjects.'),
    path: pathSchema(
      'MMLU data folder (csv per subject) or parquet; default: the bundled small set.',
    ).optional(),
    numFewshot: z.int().min(0).default(0).describe('Few-shot examples (lm-eval mmlu default: 0).'),
    limit: positiveInt.optional().describe('Evaluate only the first N items per subject.'),
  })
  .describe('MMLU multiple choice (acc), aggregated over the subjects by size.');

const templateSchema = z
  .union([
    z.enum(['alpaca', 'unsloth']),
    z.strictObject({
      name: z.string().min(1).describe('Name recorded in the report.'),
      withInput: z
        .string()
        .min(1)
        .describe('Prompt with {instruction} and {input} placeholders; the response follows it.'),
      withoutInput: z
        .string()
        .optional()
        .describe('Prompt used when input is empty; default: withInput.'),
      responseMarker: z.string().optional().describe('Text after which the response starts.'),
    }),
  ])
  .default('alpaca')
  .describe(
    'Prompt template: "alpaca" (Stanford Alpaca, no-input variant), "unsloth" (one template, as the Unsloth notebooks) or a custom one.',
  );

const datasetSchema = z
  .strictObject({
    path: pathSchema('Alpaca-format instruction data (json, jsonl or parquet).'),
    n: positiveInt.default(2000).describe('Samples drawn for fine-tuning (the paper: 2,000).'),
    seed: z.int().optional().describe('Subset sampling seed; default: the top-level `seed`.'),
    template: templateSchema,
    trainOnInputs: z
      .boolean()
      .default(false)
      .describe('Also train on the prompt tokens (default: loss on the response only).'),
  })
  .describe('Fine-tuning data: a seeded N-sample subset of an Alpaca-format file.');

const scheduleSchema = z.enum(['linear', 'cosine', 'constant']);

const finetuneSchema = z
  .strictObject({
    dataset: datasetSchema,
    preset: z
      .enum(['unsloth', 'qlora-paper'])
      .default('unsloth')
      .describe(
        'Hyperparameter preset: "unsloth" (r 16, α 16, dropout 0, lr 2e-4, batch 2 × 4, linear, 60 steps) or "qlora-paper" (r 64, α 16, dropout 0.1, lr 2e-4, batch 1 × 16, constant, grad norm 0.3). Fields below override it.',
      ),
    optimizer: z
      .enum(['adamw', 'adamw_8bit'])
      .optional()
      .describe('AdamW (32-bit, torch) or 8-bit AdamW (bitsandbytes); default: the preset.'),
    r: positiveInt.optional().describe('LoRA rank.'),
    alpha: z
      .number()
      .positive()
      .optional()
      .describe('LoRA alpha (scaling alpha / r, or alpha / √r with rsLoRA).'),
    dropout: z.number().min(0).lt(1).optional().describe('LoRA dropout probability.'),
    targetModules: z
      .array(z.enum(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']))
      .min(1)
      .optional()
      .describe('Projections that get adapters; default: all seven.'),
    useRslora: z.boolean().optional().describe('Rank-stabilised scaling alpha / √r.'),
    lr: z.number().positive().optional().describe('Peak learning rate (AdamW).'),
    epochs: z.number().positive().optional().describe('Epochs; ignored when maxSteps is set.'),
    maxSteps: positiveInt.optional().describe('Optimizer steps; overrides epochs.'),
    batchSize: positiveInt.optional().describe('Sequences per micro-batch.'),
    gradientAccumulation: positiveInt.optional().describe('Micro-batches per optimizer step.'),
    maxLength: positiveInt.optional().describe('Truncate tokenized examples to this many tokens.'),
    warmupSteps: z.int().min(0).optional().describe('Linear warmup steps.'),
    warmupRatio: z.number().min(0).max(1).optional().describe('Warmup as a fraction of all steps.'),
    schedule: scheduleSchema.optional().describe('Learning-rate schedule after warmup.'),
    weightDecay: z.number().min(0).optional().describe('AdamW weight decay.'),
    maxGradNorm: z.number().positive().optional().describe('Gradient clipping (global L2 norm).'),
    checkpointEvery: positiveInt.optional().describe('Save a resumable checkpoint every N steps.'),
    logEvery: positiveInt.optional().describe('Write a loss line every N steps (default 1).'),
  })
  .describe('QLoRA fine-tuning: data, preset and overrides.');

const mixSchema = z
  .strictObject({
    gsm8kTrainPath: pathSchema(
      'GSM8K train file mixed into the fine-tuning data (as Alpaca records); default: benchmarks.gsm8k.trainPath, else the bundled set.',
    ).optional(),
    fraction: z
      .number()
      .min(0)
      .max(1)
      .describe(
        "Fraction of the N fine-tuning samples drawn from GSM8K train (the paper's future work).",
      ),
  })
  .describe('Mixed fine-tuning: replace part of the Alpaca subset with GSM8K train items.');

const quantizeSchema = z
  .strictObject({
    quantType: z
      .enum(['nf4', 'fp4'])
      .default('nf4')
      .describe('4-bit data type of the frozen base.'),
    blocksize: z
      .literal([32, 64, 128, 256, 512, 1024, 2048, 4096])
      .default(64)
      .describe('Elements per absmax block (bitsandbytes default 64).'),
    doubleQuant: z
      .boolean()
      .default(true)
      .describe('Quantize the absmax values again (QLoRA: true).'),
    cacheDequantized: z
      .enum(['auto', 'on', 'off'])
      .default('auto')
      .describe(
        'Keep an f32 copy of the dequantized frozen weights (same values, faster on wasm/cpu): auto = only when all projections fit in 64 MiB as f32.',
      ),
  })
  .describe('How the frozen base weights are quantized (ignored for a bnb-4bit checkpoint).');

/**
 * The zod schema of `qlora experiment --config exp.json`: models, benchmarks, fine-tuning,
 * optional data mixing, quantization, run directory, backend and seed. Every field has a
 * description and, where sensible, a default; unknown keys are errors (typos are caught).
 * `packages/cli/schema/experiment.schema.json` is generated from it.
 *
 * @example
 * const config = experimentConfigSchema.parse({
 *   models: [{ name: 'Llama 3.2 1B', path: 'models/Llama-3.2-1B' }],
 *   finetune: { dataset: { path: 'data/alpaca_data.json' } },
 * });
 * config.benchmarks.gsm8k?.numFewshot; // 5
 */
export const experimentConfigSchema = z
  .strictObject({
    $schema: z.string().optional().describe('Path or URL of experiment.schema.json (for editors).'),
    models: z.array(modelSchema).min(1).describe('Models compared side by side in the report.'),
    benchmarks: z
      .strictObject({
        hellaswag: hellaswagSchema.optional(),
        gsm8k: gsm8kSchema.optional(),
        mmlu: mmluSchema.optional(),
      })
      .prefault({ hellaswag: {}, gsm8k: {}, mmlu: {} })
      .describe(
        'Benchmarks run before and after fine-tuning; omit one to skip it (omit all three keys to run all).',
      ),
    finetune: finetuneSchema,
    mix: mixSchema.optional(),
    quantize: quantizeSchema.prefault({}),
    runDir: pathSchema(
      'Run directory: every stage writes here, and a killed run resumes from it.',
    ).default('runs/experiment'),
    backend: backendSchema.default('auto'),
    evalBatchSize: positiveInt.default(16).describe('Requests per forward pass in evaluation.'),
    seed: z
      .int()
      .default(3407)
      .describe('Seed of everything not seeded explicitly (Unsloth: 3407).'),
  })
  .describe('qlora experiment: evaluate, QLoRA-fine-tune, evaluate again, report FR / ΔA / ΔK.');

/**
 * A validated experiment config, defaults filled in and paths resolved.
 *
 * @example
 * const config: ExperimentConfig = await loadExperimentConfig('exp.json', io.cwd);
 */
export type ExperimentConfig = z.output<typeof experimentConfigSchema>;

/**
 * An experiment config as written in the file (defaults optional).
 *
 * @example
 * const input: ExperimentConfigInput = { models: [{ name: 'm', path: 'm' }], finetune: { dataset: { path: 'a.json' } } };
 */
export type ExperimentConfigInput = z.input<typeof experimentConfigSchema>;

/**
 * Fine-tuning hyperparameters after applying the preset and then the overrides.
 *
 * @example
 * resolveFinetune(config).r; // 16 with the unsloth preset
 */
export interface FinetuneHyperparameters {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
  useRslora: boolean;
  optimizer: 'adamw' | 'adamw_8bit';
  lr: number;
  epochs: number;
  maxSteps: number | undefined;
  batchSize: number;
  gradientAccumulation: number;
  maxLength: number;
  warmupSteps: number;
  warmupRatio: number;
  schedule: 'linear' | 'cosine' | 'constant';
  weightDecay: number;
  maxGradNorm: number;
  logEvery: number;
  checkpointEvery: number | undefined;
  seed: number;
}

const ALL_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** Preset values with their sources (specs/lora-training.md §4.2, specs/nf4-qlora.md §6). */
const PRESETS: Record<'unsloth' | 'qlora-paper', Omit<FinetuneHyperparameters, 'seed'>> = {
  // Unsloth Llama 3.x Alpaca notebooks: get_peft_model + SFTConfig defaults.
  unsloth: {
    r: 16,
    alpha: 16,
    dropout: 0,
    targetModules: ALL_TARGETS,
    useRslora: false,
    optimizer: 'adamw_8bit',
    lr: 2e-4,
    epochs: 1,
    maxSteps: 60,
    batchSize: 2,
    gradientAccumulation: 4,
    maxLength: 2048,
    warmupSteps: 5,
    warmupRatio: 0,
    schedule: 'linear',
    // The same value as @qlora/trainer's `unsloth` preset (Unsloth's notebooks moved to 0.001 late
    // in 2025; the trainer README says so).
    weightDecay: 0.01,
    maxGradNorm: 1,
    logEvery: 1,
    checkpointEvery: undefined,
  },
  // artidoro/qlora finetune_guanaco_7b.sh (QLoRA paper App. B.2).
  'qlora-paper': {
    r: 64,
    alpha: 16,
    dropout: 0.1,
    targetModules: ALL_TARGETS,
    useRslora: false,
    optimizer: 'adamw',
    lr: 2e-4,
    epochs: 1,
    maxSteps: 1875,
    batchSize: 1,
    gradientAccumulation: 16,
    maxLength: 2048,
    warmupSteps: 0,
    warmupRatio: 0.03,
    schedule: 'constant',
    weightDecay: 0,
    maxGradNorm: 0.3,
    logEvery: 1,
    checkpointEvery: undefined,
  },
};

/**
 * Merges the fine-tuning preset with the config's overrides. Setting `epochs` without `maxSteps`
 * drops the preset's step count, so training runs by epochs.
 *
 * @example
 * resolveFinetune(experimentConfigSchema.parse({ models: [{ name: 'm', path: 'm' }],
 *   finetune: { dataset: { path: 'a.json' }, preset: 'qlora-paper', r: 8 } })).r; // 8
 */
export function resolveFinetune(config: ExperimentConfig): FinetuneHyperparameters {
  const f = config.finetune;
  const base = PRESETS[f.preset];
  const pick = <T>(value: T | undefined, fallback: T): T =>
    value === undefined ? fallback : value;
  return {
    r: pick(f.r, base.r),
    alpha: pick(f.alpha, base.alpha),
    dropout: pick(f.dropout, base.dropout),
    targetModules: pick(f.targetModules, base.targetModules),
    useRslora: pick(f.useRslora, base.useRslora),
    optimizer: pick(f.optimizer, base.optimizer),
    lr: pick(f.lr, base.lr),
    epochs: pick(f.epochs, base.epochs),
    maxSteps: f.maxSteps ?? (f.epochs !== undefined ? undefined : base.maxSteps),
    batchSize: pick(f.batchSize, base.batchSize),
    gradientAccumulation: pick(f.gradientAccumulation, base.gradientAccumulation),
    maxLength: pick(f.maxLength, base.maxLength),
    warmupSteps: pick(f.warmupSteps, base.warmupSteps),
    warmupRatio: pick(f.warmupRatio, base.warmupRatio),
    schedule: pick(f.schedule, base.schedule),
    weightDecay: pick(f.weightDecay, base.weightDecay),
    maxGradNorm: pick(f.maxGradNorm, base.maxGradNorm),
    logEvery: pick(f.logEvery, base.logEvery),
    checkpointEvery: f.checkpointEvery ?? base.checkpointEvery,
    seed: f.dataset.seed ?? config.seed,
  };
}

const resolveFrom = (dir: string, path: string): string =>
  isAbsolute(path) ? path : resolve(dir, path);

/**
 * Resolves every path of a parsed config against `dir` (the config file's folder). Absolute
 * paths stay as they are; nothing is refused (paths outside `dir` are allowed).
 *
 * @example
 * resolveConfigPaths(config, '/work/exp').runDir; // '/work/exp/runs/experiment'
 */
export function resolveConfigPaths(config: ExperimentConfig, dir: string): ExperimentConfig {
  const at = (p: string | undefined): string | undefined =>
    p === undefined ? undefined : resolveFrom(dir, p);
  const out: ExperimentConfig = structuredClone(config);
  for (const model of out.models) model.path = resolveFrom(dir, model.path);
  const { hellaswag, gsm8k, mmlu } = out.benchmarks;
  if (hellaswag?.path !== undefined) hellaswag.path = at(hellaswag.path);
  if (gsm8k?.trainPath !== undefined) gsm8k.trainPath = at(gsm8k.trainPath);
  if (gsm8k?.testPath !== undefined) gsm8k.testPath = at(gsm8k.testPath);
  if (mmlu?.path !== undefined) mmlu.path = at(mmlu.path);
  out.finetune.dataset.path = resolveFrom(dir, out.finetune.dataset.path);
  if (out.mix?.gsm8kTrainPath !== undefined)
    out.mix.gsm8kTrainPath = resolveFrom(dir, out.mix.gsm8kTrainPath);
  out.runDir = resolveFrom(dir, out.runDir);
  return out;
}

/**
 * Validates config JSON text; `file` names it in errors. Invalid JSON or a schema violation
 * throws `CliError` `CONFIG_INVALID` (exit 2) with zod's `prettifyError` listing every problem.
 *
 * @example
 * parseExperimentConfig('{"models": []}', 'exp.json');
 * // CliError: [@qlora/cli] exp.json: invalid experiment config … ✖ Too small: expected array to have >=1 items → at models
 */
export function parseExperimentConfig(text: string, file: string): ExperimentConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new CliError(
      'CONFIG_INVALID',
      `${file}: expected JSON, got a syntax error (${(cause as Error).message})`,
      { hint: 'Fix the JSON syntax (no comments or trailing commas).', cause },
    );
  }
  const result = experimentConfigSchema.safeParse(json);
  if (!result.success) {
    throw new CliError(
      'CONFIG_INVALID',
      `${file}: invalid experiment config:\n${z.prettifyError(result.error)}`,
      {
        hint: 'See packages/cli/schema/experiment.schema.json (add "$schema" to the file for editor checks).',
        cause: result.error,
      },
    );
  }
  return result.data;
}

/**
 * Reads, validates and resolves `qlora experiment --config <path>`: relative paths in the file
 * resolve against the file's folder, `path` itself against `cwd`.
 *
 * @example
 * const config = await loadExperimentConfig('experiments/llama.json', process.cwd());
 * config.models[0]?.path; // '/abs/experiments/models/Llama-3.2-1B'
 */
export async function loadExperimentConfig(path: string, cwd: string): Promise<ExperimentConfig> {
  const file = resolveFrom(cwd, path);
  let text: string;
  try {
    text = await readInputText(file, 'experiment config');
  } catch (error) {
    // A missing config is a usage error (exit 2), not a bad input file.
    const e = error as CliError;
    throw new CliError('CONFIG_INVALID', e.message.replace('[@qlora/cli] ', ''), {
      hint: 'Pass --config with the path of an experiment JSON file.',
      cause: error,
    });
  }
  return resolveConfigPaths(parseExperimentConfig(text, path), dirname(file));
}

/**
 * The JSON Schema (draft 2020-12) of the config file as users write it (defaults optional).
 *
 * @example
 * experimentJsonSchema().properties.models; // { type: 'array', minItems: 1, … }
 */
export function experimentJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(experimentConfigSchema, { io: 'input', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >;
}
