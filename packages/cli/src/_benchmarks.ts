import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildTaskResults,
  type EvaluationProgress,
  evaluate,
  formatSampleLine,
  type LanguageModel,
  type TaskDefinition,
  type TaskRun,
} from '@qlora/bench-core';
import { openJsonlRequestCache } from '@qlora/bench-core/node';
import { gsm8kTask, loadGsm8kDocs } from '@qlora/bench-gsm8k';
import { hellaswagTask, loadHellaswagDocs } from '@qlora/bench-hellaswag';
import { loadMmluCsvDocs, loadMmluParquetDocs, type MmluDoc, mmluTask } from '@qlora/bench-mmlu';
import { type LmEvalResults, parseLmEvalResults, toLmEvalResults } from '@qlora/metrics';
import { sha256Hex, writeFileAtomic } from './_fs';
import { evaluateShard } from './_shard';

/** Where the bundled benchmark files live (the embedded default's synthetic sets). */
export const EMBEDDED_DIR = new URL('../assets/embedded/', import.meta.url).pathname;

/** The MMLU group entry written next to the subjects; `compareResults` reads it. */
export const MMLU_GROUP = 'mmlu';

/** The `config` key of a shard's results file: `{ index, count, docs: { <task>: <docs in all shards> } }`. */
export const SHARD_CONFIG_KEY = 'shard';

/** Benchmarks to run, with data paths resolved (absent paths: the bundled small sets). */
export interface BenchmarkPlan {
  hellaswag?: { path?: string | undefined; limit?: number | undefined };
  gsm8k?: {
    numFewshot: number;
    seed: number;
    limit?: number | undefined;
    trainPath?: string | undefined;
    testPath?: string | undefined;
    maxGenTokens?: number | undefined;
  };
  mmlu?: {
    subjects: string[];
    path?: string | undefined;
    numFewshot: number;
    limit?: number | undefined;
  };
}

/** Options of {@link evaluateBenchmarks}. */
export interface EvaluateBenchmarksOptions {
  /** Results, samples and the request cache go here. */
  outDir: string;
  batchSize?: number;
  /** The model's decoded EOS, added to GSM8K's stop strings (lm-eval's HF model does). */
  eosText?: string;
  /**
   * Evaluate only docs whose id (position after `limit`) has `id % count === index`, with the
   * same doc ids, prompts and few-shot draws as one process; `qlora eval --merge` joins shards.
   */
  shard?: { index: number; count: number };
  modelName?: string;
  /** Extra `config` fields of the results file. */
  config?: Record<string, unknown>;
  onProgress?: (progress: EvaluationProgress) => void;
  signal?: AbortSignal;
}

/** What {@link evaluateBenchmarks} wrote. */
export interface BenchmarkOutput {
  results: LmEvalResults;
  resultsPath: string;
  samplePaths: string[];
  /** Input files read, with their sha256. */
  inputs: Record<string, string>;
  /** MMLU subtask names in order (for paired tests). */
  mmluSubtasks: string[];
}

const embedded = (...parts: string[]) => join(EMBEDDED_DIR, 'data', ...parts);

async function hashFile(path: string, into: Record<string, string>): Promise<void> {
  if (into[path] === undefined) into[path] = sha256Hex(await readFile(path));
}

/** Loads one MMLU subject from a hendrycks folder (`test/`, `dev/`), a flat csv folder or parquet. */
async function loadMmlu(
  path: string,
  subject: string,
  inputs: Record<string, string>,
): Promise<{ test: MmluDoc[]; dev: MmluDoc[] }> {
  if (path.endsWith('.parquet')) {
    await hashFile(path, inputs);
    return { test: await loadMmluParquetDocs(path, { subject }), dev: [] };
  }
  const testDir = existsSync(join(path, 'test')) ? join(path, 'test') : path;
  const devDir = existsSync(join(path, 'dev')) ? join(path, 'dev') : undefined;
  await hashFile(join(testDir, `${subject}_test.csv`), inputs).catch(() => undefined);
  const test = await loadMmluCsvDocs(testDir, subject);
  let dev: MmluDoc[] = [];
  if (devDir !== undefined && existsSync(join(devDir, `${subject}_dev.csv`))) {
    await hashFile(join(devDir, `${subject}_dev.csv`), inputs);
    dev = await loadMmluCsvDocs(devDir, subject);
  }
  return { test, dev };
}

/** The newest `results_*.json` in a folder, parsed, or undefined. */
export async function readLatestResults(
  dir: string,
): Promise<{ path: string; results: LmEvalResults } | undefined> {
  if (!existsSync(dir)) return undefined;
  const names = (await readdir(dir)).filter((n) => /^results_.*\.json$/.test(n)).sort();
  const last = names.at(-1);
  if (last === undefined) return undefined;
  const path = join(dir, last);
  return { path, results: parseLmEvalResults(await readFile(path, 'utf8')) };
}

/**
 * Runs the planned benchmarks on a model as lm-evaluation-harness does and writes, into
 * `outDir`, one `results_<date>.json` (all tasks, plus the MMLU group `mmlu`), one
 * `samples_<task>_<date>.jsonl` per task, and `requests.cache.jsonl`: every model answer as it
 * arrives, so a rerun after a kill only asks for what is missing.
 */
export async function evaluateBenchmarks(
  lm: LanguageModel,
  plan: BenchmarkPlan,
  options: EvaluateBenchmarksOptions,
): Promise<BenchmarkOutput> {
  const inputs: Record<string, string> = {};
  const cache = await openJsonlRequestCache(join(options.outDir, 'requests.cache.jsonl'));
  const runs: TaskRun[] = [];
  const common = {
    cache,
    batchSize: options.batchSize ?? 16,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const shardDocs: Record<string, number> = {};
  const run = async <Doc>(task: TaskDefinition<Doc>, docs: readonly Doc[], limit?: number) => {
    const evaluateOptions = { ...common, ...(limit === undefined ? {} : { limit }) };
    if (options.shard === undefined) {
      const evaluation = await evaluate(lm, task, docs, evaluateOptions);
      runs.push({ task: task as TaskDefinition<unknown>, evaluation });
      return;
    }
    const { evaluation, totalDocs } = await evaluateShard(
      lm,
      task,
      docs,
      options.shard,
      evaluateOptions,
    );
    shardDocs[task.name] = totalDocs;
    runs.push({ task: task as TaskDefinition<unknown>, evaluation });
  };

  if (plan.hellaswag) {
    const path = plan.hellaswag.path ?? embedded('hellaswag', 'validation.jsonl');
    await hashFile(path, inputs);
    await run(hellaswagTask(), await loadHellaswagDocs(path), plan.hellaswag.limit);
  }
  if (plan.gsm8k) {
    const g = plan.gsm8k;
    const testPath = g.testPath ?? embedded('gsm8k', 'test.jsonl');
    const trainPath = g.trainPath ?? embedded('gsm8k', 'train.jsonl');
    await hashFile(testPath, inputs);
    const trainDocs = g.numFewshot > 0 ? await loadGsm8kDocs(trainPath) : [];
    if (g.numFewshot > 0) await hashFile(trainPath, inputs);
    const task = gsm8kTask({
      trainDocs,
      numFewshot: g.numFewshot,
      ...(options.eosText === undefined ? {} : { eosText: options.eosText }),
      ...(g.maxGenTokens === undefined ? {} : { maxGenTokens: g.maxGenTokens }),
    });
    await run(task, await loadGsm8kDocs(testPath), g.limit);
  }
  const mmluSubtasks: string[] = [];
  if (plan.mmlu) {
    const m = plan.mmlu;
    const path = m.path ?? embedded('mmlu');
    for (const subject of m.subjects) {
      const { test, dev } = await loadMmlu(path, subject, inputs);
      const task = mmluTask(subject, { fewshotDocs: dev, numFewshot: m.numFewshot });
      mmluSubtasks.push(task.name);
      await run(task, test, m.limit);
    }
  }
  await cache.flush();

  const fewshotSeed = plan.gsm8k?.seed ?? 1234;
  const results = buildTaskResults(runs, {
    modelName: options.modelName ?? lm.name ?? 'unknown',
    fewshotSeed,
    limit: null,
    ...(mmluSubtasks.length > 0
      ? {
          groups: {
            [MMLU_GROUP]: {
              subtasks: mmluSubtasks,
              aggregate: [{ metric: 'acc', weightBySize: true }],
              version: 'N/A',
            },
          },
        }
      : {}),
    ...(options.config || options.shard
      ? {
          config: {
            ...options.config,
            // What `qlora eval --merge` checks coverage against; it drops this key again.
            ...(options.shard
              ? {
                  [SHARD_CONFIG_KEY]: {
                    index: options.shard.index,
                    count: options.shard.count,
                    docs: shardDocs,
                  },
                }
              : {}),
          },
        }
      : {}),
  });
  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/Z$/, '');
  const resultsPath = join(options.outDir, `results_${stamp}.json`);
  const samplePaths: string[] = [];
  for (const { task, evaluation } of runs) {
    const path = join(options.outDir, `samples_${task.name}_${stamp}.jsonl`);
    await writeFileAtomic(path, evaluation.samples.map((s) => `${formatSampleLine(s)}\n`).join(''));
    samplePaths.push(path);
  }
  // The results file last: its presence means the evaluation is complete.
  await writeFileAtomic(resultsPath, toLmEvalResults(results));
  return { results, resultsPath, samplePaths, inputs, mmluSubtasks };
}
