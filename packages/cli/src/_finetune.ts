import { readFile } from 'node:fs/promises';
import {
  type AlpacaRecord,
  gsm8kToAlpaca,
  loadAlpaca,
  loadGsm8k,
  mixDatasets,
  type PromptTemplate,
  STANFORD_ALPACA_TEMPLATE,
  sampleSubset,
  UNSLOTH_ALPACA_TEMPLATE,
} from '@qlora/datasets';
import type { LoadedModel, TrainConfig, TrainProgress, TrainResult } from '@qlora/trainer';
import { sha256Hex } from './_fs';
import type { ExperimentConfig, FinetuneHyperparameters } from './config';
import { CliError } from './errors';

/** The fine-tuning records: a seeded subset of the Alpaca file, optionally mixed with GSM8K. */
export interface FinetuneData {
  records: AlpacaRecord[];
  /** sha256 of each input file, by path. */
  inputs: Record<string, string>;
  /** sha256 of the records actually used (canonical JSON), so two runs can be compared. */
  recordsSha256: string;
  counts: { alpaca: number; gsm8k: number };
}

/** Builds the fine-tuning records: `n` seeded Alpaca records, `fraction` of them GSM8K train. */
export async function buildFinetuneData(
  dataPath: string,
  n: number,
  seed: number,
  mix?: { gsm8kTrainPath: string; fraction: number },
): Promise<FinetuneData> {
  const inputs: Record<string, string> = { [dataPath]: sha256Hex(await readFile(dataPath)) };
  const alpaca = await loadAlpaca(dataPath);
  const gsmCount = mix === undefined ? 0 : Math.round(mix.fraction * n);
  const alpacaCount = n - gsmCount;
  if (alpacaCount > alpaca.length) {
    throw new CliError(
      'USAGE',
      `fine-tuning data ${dataPath}: expected at least ${alpacaCount} records for n = ${n}, got ${alpaca.length}`,
      { hint: 'Lower --n (finetune.dataset.n) or use a larger file.' },
    );
  }
  let records: AlpacaRecord[];
  if (mix === undefined || gsmCount === 0) {
    records = sampleSubset(alpaca, alpacaCount, seed);
  } else {
    inputs[mix.gsm8kTrainPath] = sha256Hex(await readFile(mix.gsm8kTrainPath));
    const gsm = (await loadGsm8k(mix.gsm8kTrainPath)).map((r) => gsm8kToAlpaca(r));
    records = mixDatasets(
      [
        { records: alpaca, count: alpacaCount },
        { records: gsm, count: gsmCount },
      ],
      { seed },
    ).records;
  }
  return {
    records,
    inputs,
    recordsSha256: sha256Hex(JSON.stringify(records)),
    counts: { alpaca: alpacaCount, gsm8k: gsmCount },
  };
}

/** The prompt template of a config's `finetune.dataset.template`. */
export function promptTemplateOf(
  template: ExperimentConfig['finetune']['dataset']['template'],
): PromptTemplate {
  if (template === 'alpaca') return STANFORD_ALPACA_TEMPLATE;
  if (template === 'unsloth') return UNSLOTH_ALPACA_TEMPLATE;
  return {
    name: template.name,
    withInput: template.withInput,
    ...(template.withoutInput === undefined ? {} : { withoutInput: template.withoutInput }),
    ...(template.responseMarker === undefined ? {} : { responseMarker: template.responseMarker }),
  };
}

/** Maps the CLI's resolved hyperparameters onto the trainer's `TrainConfig`. */
export function trainConfigOf(h: FinetuneHyperparameters, padTokenId?: number): TrainConfig {
  return {
    lora: {
      r: h.r,
      alpha: h.alpha,
      dropout: h.dropout,
      targetModules: h.targetModules,
      useRslora: h.useRslora,
      seed: h.seed,
    },
    optimizer: h.optimizer,
    learningRate: h.lr,
    weightDecay: h.weightDecay,
    schedule: h.schedule,
    ...(h.warmupSteps > 0 || h.warmupRatio === 0
      ? { warmupSteps: h.warmupSteps }
      : { warmupRatio: h.warmupRatio }),
    batchSize: h.batchSize,
    gradientAccumulationSteps: h.gradientAccumulation,
    maxGradNorm: h.maxGradNorm,
    epochs: Math.max(1, Math.round(h.epochs)),
    ...(h.maxSteps === undefined ? {} : { maxSteps: h.maxSteps }),
    seed: h.seed,
    ...(h.checkpointEvery === undefined ? {} : { saveSteps: h.checkpointEvery }),
    ...(padTokenId === undefined ? {} : { padTokenId }),
  };
}

/** Options of {@link runFinetune}. */
export interface RunFinetuneOptions {
  runDir: string;
  template: PromptTemplate;
  trainOnInputs: boolean;
  maxLength: number;
  baseModelNameOrPath?: string;
  onProgress?: (progress: TrainProgress) => void;
  signal?: AbortSignal;
}

/**
 * QLoRA fine-tuning with the trainer: injects LoRA, trains, checkpoints into `runDir`, and
 * saves the PEFT adapter in `runDir/adapter`. Always resumes from the newest checkpoint there.
 */
export async function runFinetune(
  loaded: LoadedModel,
  records: readonly AlpacaRecord[],
  config: TrainConfig,
  options: RunFinetuneOptions,
): Promise<TrainResult> {
  const { train } = await import('@qlora/trainer');
  if (loaded.tokenizer === null) {
    throw new CliError('INPUT_MISSING', 'model folder: expected tokenizer.json, got none', {
      hint: 'Fine-tuning tokenizes the data with the model tokenizer.',
    });
  }
  return train(
    loaded.model,
    {
      records,
      tokenizer: loaded.tokenizer,
      template: options.template,
      sft: { trainOnInputs: options.trainOnInputs, maxLength: options.maxLength },
    },
    config,
    {
      runDir: options.runDir,
      resume: true,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.baseModelNameOrPath ? { baseModelNameOrPath: options.baseModelNameOrPath } : {}),
    },
  );
}
