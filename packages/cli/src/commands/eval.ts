import type { LmEvalResults } from '@qlora/metrics';
import { type BenchmarkPlan, evaluateBenchmarks } from '../_benchmarks';
import { resolvePath } from '../_fs';
import { mergeEvalShards } from '../_merge-shards';
import {
  type BackendChoice,
  openModel,
  tensorCoreBackend,
  useTensorCoreEvaluation,
} from '../_runtime';
import { CliError } from '../errors';
import type { CliIo } from '../io';
import { createProgress } from '../progress';
import { stringifyReportJson } from '../report';

/**
 * Options of `qlora eval`.
 *
 * @example
 * const options: EvalCommandOptions = { model: 'models/Llama-3.2-1B', tasks: ['gsm8k'], out: 'runs/base' };
 */
export interface EvalCommandOptions {
  model?: string;
  adapter?: string;
  tasks?: string[];
  limit?: number;
  numFewshot?: number;
  batchSize?: number;
  backend?: string;
  out?: string;
  /** `i/n`: evaluate docs with id % n === i (id: position after `--limit`). */
  shard?: string;
  /** `--out` folders of `--shard i/n` runs to merge into `out` instead of evaluating (no model). */
  merge?: string[];
  /** Quantize the base to NF4 while loading (as the experiment does). */
  nf4?: boolean;
  /**
   * W8A8: int8 weights (per output channel) and activations (per token) on the int8 tensor cores
   * (webgpu with Dawn's subgroup matrices). Faster, approximate; f32 is the default.
   */
  w8a8?: boolean;
  /**
   * f16 tensor cores: the projections' products in f16 (each row scaled by a power of two, f32
   * sums; TF32's precision) on webgpu with Dawn's f16 subgroup matrices. Faster, close to f32
   * (measured in BENCHMARKS.md); f32 is the default.
   */
  f16?: boolean;
  maxGenTokens?: number;
  hellaswag?: string;
  gsm8kTrain?: string;
  gsm8kTest?: string;
  mmlu?: string;
  mmluSubjects?: string[];
  json?: boolean;
}

const TASKS = ['hellaswag', 'gsm8k', 'mmlu'];

/** Parses `--shard i/n`. */
export function parseShard(text: string | undefined): { index: number; count: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index >= count) {
    throw new CliError('USAGE', `--shard: expected i/n with 0 ≤ i < n, got "${text}"`, {
      hint: 'e.g. --shard 0/4 on the first of four machines.',
    });
  }
  return { index, count };
}

/**
 * `qlora eval --model <dir>`: evaluates HellaSwag, GSM8K and MMLU with lm-eval-identical
 * prompts, requests and scoring, and writes `results_<date>.json` plus one
 * `samples_<task>_<date>.jsonl` per task into `--out` (a rerun resumes through the request
 * cache there). Without data paths it uses the bundled small sets. `shard: 'i/n'` evaluates
 * the docs with `doc_id % n === i`; `merge: [dirs]` joins such shard folders into `out`.
 *
 * @example
 * await runEval({ model: 'models/Llama-3.2-1B', tasks: ['gsm8k'], limit: 100, out: 'runs/base' }, io);
 * // FR/ΔA/ΔK need two runs: compare them with `qlora compare`
 * await runEval({ merge: ['runs/s0', 'runs/s1', 'runs/s2'], out: 'runs/eval' }, io);
 */
export async function runEval(options: EvalCommandOptions, io: CliIo): Promise<unknown> {
  if (options.merge !== undefined) return runMergeShards(options, io);
  if (options.model === undefined) {
    throw new CliError('USAGE', 'qlora eval: expected --model <dir>, got none', {
      hint: 'Pass a Hugging Face model folder: qlora eval --model models/Llama-3.2-1B',
    });
  }
  const tasks = options.tasks ?? TASKS;
  const unknown = tasks.filter((t) => !TASKS.includes(t));
  if (unknown.length > 0) {
    throw new CliError(
      'USAGE',
      `--tasks: expected hellaswag, gsm8k or mmlu, got ${unknown.join(', ')}`,
    );
  }
  const shard = parseShard(options.shard);
  const at = (p: string | undefined) => (p === undefined ? undefined : resolvePath(io.cwd, p));
  const plan: BenchmarkPlan = {};
  if (tasks.includes('hellaswag'))
    plan.hellaswag = { path: at(options.hellaswag), limit: options.limit };
  if (tasks.includes('gsm8k')) {
    plan.gsm8k = {
      numFewshot: options.numFewshot ?? 5,
      seed: 1234,
      limit: options.limit,
      trainPath: at(options.gsm8kTrain),
      testPath: at(options.gsm8kTest),
      maxGenTokens: options.maxGenTokens,
    };
  }
  if (tasks.includes('mmlu')) {
    plan.mmlu = {
      subjects: options.mmluSubjects ?? [
        'college_computer_science',
        'high_school_computer_science',
        'computer_security',
        'machine_learning',
      ],
      path: at(options.mmlu),
      numFewshot: 0,
      limit: options.limit,
    };
    if (options.mmlu === undefined && options.mmluSubjects === undefined) {
      plan.mmlu.subjects = ['fictional_networking', 'fictional_programming'];
    }
  }
  const modelDir = resolvePath(io.cwd, options.model);
  const outDir = resolvePath(io.cwd, options.out ?? 'runs/eval');
  if (options.w8a8 && options.f16) {
    throw new CliError('USAGE', '--w8a8 and --f16: expected one of them, got both', {
      hint: 'Pick one arithmetic for the projections: --f16 (close to f32) or --w8a8 (int8, faster, approximate).',
    });
  }
  const arithmetic = options.w8a8 ? 'w8a8' : options.f16 ? 'f16' : undefined;
  const backend = tensorCoreBackend(
    arithmetic && `--${arithmetic}`,
    (options.backend ?? 'auto') as BackendChoice,
  );
  const loaded = await openModel(
    modelDir,
    {
      backend,
      int8TensorCores: options.w8a8 ?? false,
      f16TensorCores: options.f16 ?? false,
      ...(options.nf4 ? { quantize: { quantType: 'nf4', blocksize: 64, doubleQuant: true } } : {}),
      evalBatchSize: options.batchSize ?? 16,
      ...(options.maxGenTokens === undefined ? {} : { maxGenTokens: options.maxGenTokens }),
    },
    io,
  );
  if (options.adapter !== undefined) {
    const { loadAdapter } = await import('@qlora/lora/node');
    await loadAdapter(loaded.model, resolvePath(io.cwd, options.adapter));
  }
  if (arithmetic !== undefined) {
    const { converted } = await useTensorCoreEvaluation(loaded.model, arithmetic);
    const cores = arithmetic === 'w8a8' ? 'int8' : 'f16';
    io.stderr.write(`${arithmetic}: ${converted} projections on the ${cores} tensor cores\n`);
  }
  let progress: ReturnType<typeof createProgress> | undefined;
  let current = '';
  let done = 0;
  const out = await evaluateBenchmarks(loaded.model, plan, {
    outDir,
    batchSize: options.batchSize ?? 16,
    ...(loaded.tokenizer?.eosToken ? { eosText: loaded.tokenizer.eosToken } : {}),
    ...(shard ? { shard } : {}),
    modelName: options.model,
    config: {
      model: 'qlora.ts',
      model_args: `pretrained=${options.model}${options.w8a8 ? ',w8a8=True' : ''}${options.f16 ? ',f16_tensor_cores=True' : ''}`,
    },
    ...(io.signal ? { signal: io.signal } : {}),
    onProgress: (p) => {
      if (p.task !== current) {
        progress?.stop();
        current = p.task;
        progress = createProgress(io, {
          total: p.total,
          label: p.task,
          json: options.json ?? false,
        });
        done = 0;
      }
      progress?.increment(p.done - done);
      done = p.done;
    },
  });
  progress?.stop();
  writeEvalReport(out, options, io);
  return out;
}

/** The result files and metrics, as JSON (`--json`) or as lines after `preface`. */
function writeEvalReport(
  out: Awaited<ReturnType<typeof mergeEvalShards>>,
  options: EvalCommandOptions,
  io: CliIo,
  preface = '',
): void {
  if (options.json) {
    io.stdout.write(
      stringifyReportJson({
        results: out.resultsPath,
        samples: out.samplePaths,
        metrics: out.results.results,
      }),
    );
    return;
  }
  if (preface !== '') io.stdout.write(preface);
  writeMetricLines(out.results, io);
  io.stdout.write(`wrote ${out.resultsPath}\n`);
}

async function runMergeShards(options: EvalCommandOptions, io: CliIo): Promise<unknown> {
  const dirs = options.merge ?? [];
  if (options.model !== undefined || options.shard !== undefined) {
    throw new CliError(
      'USAGE',
      `qlora eval --merge: expected only shard folders and --out, got ${options.model !== undefined ? '--model' : '--shard'} too`,
      {
        hint: 'Run the shards first (qlora eval --model … --shard i/n --out …), then merge their --out folders.',
      },
    );
  }
  if (options.out === undefined) {
    throw new CliError('USAGE', 'qlora eval --merge: expected --out <dir>, got none', {
      hint: 'e.g. qlora eval --merge runs/s0 runs/s1 runs/s2 --out runs/eval',
    });
  }
  const outDir = resolvePath(io.cwd, options.out);
  const shardDirs = dirs.map((d) => resolvePath(io.cwd, d));
  if (shardDirs.includes(outDir)) {
    throw new CliError(
      'USAGE',
      `qlora eval --merge: expected --out to be a folder other than the shards, got ${options.out}`,
      { hint: 'Write the merged files to a new folder, e.g. --out runs/eval.' },
    );
  }
  const out = await mergeEvalShards(shardDirs, outDir);
  writeEvalReport(out, options, io, `merged ${dirs.length} shard(s)\n`);
  return out;
}

function writeMetricLines(results: LmEvalResults, io: CliIo): void {
  for (const [task, entry] of Object.entries(results.results)) {
    const metrics = Object.entries(entry.metrics)
      .map(
        ([k, m]) =>
          `${k} ${m.value.toFixed(4)}${typeof m.stderr === 'number' ? ` ± ${m.stderr.toFixed(4)}` : ''}`,
      )
      .join(', ');
    io.stdout.write(`${task}: ${metrics}\n`);
  }
}
