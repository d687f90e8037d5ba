import { basename, join } from 'node:path';
import { summarizeTask, type TaskEvaluation } from '@qlora/bench-core';
import {
  buildLmEvalResults,
  type LmEvalGroupInput,
  type LmEvalResults,
  type LmEvalTaskInput,
  toLmEvalResults,
} from '@qlora/metrics';
import { readLatestResults, SHARD_CONFIG_KEY } from './_benchmarks';
import { readInputText, writeFileAtomic } from './_fs';
import { aggregateSampleRows, type SampleRowFields } from './_shard';
import { CliError } from './errors';

/**
 * What {@link mergeEvalShards} wrote.
 *
 * @example
 * const { resultsPath, samplePaths } = await mergeEvalShards(['runs/s0', 'runs/s1'], 'runs/eval');
 * // 'runs/eval/results_2026-11-28T10-59-44.638.json', ['runs/eval/samples_gsm8k_2026-….jsonl', …]
 */
export interface MergedEvalOutput {
  results: LmEvalResults;
  resultsPath: string;
  samplePaths: string[];
}

/** Top-level results fields that may differ between shards (timing) and are taken from the first. */
const TIMING_FIELDS = new Set(['date', 'start_time', 'end_time', 'total_evaluation_time_seconds']);

const SAME_EVALUATION_HINT =
  'Merge only shards of one evaluation: the same model, --tasks, --limit, --num-fewshot, data files and shard count.';

interface ShardInfo {
  index: number;
  count: number;
  docs: Record<string, number>;
}

interface Shard {
  dir: string;
  stamp: string;
  results: LmEvalResults;
  info: ShardInfo;
}

interface Row {
  fields: SampleRowFields;
  line: string;
}

const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  ) ?? 'undefined';

const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

function listIds(ids: readonly number[]): string {
  const shown = ids.slice(0, 10).join(', ');
  return ids.length > 10 ? `${shown}, … (${ids.length} in all)` : shown;
}

async function readShard(dir: string): Promise<Shard> {
  const latest = await readLatestResults(dir);
  if (latest === undefined) {
    throw new CliError(
      'INPUT_MISSING',
      `qlora eval --merge ${dir}: expected a results_<date>.json written by qlora eval --shard i/n, got none`,
      { hint: 'Pass the --out folder of each shard run, after the run has finished.' },
    );
  }
  const info = latest.results.config?.[SHARD_CONFIG_KEY] as Partial<ShardInfo> | undefined;
  if (
    info === undefined ||
    !isCount(info.index) ||
    !isCount(info.count) ||
    info.index >= info.count ||
    info.docs === null ||
    typeof info.docs !== 'object' ||
    !Object.values(info.docs).every(isCount)
  ) {
    throw new CliError(
      'INPUT_INVALID',
      `qlora eval --merge ${latest.path}: expected config.${SHARD_CONFIG_KEY} = { index, count, docs } of a shard run, got ${JSON.stringify(info) ?? 'none'}`,
      { hint: 'Only results of `qlora eval --shard i/n` can be merged.' },
    );
  }
  const stamp = /^results_(.+)\.json$/.exec(basename(latest.path))?.[1] as string;
  return { dir, stamp, results: latest.results, info: info as ShardInfo };
}

/** The parts of a results file every shard of one evaluation shares. */
function sharedParts(shard: Shard): Record<string, unknown> {
  const r = shard.results;
  const { [SHARD_CONFIG_KEY]: _, ...config } = r.config ?? {};
  const meta = Object.fromEntries(
    Object.entries(r.meta).filter(([k]) => k !== 'task_hashes' && !TIMING_FIELDS.has(k)),
  );
  return {
    tasks: Object.keys(r.results),
    group_subtasks: r.groupSubtasks,
    configs: r.configs,
    versions: r.versions,
    'n-shot': r.nShot,
    higher_is_better: r.higherIsBetter,
    'n-samples original': Object.fromEntries(
      Object.entries(r.nSamples).map(([k, v]) => [k, v.original]),
    ),
    config,
    meta,
    'shard count': shard.info.count,
    'docs per task': shard.info.docs,
  };
}

function checkSameEvaluation(shards: readonly Shard[]): void {
  const first = shards[0] as Shard;
  const expected = sharedParts(first);
  for (const shard of shards.slice(1)) {
    const got = sharedParts(shard);
    for (const [field, value] of Object.entries(expected)) {
      if (canonical(value) === canonical(got[field])) continue;
      let where = field;
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const other = got[field] as Record<string, unknown>;
        const keys = new Set([...Object.keys(value), ...Object.keys(other ?? {})]);
        const differing = [...keys].find(
          (k) => canonical((value as Record<string, unknown>)[k]) !== canonical(other?.[k]),
        );
        if (differing !== undefined) where = `${field}.${differing}`;
      }
      throw new CliError(
        'INPUT_INVALID',
        `qlora eval --merge: expected shards of one evaluation, got a different ${where} in ${shard.dir} (shard ${shard.info.index}/${shard.info.count}) than in ${first.dir} (shard ${first.info.index}/${first.info.count})`,
        { hint: SAME_EVALUATION_HINT },
      );
    }
  }
}

async function readRows(shard: Shard, task: string): Promise<Row[]> {
  const path = join(shard.dir, `samples_${task}_${shard.stamp}.jsonl`);
  const text = await readInputText(path, 'shard samples');
  const rows: Row[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    let fields: SampleRowFields;
    try {
      fields = JSON.parse(line);
    } catch (cause) {
      throw new CliError(
        'INPUT_INVALID',
        `${path}:${i + 1}: expected a JSON line, got a syntax error`,
        { cause },
      );
    }
    if (
      !isCount(fields.doc_id) ||
      typeof fields.filter !== 'string' ||
      !Array.isArray(fields.metrics)
    ) {
      throw new CliError(
        'INPUT_INVALID',
        `${path}:${i + 1}: expected an lm-eval samples row (doc_id, filter, metrics), got ${line.slice(0, 80)}`,
      );
    }
    rows.push({ fields, line });
  }
  // The task hash covers every row, so it catches edited, truncated or mixed-up samples files.
  const { taskHash } = aggregateSampleRows(rows.map((r) => r.fields));
  const written = (shard.results.meta.task_hashes as Record<string, unknown> | undefined)?.[task];
  if (written !== taskHash) {
    throw new CliError(
      'INPUT_INVALID',
      `qlora eval --merge ${path}: expected the samples the results file hashes (task_hashes.${task} ${String(written).slice(0, 12)}…), got rows hashing to ${taskHash.slice(0, 12)}…`,
      { hint: 'The samples file does not belong to this results file; rerun that shard.' },
    );
  }
  return rows;
}

/** Doc ids of one shard's rows, checked to be the same set under every filter. */
function shardDocIds(shard: Shard, task: string, rows: readonly Row[]): number[] {
  const byFilter = new Map<string, number[]>();
  for (const { fields } of rows) {
    const ids = byFilter.get(fields.filter) ?? [];
    ids.push(fields.doc_id);
    byFilter.set(fields.filter, ids);
  }
  const lists = [...byFilter.values()].map((ids) => [...ids].sort((a, b) => a - b));
  const first = lists[0] ?? [];
  const repeated = first.filter((id, i) => i > 0 && first[i - 1] === id);
  if (repeated.length > 0 || lists.some((ids) => ids.join() !== first.join())) {
    throw new CliError(
      'INPUT_INVALID',
      `qlora eval --merge ${shard.dir}, task ${task}: expected each doc once per filter, got ${repeated.length > 0 ? `doc ids ${listIds(repeated)} more than once` : 'different docs under different filters'}`,
      { hint: 'The samples file is damaged; rerun that shard.' },
    );
  }
  return first;
}

function checkCoverage(
  task: string,
  total: number,
  count: number,
  docIds: ReadonlyMap<Shard, number[]>,
): void {
  const owner = new Map<number, Shard>();
  const duplicated: { id: number; dirs: string[] }[] = [];
  const outside: number[] = [];
  for (const [shard, ids] of docIds) {
    for (const id of ids) {
      if (id >= total) outside.push(id);
      const other = owner.get(id);
      if (other !== undefined) duplicated.push({ id, dirs: [other.dir, shard.dir] });
      else owner.set(id, shard);
    }
  }
  const range = `doc ids 0..${total - 1} of task ${task}`;
  if (outside.length > 0) {
    throw new CliError(
      'INPUT_INVALID',
      `qlora eval --merge: expected ${range}, got doc ids ${listIds(outside)} beyond them`,
      { hint: SAME_EVALUATION_HINT },
    );
  }
  if (duplicated.length > 0) {
    const pair = duplicated[0]?.dirs ?? [];
    throw new CliError(
      'INPUT_INVALID',
      `qlora eval --merge: expected each of the ${range} in exactly one shard, got doc ids ${listIds(duplicated.map((d) => d.id))} in both ${pair[0]} and ${pair[1]}`,
      {
        hint: 'The same shard was given twice (or from two runs); pass each --shard i/n folder once.',
      },
    );
  }
  const missing: number[] = [];
  for (let id = 0; id < total; id++) if (!owner.has(id)) missing.push(id);
  if (missing.length > 0) {
    const shards = [...new Set(missing.map((id) => id % count))].map((i) => `${i}/${count}`);
    throw new CliError(
      'INPUT_INVALID',
      `qlora eval --merge: expected each of the ${range} in exactly one shard, got doc ids ${listIds(missing)} in none`,
      {
        hint: `Add the --out folder of shard ${shards.join(', ')} (docs with id % ${count} = i go to shard i/${count}).`,
      },
    );
  }
}

/** Rows of all shards in one process's order: filters in first-seen order, then doc id. */
function mergeRows(rowsByShard: readonly Row[][]): Row[] {
  // Every shard writes filter by filter; a shard may have no docs of a small task.
  const all = rowsByShard.flat();
  const filters: string[] = [];
  for (const { fields } of all) if (!filters.includes(fields.filter)) filters.push(fields.filter);
  const rank = (r: Row) => filters.indexOf(r.fields.filter);
  return all.sort((a, b) => rank(a) - rank(b) || a.fields.doc_id - b.fields.doc_id);
}

/**
 * Joins the output folders of `qlora eval --shard i/n` runs into the results and samples files
 * one process writes: checks the shards belong to one evaluation and cover every doc exactly
 * once, re-aggregates every metric from the per-sample rows (mean and stderr as lm-eval, groups
 * with pooled stderr), and writes `results_<date>.json` and `samples_<task>_<date>.jsonl` into
 * `outDir`.
 *
 * @example
 * const merged = await mergeEvalShards(['runs/s0', 'runs/s1', 'runs/s2'], 'runs/eval');
 * merged.results.results.gsm8k?.metrics['exact_match,flexible-extract']; // { value: 0.34, stderr: 0.013… }
 */
export async function mergeEvalShards(
  dirs: readonly string[],
  outDir: string,
): Promise<MergedEvalOutput> {
  if (dirs.length === 0) {
    throw new CliError(
      'USAGE',
      'qlora eval --merge: expected one or more shard folders, got none',
      {
        hint: 'e.g. qlora eval --merge runs/s0 runs/s1 runs/s2 --out runs/eval',
      },
    );
  }
  const shards: Shard[] = [];
  for (const dir of dirs) shards.push(await readShard(dir));
  checkSameEvaluation(shards);
  const first = shards[0] as Shard;
  const reference = first.results;
  const groupNames = new Set(Object.keys(reference.groupSubtasks));
  const taskNames = Object.keys(reference.results).filter((name) => !groupNames.has(name));
  const bootstrapIters = reference.config?.bootstrap_iters;

  const tasks: Record<string, LmEvalTaskInput> = {};
  const taskHashes: Record<string, string> = {};
  const mergedRows: Record<string, Row[]> = {};
  for (const task of taskNames) {
    const total = first.info.docs[task];
    if (total === undefined) {
      throw new CliError(
        'INPUT_INVALID',
        `qlora eval --merge ${first.dir}: expected config.${SHARD_CONFIG_KEY}.docs.${task}, got none`,
      );
    }
    const rowsByShard: Row[][] = [];
    const docIds = new Map<Shard, number[]>();
    for (const shard of shards) {
      const rows = await readRows(shard, task);
      rowsByShard.push(rows);
      docIds.set(shard, shardDocIds(shard, task, rows));
    }
    checkCoverage(task, total, first.info.count, docIds);
    const rows = mergeRows(rowsByShard);
    mergedRows[task] = rows;
    const nSamples = { original: reference.nSamples[task]?.original ?? total, effective: total };
    const { metricValues, taskHash } = aggregateSampleRows(rows.map((r) => r.fields));
    const evaluation: TaskEvaluation = {
      task,
      samples: [],
      metricValues,
      nSamples,
      taskHash,
      requestCount: { total: 0, fromCache: 0 },
    };
    taskHashes[task] = taskHash;
    const entry = reference.results[task];
    tasks[task] = {
      alias: entry?.alias ?? task,
      sampleLen: total,
      metrics: summarizeTask(
        evaluation,
        typeof bootstrapIters === 'number' ? { bootstrapIters } : {},
      ),
      ...(reference.configs[task] ? { config: reference.configs[task] } : {}),
      version: reference.versions[task] ?? null,
      ...(reference.nShot[task] === undefined ? {} : { numFewshot: reference.nShot[task] }),
      ...(reference.higherIsBetter[task]
        ? { higherIsBetter: { ...reference.higherIsBetter[task] } }
        : {}),
      nSamples,
    };
  }

  const groups: Record<string, LmEvalGroupInput> = {};
  for (const [name, subtasks] of Object.entries(reference.groupSubtasks)) {
    const aggregated = reference.groups[name];
    // qlora eval's groups (MMLU) are size-weighted means of their leaves, as lm-eval's mmlu.
    const metrics = [
      ...new Set(Object.keys(aggregated?.metrics ?? {}).map((k) => k.slice(0, k.indexOf(',')))),
    ];
    groups[name] = {
      alias: reference.results[name]?.alias ?? name,
      subtasks: [...subtasks],
      ...(metrics.length > 0
        ? { aggregate: metrics.map((metric) => ({ metric, weightBySize: true })) }
        : {}),
      version: reference.versions[name] ?? null,
    };
  }

  const results = buildLmEvalResults({ tasks, groups, taskHashes });
  const { [SHARD_CONFIG_KEY]: _, ...config } = reference.config ?? {};
  if (reference.config !== undefined) results.config = config;
  // The first shard's top-level fields (model, task_hashes slot, …) in file order, hashes replaced.
  const meta = reference.meta;
  meta.task_hashes = taskHashes;
  results.meta = meta;

  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/Z$/, '');
  const samplePaths: string[] = [];
  for (const task of taskNames) {
    const path = join(outDir, `samples_${task}_${stamp}.jsonl`);
    await writeFileAtomic(path, (mergedRows[task] ?? []).map((r) => `${r.line}\n`).join(''));
    samplePaths.push(path);
  }
  const resultsPath = join(outDir, `results_${stamp}.json`);
  await writeFileAtomic(resultsPath, toLmEvalResults(results));
  return { results, resultsPath, samplePaths };
}
