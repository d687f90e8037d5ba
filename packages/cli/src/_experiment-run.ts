import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadedModel } from '@qlora/trainer';
import {
  type BenchmarkOutput,
  type BenchmarkPlan,
  evaluateBenchmarks,
  MMLU_GROUP,
  readLatestResults,
} from './_benchmarks';
import { buildFinetuneData, promptTemplateOf, runFinetune, trainConfigOf } from './_finetune';
import { sha256Hex, writeFileAtomic } from './_fs';
import { type BackendChoice, openModel, startBackend } from './_runtime';
import { VERSION } from './_version';
import { parseLossLog } from './charts';
import { type ExperimentConfig, resolveFinetune } from './config';
import { CliError } from './errors';
import type { CliIo } from './io';
import { pairOutcomes, readLmEvalSamplesDir } from './outcomes';
import { createProgress } from './progress';
import { type ReportModelInput, writeReport } from './report';

/** One fine-tuning variant of a model: plain, or with GSM8K mixed in. */
interface Variant {
  id: 'plain' | 'mix';
  label: string;
  mix?: { gsm8kTrainPath: string; fraction: number };
}

/** What one experiment wrote (paths inside the run directory). */
export interface ExperimentOutcome {
  runDir: string;
  report: string[];
  models: Array<{
    name: string;
    variant: string;
    baseResults: string;
    ftResults: string;
    forgettingRate: number | undefined;
  }>;
  seconds: Record<string, number>;
}

const slug = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '') || 'model';

/** Stage markers: `<runDir>/stages/<name>.json`, written atomically when a stage is complete. */
async function stageDone(
  runDir: string,
  name: string,
): Promise<Record<string, unknown> | undefined> {
  const path = join(runDir, 'stages', `${name}.json`);
  if (!existsSync(path)) return undefined;
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

async function markStage(
  runDir: string,
  name: string,
  data: Record<string, unknown>,
): Promise<void> {
  await writeFileAtomic(
    join(runDir, 'stages', `${name}.json`),
    `${JSON.stringify({ stage: name, finishedAt: new Date().toISOString(), ...data }, null, 2)}\n`,
  );
}

function benchmarkPlan(config: ExperimentConfig): BenchmarkPlan {
  const b = config.benchmarks;
  const plan: BenchmarkPlan = {};
  if (b.hellaswag) plan.hellaswag = { path: b.hellaswag.path, limit: b.hellaswag.limit };
  if (b.gsm8k) {
    plan.gsm8k = {
      numFewshot: b.gsm8k.numFewshot,
      seed: b.gsm8k.seed,
      limit: b.gsm8k.limit,
      trainPath: b.gsm8k.trainPath,
      testPath: b.gsm8k.testPath,
      maxGenTokens: b.gsm8k.maxGenTokens,
    };
  }
  if (b.mmlu) {
    plan.mmlu = {
      subjects: b.mmlu.subjects,
      path: b.mmlu.path,
      numFewshot: b.mmlu.numFewshot,
      limit: b.mmlu.limit,
    };
  }
  return plan;
}

async function hashModelFiles(dir: string, into: Record<string, string>): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  for (const name of (await readdir(dir)).sort()) {
    if (/\.(json|safetensors)$/.test(name)) {
      into[join(dir, name)] = sha256Hex(await readFile(join(dir, name)));
    }
  }
}

/** Versions of the packages and runtime that produced the run. */
async function collectVersions(backend: string): Promise<Record<string, string>> {
  const tf = await import('@tensorflow/tfjs-core');
  const versions: Record<string, string> = {
    '@qlora/cli': VERSION,
    node: process.version,
    '@tensorflow/tfjs-core': tf.version_core,
    backend,
  };
  for (const name of [
    'trainer',
    'lora',
    'nf4',
    'datasets',
    'bench-core',
    'bench-gsm8k',
    'bench-hellaswag',
    'bench-mmlu',
    'metrics',
  ]) {
    try {
      const pkg = (await import(`@qlora/${name}/package.json`, { with: { type: 'json' } })) as {
        default: { version: string };
      };
      versions[`@qlora/${name}`] = pkg.default.version;
    } catch {
      // A package without a ./package.json export: leave it out.
    }
  }
  return versions;
}

/**
 * Runs the paper's flow for every model of `config`: base evaluation, QLoRA fine-tuning on a
 * seeded N-sample subset (and, with `config.mix`, a second fine-tuning with GSM8K mixed in),
 * fine-tuned evaluation, and one report. Every stage writes into `config.runDir` and leaves a
 * marker there when complete, so running the same config again resumes where it stopped
 * (evaluations through their request caches, training through the trainer's checkpoints).
 */
export async function runExperimentFlow(
  config: ExperimentConfig,
  io: CliIo,
  options: { json?: boolean; force?: boolean } = {},
): Promise<ExperimentOutcome> {
  const runDir = config.runDir;
  const seconds: Record<string, number> = {};
  const configText = `${JSON.stringify(config, null, 2)}\n`;
  const configPath = join(runDir, 'config.json');
  if (existsSync(configPath)) {
    const previous = await readFile(configPath, 'utf8');
    if (previous !== configText) {
      if (!options.force) {
        throw new CliError(
          'USAGE',
          `run directory ${runDir}: expected the config of the run there (to resume it), got a different one`,
          {
            hint: 'Use another --run-dir, or --force to delete the old run and start again.',
          },
        );
      }
      await rm(runDir, { recursive: true, force: true });
    } else {
      io.stderr.write(`resuming the run in ${runDir}\n`);
    }
  }
  await writeFileAtomic(configPath, configText);

  const say = (text: string) => {
    if (!options.json) io.stderr.write(`${text}\n`);
  };
  const plan = benchmarkPlan(config);
  const hyper = resolveFinetune(config);
  const variants: Variant[] = [{ id: 'plain', label: '' }];
  if (config.mix !== undefined) {
    const gsm8kTrainPath =
      config.mix.gsm8kTrainPath ??
      config.benchmarks.gsm8k?.trainPath ??
      join(new URL('../assets/embedded/', import.meta.url).pathname, 'data/gsm8k/train.jsonl');
    variants.push({
      id: 'mix',
      label: ` + ${Math.round(config.mix.fraction * 100)}% GSM8K mix`,
      mix: { gsm8kTrainPath, fraction: config.mix.fraction },
    });
  }
  const dataHashes: Record<string, string> = {};
  const reportModels: ReportModelInput[] = [];
  const outcome: ExperimentOutcome = { runDir, report: [], models: [], seconds };
  let backendName = config.backend as string;

  for (const modelConfig of config.models) {
    const modelDir = join(runDir, slug(modelConfig.name));
    const backend = (modelConfig.backend ?? config.backend) as BackendChoice;
    backendName = await startBackend(backend, io);
    await hashModelFiles(modelConfig.path, dataHashes);
    let loaded: LoadedModel | undefined;
    const model = async (): Promise<LoadedModel> => {
      if (loaded === undefined) {
        const t = performance.now();
        loaded = await openModel(
          modelConfig.path,
          {
            backend,
            quantize: config.quantize,
            evalBatchSize: config.evalBatchSize,
            ...(config.benchmarks.gsm8k?.maxGenTokens === undefined
              ? {}
              : { maxGenTokens: config.benchmarks.gsm8k.maxGenTokens }),
            dequantCache: config.quantize.cacheDequantized,
          },
          io,
        );
        loaded.model.name = modelConfig.name;
        seconds[`${slug(modelConfig.name)}/load`] = (performance.now() - t) / 1000;
      }
      return loaded;
    };

    const evaluateInto = async (
      dir: string,
      stage: string,
    ): Promise<BenchmarkOutput | undefined> => {
      if (await stageDone(runDir, stage)) return undefined;
      const t = performance.now();
      const loadedModel = await model();
      let progress: ReturnType<typeof createProgress> | undefined;
      let currentTask = '';
      let done = 0;
      const out = await evaluateBenchmarks(loadedModel.model, plan, {
        outDir: dir,
        batchSize: config.evalBatchSize,
        ...(loadedModel.tokenizer?.eosToken ? { eosText: loadedModel.tokenizer.eosToken } : {}),
        modelName: modelConfig.name,
        config: { model: 'qlora.ts', model_args: `pretrained=${modelConfig.path}` },
        ...(io.signal ? { signal: io.signal } : {}),
        onProgress: (p) => {
          if (p.task !== currentTask) {
            progress?.stop();
            currentTask = p.task;
            progress = createProgress(io, {
              total: p.total,
              label: `${stage} ${p.task}`,
              json: options.json ?? false,
            });
            done = 0;
          }
          progress?.increment(p.done - done);
          done = p.done;
        },
      });
      progress?.stop();
      for (const [k, v] of Object.entries(out.inputs)) dataHashes[k] = v;
      seconds[stage] = (performance.now() - t) / 1000;
      await markStage(runDir, stage, {
        results: out.resultsPath,
        samples: out.samplePaths,
        inputs: out.inputs,
        seconds: seconds[stage],
      });
      return out;
    };

    const baseDir = join(modelDir, 'base');
    await evaluateInto(baseDir, `${slug(modelConfig.name)}-base-eval`);
    const base = await readLatestResults(baseDir);
    if (base === undefined) throw new CliError('RUNTIME', `base results missing in ${baseDir}`);

    for (const variant of variants) {
      const variantDir = join(modelDir, variant.id);
      const trainDir = join(variantDir, 'train');
      const evalDir = join(variantDir, 'eval');
      const prefix = `${slug(modelConfig.name)}-${variant.id}`;
      const data = await buildFinetuneData(
        config.finetune.dataset.path,
        config.finetune.dataset.n,
        hyper.seed,
        variant.mix,
      );
      for (const [k, v] of Object.entries(data.inputs)) dataHashes[k] = v;
      dataHashes[
        `${prefix}: fine-tuning records (${data.counts.alpaca} Alpaca + ${data.counts.gsm8k} GSM8K)`
      ] = data.recordsSha256;

      const trained = await stageDone(runDir, `${prefix}-train`);
      const evaluated = await stageDone(runDir, `${prefix}-eval`);
      if (!evaluated) {
        const loadedModel = await model();
        const { removeLora } = await import('@qlora/lora');
        removeLora(loadedModel.model);
        if (!trained) {
          const t = performance.now();
          const trainConfig = trainConfigOf(hyper, loadedModel.config.padTokenId ?? undefined);
          await writeFileAtomic(
            join(trainDir, 'records.json'),
            `${JSON.stringify(data.records, null, 1)}\n`,
          );
          let progress: ReturnType<typeof createProgress> | undefined;
          say(`${prefix}: fine-tuning on ${data.records.length} records`);
          const result = await runFinetune(loadedModel, data.records, trainConfig, {
            runDir: trainDir,
            template: promptTemplateOf(config.finetune.dataset.template),
            trainOnInputs: config.finetune.dataset.trainOnInputs,
            maxLength: hyper.maxLength,
            baseModelNameOrPath: modelConfig.path,
            ...(io.signal ? { signal: io.signal } : {}),
            onProgress: (p) => {
              progress ??= createProgress(io, {
                total: p.totalSteps,
                label: `${prefix} train`,
                json: options.json ?? false,
              });
              progress.increment(1, `loss ${p.loss.toFixed(3)}`);
            },
          });
          progress?.stop();
          seconds[`${prefix}-train`] = (performance.now() - t) / 1000;
          await markStage(runDir, `${prefix}-train`, {
            adapter: result.adapterDir,
            steps: result.totalSteps,
            startStep: result.startStep,
            droppedExamples: result.droppedExamples,
            lastLoss: result.losses.at(-1) ?? null,
            trainConfig: JSON.parse(JSON.stringify(trainConfig)),
            seconds: seconds[`${prefix}-train`],
          });
        } else {
          const { loadAdapter } = await import('@qlora/lora/node');
          await loadAdapter(loadedModel.model, join(trainDir, 'adapter'));
        }
        await evaluateInto(evalDir, `${prefix}-eval`);
      }
      const ft = await readLatestResults(evalDir);
      if (ft === undefined)
        throw new CliError('RUNTIME', `fine-tuned results missing in ${evalDir}`);

      const mmluSubtasks = config.benchmarks.mmlu?.subjects.map((s) => `mmlu_${s}`) ?? [];
      const { outcomes } = pairOutcomes(
        await readLmEvalSamplesDir(baseDir),
        await readLmEvalSamplesDir(evalDir),
        { mmluSubtasks },
      );
      const logPath = join(trainDir, 'steps.jsonl');
      const lossLog = existsSync(logPath)
        ? parseLossLog(await readFile(logPath, 'utf8'), logPath)
        : undefined;
      const name = `${modelConfig.name}${variant.label}`;
      reportModels.push({
        name,
        base: base.results,
        ft: ft.results,
        baseFile: { path: base.path, sha256: sha256Hex(await readFile(base.path)) },
        ftFile: { path: ft.path, sha256: sha256Hex(await readFile(ft.path)) },
        outcomes,
        ...(lossLog ? { lossLog } : {}),
        compare: {
          ...(plan.gsm8k ? {} : { gsm8k: false }),
          ...(plan.hellaswag ? {} : { hellaswag: false }),
          mmlu: plan.mmlu ? { task: MMLU_GROUP } : false,
        },
      });
      outcome.models.push({
        name,
        variant: variant.id,
        baseResults: base.path,
        ftResults: ft.path,
        forgettingRate: undefined,
      });
    }
  }

  const t = performance.now();
  const seeds: Record<string, number> = {
    'subset and mix sampling': hyper.seed,
    'LoRA init': hyper.seed,
    'data order': hyper.seed,
  };
  if (config.benchmarks.gsm8k)
    seeds['GSM8K few-shot (lm-eval fewshot_seed)'] = config.benchmarks.gsm8k.seed;
  outcome.report = await writeReport(runDir, {
    title: `qlora experiment: ${config.models.map((m) => m.name).join(', ')}, ${config.finetune.dataset.n} instruction samples`,
    models: reportModels,
    config,
    dataHashes,
    versions: await collectVersions(backendName),
    seeds,
    generatedAt: new Date().toISOString(),
  });
  seconds.report = (performance.now() - t) / 1000;
  const reportJson = JSON.parse(await readFile(join(runDir, 'report.json'), 'utf8')) as {
    models: Array<{ summary: { forgettingRate?: number | null } }>;
  };
  outcome.models.forEach((m, i) => {
    const fr = reportJson.models[i]?.summary.forgettingRate;
    m.forgettingRate = typeof fr === 'number' ? fr : undefined;
  });
  await markStage(runDir, 'report', { files: outcome.report, seconds });
  return outcome;
}
