import { buildFinetuneData, promptTemplateOf, runFinetune, trainConfigOf } from '../_finetune';
import { resolvePath, writeFileAtomic } from '../_fs';
import { type BackendChoice, openModel, tensorCoreBackend, useF16Base } from '../_runtime';
import { experimentConfigSchema, resolveFinetune } from '../config';
import { CliError } from '../errors';
import type { CliIo } from '../io';
import { createProgress } from '../progress';
import { stringifyReportJson } from '../report';

/**
 * Options of `qlora train`.
 *
 * @example
 * const options: TrainCommandOptions = { model: 'models/Llama-3.2-1B', data: 'alpaca_data.json', n: 2000, runDir: 'runs/ft' };
 */
export interface TrainCommandOptions {
  model?: string;
  data?: string;
  /** Run folder (`--run-dir`, alias `--out`). */
  runDir?: string;
  out?: string;
  n?: number;
  seed?: number;
  template?: 'alpaca' | 'unsloth';
  preset?: 'unsloth' | 'qlora-paper';
  optimizer?: 'adamw' | 'adamw_8bit';
  r?: number;
  alpha?: number;
  dropout?: number;
  lr?: number;
  epochs?: number;
  maxSteps?: number;
  batchSize?: number;
  gradientAccumulation?: number;
  maxLength?: number;
  warmupSteps?: number;
  checkpointEvery?: number;
  /** GSM8K train file to mix in, and the fraction. */
  mixGsm8k?: string;
  mix?: number;
  backend?: string;
  /**
   * The frozen base's products on the f16 tensor cores (`useF16BaseProducts`; webgpu with
   * Dawn's f16 subgroup matrices): faster, not exact f32; LoRA, gradients and optimizer stay f32.
   */
  f16Base?: boolean;
  /** Continue from the newest checkpoint in the run folder (always on; accepted for clarity). */
  resume?: boolean;
  json?: boolean;
}

/**
 * `qlora train --model <dir> --data alpaca.json --n 2000 --preset unsloth --run-dir runs/ft`:
 * QLoRA fine-tuning (NF4 base, LoRA on all seven projections) on a seeded N-sample subset.
 * Writes `steps.jsonl`, resumable checkpoints and the PEFT adapter (`adapter/`) into the run
 * folder; a rerun continues from the newest checkpoint there.
 *
 * @example
 * await runTrain({ model: 'models/Llama-3.2-1B', data: 'alpaca_data.json', n: 2000, runDir: 'runs/ft' }, io);
 * // runs/ft/adapter/adapter_config.json, adapter_model.safetensors
 */
export async function runTrain(options: TrainCommandOptions, io: CliIo): Promise<unknown> {
  if (options.model === undefined || options.data === undefined) {
    throw new CliError('USAGE', 'qlora train: expected --model <dir> and --data <file>', {
      hint: 'e.g. qlora train --model models/Llama-3.2-1B --data alpaca_data.json --n 2000 --run-dir runs/ft',
    });
  }
  const runDir = resolvePath(io.cwd, options.runDir ?? options.out ?? 'runs/train');
  const config = experimentConfigSchema.parse({
    models: [{ name: options.model, path: resolvePath(io.cwd, options.model) }],
    finetune: {
      dataset: {
        path: resolvePath(io.cwd, options.data),
        ...(options.n === undefined ? {} : { n: options.n }),
        ...(options.seed === undefined ? {} : { seed: options.seed }),
        ...(options.template === undefined ? {} : { template: options.template }),
      },
      ...(options.preset === undefined ? {} : { preset: options.preset }),
      ...Object.fromEntries(
        (
          [
            'optimizer',
            'r',
            'alpha',
            'dropout',
            'lr',
            'epochs',
            'maxSteps',
            'batchSize',
            'gradientAccumulation',
            'maxLength',
            'warmupSteps',
            'checkpointEvery',
          ] as const
        )
          .filter((k) => options[k] !== undefined)
          .map((k) => [k, options[k]]),
      ),
    },
    runDir,
  });
  const hyper = resolveFinetune(config);
  const mix =
    options.mix === undefined
      ? undefined
      : {
          gsm8kTrainPath: resolvePath(io.cwd, options.mixGsm8k ?? ''),
          fraction: options.mix,
        };
  if (mix !== undefined && options.mixGsm8k === undefined) {
    throw new CliError('USAGE', '--mix: expected --mix-gsm8k <train.jsonl> as well, got none');
  }
  const data = await buildFinetuneData(
    config.finetune.dataset.path,
    config.finetune.dataset.n,
    hyper.seed,
    mix,
  );
  const backend = tensorCoreBackend(
    options.f16Base ? '--f16-base' : undefined,
    (options.backend ?? 'auto') as BackendChoice,
  );
  const loaded = await openModel(
    config.models[0]!.path,
    {
      backend,
      quantize: config.quantize,
      f16TensorCores: options.f16Base ?? false,
    },
    io,
  );
  if (options.f16Base) {
    await useF16Base();
    io.stderr.write('f16-base: the base projections run on the f16 tensor cores\n');
  }
  const trainConfig = trainConfigOf(hyper, loaded.config.padTokenId ?? undefined);
  await writeFileAtomic(`${runDir}/records.json`, `${JSON.stringify(data.records, null, 1)}\n`);
  let progress: ReturnType<typeof createProgress> | undefined;
  const result = await runFinetune(loaded, data.records, trainConfig, {
    runDir,
    template: promptTemplateOf(config.finetune.dataset.template),
    trainOnInputs: config.finetune.dataset.trainOnInputs,
    maxLength: hyper.maxLength,
    baseModelNameOrPath: options.model,
    ...(io.signal ? { signal: io.signal } : {}),
    onProgress: (p) => {
      progress ??= createProgress(io, {
        total: p.totalSteps - p.step + 1,
        label: 'train',
        json: options.json ?? false,
      });
      progress.increment(1, `loss ${p.loss.toFixed(3)}`);
    },
  });
  progress?.stop();
  const summary = {
    adapter: result.adapterDir,
    steps: result.totalSteps,
    resumedFrom: result.startStep,
    lastLoss: result.losses.at(-1) ?? null,
    records: data.records.length,
    recordsSha256: data.recordsSha256,
    ...(options.f16Base ? { f16BaseProducts: true } : {}),
  };
  if (options.json) io.stdout.write(stringifyReportJson(summary));
  else
    io.stdout.write(
      `trained ${result.totalSteps} steps${result.startStep > 0 ? ` (resumed at ${result.startStep})` : ''}, last loss ${summary.lastLoss?.toFixed(4) ?? '–'}\nwrote ${result.adapterDir}\n`,
    );
  return summary;
}
