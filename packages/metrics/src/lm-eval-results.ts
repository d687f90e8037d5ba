import {
  copyNumberKind,
  formatPath,
  formatPythonFloat,
  type JsonPath,
  markNumberKind,
  parsePythonJson,
  stringifyPythonJson,
} from './_python-json';
import { describe } from './_validate';
import { MetricsError } from './errors';
import { sha256Hex } from './sha256';
import { aggregateSubtasks } from './stats';

/**
 * A stderr as lm-eval writes it: a number, or "N/A" (no bootstrap, n ≤ 1, or a group with an "N/A" leaf).
 *
 * @example
 * parseLmEvalResults(text).results.hellaswag?.metrics['acc,none']?.stderr; // 0.0049… or "N/A"
 */
export type LmEvalStderr = number | 'N/A';

/**
 * One `metric,filter` value of a task or group, e.g. `acc,none` with `acc_stderr,none`.
 *
 * @example
 * const em: LmEvalMetricValue = { value: 0.3351, stderr: 0.013 };
 */
export interface LmEvalMetricValue {
  value: number;
  /** Absent when the file has no `<metric>_stderr,<filter>` key. */
  stderr?: LmEvalStderr;
}

/**
 * One entry of `results` (or `groups`).
 *
 * @example
 * const gsm8k: LmEvalTaskResult | undefined = parseLmEvalResults(text).results.gsm8k;
 */
export interface LmEvalTaskResult {
  /** The `name` field (v0.4.12+), else the key in `results`. */
  name: string;
  alias?: string;
  /** `sample_len`: evaluated docs (v0.4.12+). */
  sampleLen?: number;
  /** Keyed `metric,filter` (e.g. `exact_match,flexible-extract`), in file order. */
  metrics: Record<string, LmEvalMetricValue>;
  /** `sample_count` of groups (v0.4.12+). */
  sampleCount?: Record<string, number>;
  /** Whether the entry is written like a group (`alias` before `name`). */
  isGroup: boolean;
  /** True when the file had no `name` field (lm-eval ≤ 0.4.11), so none is written back. */
  omitName?: boolean;
  /** Fields we do not interpret, kept in order. */
  extra: Record<string, unknown>;
}

/**
 * `n-samples` of a task.
 *
 * @example
 * parseLmEvalResults(text).nSamples.gsm8k; // { original: 1319, effective: 1319 }
 */
export interface LmEvalSampleCount {
  original: number;
  effective: number;
}

/**
 * A results file of lm-evaluation-harness 0.4.x, normalised. Fractions, as lm-eval stores them.
 *
 * @example
 * const results: LmEvalResults = parseLmEvalResults(text); Object.keys(results.groups); // ['mmlu', …]
 */
export interface LmEvalResults {
  results: Record<string, LmEvalTaskResult>;
  /** The `groups` section: groups that aggregate a metric. */
  groups: Record<string, LmEvalTaskResult>;
  groupSubtasks: Record<string, string[]>;
  configs: Record<string, Record<string, unknown>>;
  versions: Record<string, number | string | null>;
  nShot: Record<string, number>;
  higherIsBetter: Record<string, Record<string, boolean | null>>;
  nSamples: Record<string, LmEvalSampleCount>;
  /** The run's `config` (model, model_args, batch_size, bootstrap_iters, …), as written. */
  config?: Record<string, unknown>;
  /** Every other top-level field (git_hash, date, …, total_evaluation_time_seconds), in file order. */
  meta: Record<string, unknown>;
}

const SECTION_KEYS = new Set([
  'results',
  'groups',
  'group_subtasks',
  'configs',
  'versions',
  'n-shot',
  'higher_is_better',
  'n-samples',
  'config',
]);

function schemaError(path: JsonPath, expected: string, got: unknown, hint = ''): MetricsError {
  return new MetricsError(
    'LM_EVAL_SCHEMA',
    `lm-eval results at ${formatPath(path)}: expected ${expected}, got ${describe(got)}${hint ? `. ${hint}` : ''}`,
  );
}

/**
 * Sets an own data property, so a task or metric named `__proto__` in the file is kept as an
 * ordinary key instead of replacing the object's prototype.
 */
function put<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function recordAt(v: unknown, path: JsonPath): Record<string, unknown> {
  if (!isRecord(v)) throw schemaError(path, 'an object', v);
  return v;
}

function numberAt(v: unknown, path: JsonPath, integer = false): number {
  if (typeof v !== 'number' || (integer && !Number.isInteger(v))) {
    throw schemaError(path, integer ? 'an integer' : 'a number', v);
  }
  return v;
}

function parseEntry(key: string, raw: unknown, path: JsonPath): LmEvalTaskResult {
  const entry = recordAt(raw, path);
  const keys = Object.keys(entry);
  const metrics: Record<string, LmEvalMetricValue> = {};
  const extra: Record<string, unknown> = {};
  const result: LmEvalTaskResult = {
    name: key,
    metrics,
    isGroup:
      keys.indexOf('alias') >= 0 &&
      (keys.indexOf('name') < 0 || keys.indexOf('alias') < keys.indexOf('name')),
    extra,
  };
  if (!('name' in entry)) result.omitName = true;
  const stderrKeys = new Map<string, string>();
  for (const k of keys) {
    const comma = k.indexOf(',');
    if (comma < 0) continue;
    const metric = k.slice(0, comma);
    if (metric.endsWith('_stderr') && `${metric.slice(0, -7)},${k.slice(comma + 1)}` in entry) {
      stderrKeys.set(`${metric.slice(0, -7)},${k.slice(comma + 1)}`, k);
    }
  }
  const stderrKeySet = new Set(stderrKeys.values());
  for (const k of keys) {
    const v = entry[k];
    const p = [...path, k];
    if (k === 'name') {
      if (typeof v !== 'string') throw schemaError(p, 'a string', v);
      result.name = v;
    } else if (k === 'alias') {
      if (typeof v !== 'string') throw schemaError(p, 'a string', v);
      result.alias = v;
    } else if (k === 'sample_len') {
      result.sampleLen = numberAt(v, p, true);
    } else if (k === 'sample_count') {
      const counts = recordAt(v, p);
      result.sampleCount = {};
      for (const [ck, cv] of Object.entries(counts))
        put(result.sampleCount, ck, numberAt(cv, [...p, ck], true));
    } else if (stderrKeySet.has(k)) {
      // read with its metric below
    } else if (k.includes(',')) {
      const value = numberAt(v, p);
      const metric: LmEvalMetricValue = { value };
      const stderrKey = stderrKeys.get(k);
      if (stderrKey !== undefined) {
        const se = entry[stderrKey];
        if (se !== 'N/A' && typeof se !== 'number') {
          throw schemaError([...path, stderrKey], 'a number or "N/A"', se);
        }
        metric.stderr = se;
      }
      put(metrics, k, metric);
    } else {
      put(extra, k, v);
      copyNumberKind(entry, k, extra, k);
    }
  }
  return result;
}

function parseStringList(v: unknown, path: JsonPath): string[] {
  if (!Array.isArray(v)) throw schemaError(path, 'an array of task names', v);
  return v.map((item, i) => {
    if (typeof item !== 'string') throw schemaError([...path, i], 'a string', item);
    return item;
  });
}

/**
 * Reads a results file written by lm-evaluation-harness 0.4.x (`results_<date>.json`): `results`
 * with `metric,filter` keys (`acc,none`, `acc_stderr,none`, `exact_match,strict-match`), "N/A"
 * stderrs, `groups`, `group_subtasks`, `configs`, `versions`, `n-shot`, `higher_is_better`,
 * `n-samples`, `config`. Unknown fields are kept. Pass the file text to keep Python's int/float
 * literals for a byte-exact {@link toLmEvalResults}. Errors name the JSON path.
 *
 * @example
 * const results = parseLmEvalResults(text);
 * results.results.gsm8k?.metrics['exact_match,flexible-extract']; // { value: 0.3351…, stderr: 0.0130… }
 */
export function parseLmEvalResults(json: string | object): LmEvalResults {
  const root = recordAt(typeof json === 'string' ? parsePythonJson(json) : json, []);
  if (!('results' in root)) {
    throw schemaError(
      ['results'],
      'a "results" object',
      undefined,
      'Is this an lm-eval results_<date>.json file (not a samples .jsonl)?',
    );
  }
  const out: LmEvalResults = {
    results: {},
    groups: {},
    groupSubtasks: {},
    configs: {},
    versions: {},
    nShot: {},
    higherIsBetter: {},
    nSamples: {},
    meta: {},
  };
  for (const [k, v] of Object.entries(recordAt(root.results, ['results']))) {
    put(out.results, k, parseEntry(k, v, ['results', k]));
  }
  if (root.groups !== undefined) {
    for (const [k, v] of Object.entries(recordAt(root.groups, ['groups']))) {
      const entry = parseEntry(k, v, ['groups', k]);
      put(out.groups, k, entry);
      const inResults = Object.hasOwn(out.results, k) ? out.results[k] : undefined;
      if (inResults !== undefined) inResults.isGroup = inResults.isGroup || entry.isGroup;
    }
  }
  if (root.group_subtasks !== undefined) {
    for (const [k, v] of Object.entries(recordAt(root.group_subtasks, ['group_subtasks']))) {
      put(out.groupSubtasks, k, parseStringList(v, ['group_subtasks', k]));
    }
  }
  if (root.configs !== undefined) {
    for (const [k, v] of Object.entries(recordAt(root.configs, ['configs']))) {
      put(out.configs, k, recordAt(v, ['configs', k]));
    }
  }
  if (root.versions !== undefined) {
    const versions = recordAt(root.versions, ['versions']);
    for (const [k, v] of Object.entries(versions)) {
      if (v !== null && typeof v !== 'number' && typeof v !== 'string') {
        throw schemaError(['versions', k], 'a number, string or null', v);
      }
      put(out.versions, k, v);
      copyNumberKind(versions, k, out.versions, k);
    }
  }
  if (root['n-shot'] !== undefined) {
    for (const [k, v] of Object.entries(recordAt(root['n-shot'], ['n-shot']))) {
      put(out.nShot, k, numberAt(v, ['n-shot', k], true));
    }
  }
  if (root.higher_is_better !== undefined) {
    for (const [k, v] of Object.entries(recordAt(root.higher_is_better, ['higher_is_better']))) {
      const flags: Record<string, boolean | null> = {};
      for (const [m, flag] of Object.entries(recordAt(v, ['higher_is_better', k]))) {
        if (flag !== null && typeof flag !== 'boolean') {
          throw schemaError(['higher_is_better', k, m], 'true, false or null', flag);
        }
        put(flags, m, flag);
      }
      put(out.higherIsBetter, k, flags);
    }
  }
  if (root['n-samples'] !== undefined) {
    for (const [k, v] of Object.entries(recordAt(root['n-samples'], ['n-samples']))) {
      const counts = recordAt(v, ['n-samples', k]);
      put(out.nSamples, k, {
        original: numberAt(counts.original, ['n-samples', k, 'original'], true),
        effective: numberAt(counts.effective, ['n-samples', k, 'effective'], true),
      });
    }
  }
  if (root.config !== undefined) out.config = recordAt(root.config, ['config']);
  for (const [k, v] of Object.entries(root)) {
    if (SECTION_KEYS.has(k)) continue;
    put(out.meta, k, v);
    copyNumberKind(root, k, out.meta, k);
  }
  return out;
}

/**
 * Per-task input of {@link buildLmEvalResults}, what a task runner has after scoring.
 *
 * @example
 * const gsm8k: LmEvalTaskInput = { metrics: { 'exact_match,flexible-extract': { value: 0.3351, stderr: 0.013 } }, version: 3, numFewshot: 5, nSamples: { original: 1319, effective: 1319 } };
 */
export interface LmEvalTaskInput {
  /** Display alias (default: the task name). */
  alias?: string;
  /** Evaluated docs; default `nSamples.effective`. */
  sampleLen?: number;
  /** Keyed `metric,filter`, e.g. `{ 'acc,none': { value: 0.45, stderr: 0.005 } }`; NaN/null stderr → "N/A". */
  metrics: Record<string, { value: number; stderr?: number | 'N/A' | null }>;
  /** The task config as lm-eval's `dump_config` would write it. */
  config?: Record<string, unknown>;
  /** Task version (written as a float when a number, e.g. `1.0`). */
  version?: number | string | null;
  numFewshot?: number;
  /** e.g. `{ acc: true, acc_norm: true }`; default: every metric → true. */
  higherIsBetter?: Record<string, boolean | null>;
  nSamples?: LmEvalSampleCount;
}

/**
 * A group of tasks (or groups), aggregated like lm-eval's `aggregate_metric_list`.
 *
 * @example
 * const mmlu: LmEvalGroupInput = { subtasks: ['mmlu_stem', 'mmlu_other'], aggregate: [{ metric: 'acc', weightBySize: true }], version: '2' };
 */
export interface LmEvalGroupInput {
  alias?: string;
  /** Child task or group names. Leaves are found recursively. */
  subtasks: string[];
  /** Metrics to aggregate; absent → the group has no aggregate (like lm-eval tags). */
  aggregate?: { metric: string; filter?: string; weightBySize?: boolean }[];
  version?: number | string | null;
}

/**
 * Input of {@link toLmEvalResults} and {@link buildLmEvalResults} when writing a fresh file.
 *
 * @example
 * toLmEvalResults({ tasks: { gsm8k }, model: { name: 'meta-llama/Llama-3.2-1B', source: 'hf' }, timing: { date: Date.now() / 1000, totalEvaluationTimeSeconds: 3030.04 } } satisfies LmEvalResultsInput);
 */
export interface LmEvalResultsInput {
  /** Tasks in evaluation order. */
  tasks: Record<string, LmEvalTaskInput>;
  /** Groups in definition order; their metrics are computed from leaf tasks (pooled stderr). */
  groups?: Record<string, LmEvalGroupInput>;
  model?: {
    /** e.g. "meta-llama/Llama-3.2-1B" or a local path. */
    name: string;
    /** lm-eval's `config.model` / `model_source`, e.g. "hf" (default "qlora.ts"). */
    source?: string;
    /** `config.model_args` (default `{ pretrained: name }`). */
    args?: Record<string, unknown> | string;
  };
  /** Further `config` fields after model and model_args (batch_size, bootstrap_iters, …). */
  config?: Record<string, unknown>;
  timing?: {
    /** Unix seconds when the run started (`date`). */
    date?: number;
    /** Written as a string, as lm-eval's tracker does. */
    totalEvaluationTimeSeconds?: number | string;
  };
  /** `task_hashes` (task → sha256 of its samples' hashes). */
  taskHashes?: Record<string, string>;
  /** Other top-level fields (e.g. lm_eval_version), written after `date`. */
  meta?: Record<string, unknown>;
}

function normaliseStderr(se: number | 'N/A' | null | undefined): LmEvalStderr | undefined {
  if (se === undefined) return undefined;
  if (se === null || se === 'N/A' || Number.isNaN(se)) return 'N/A';
  return se;
}

const sortedRecord = <T>(r: Record<string, T>): Record<string, T> =>
  Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * The normalised {@link LmEvalResults} of a fresh run: task entries as given, group entries
 * aggregated from their leaf tasks (size-weighted mean, pooled stderr, "N/A" if any leaf is "N/A"),
 * n-shot and higher_is_better propagated to groups, as lm-eval's evaluator does.
 *
 * @example
 * const results = buildLmEvalResults({
 *   tasks: { mmlu_a: { metrics: { 'acc,none': { value: 0.47, stderr: 0.0502 } }, nSamples: { original: 100, effective: 100 } } },
 *   groups: { mmlu: { subtasks: ['mmlu_a'], aggregate: [{ metric: 'acc' }] } },
 * });
 * results.results.mmlu?.metrics['acc,none']; // { value: 0.47, stderr: 0.0502 }
 */
export function buildLmEvalResults(input: LmEvalResultsInput): LmEvalResults {
  if (!isRecord(input) || !isRecord(input.tasks)) {
    throw new MetricsError(
      'BAD_INPUT',
      `buildLmEvalResults(input).tasks: expected an object of tasks, got ${describe((input as { tasks?: unknown })?.tasks)}`,
    );
  }
  const out: LmEvalResults = {
    results: {},
    groups: {},
    groupSubtasks: {},
    configs: {},
    versions: {},
    nShot: {},
    higherIsBetter: {},
    nSamples: {},
    meta: {},
  };
  for (const [name, task] of Object.entries(input.tasks)) {
    const metrics: Record<string, LmEvalMetricValue> = {};
    for (const [key, m] of Object.entries(task.metrics)) {
      if (!key.includes(',')) {
        throw new MetricsError(
          'BAD_INPUT',
          `tasks.${name}.metrics: expected keys "metric,filter" (e.g. "acc,none"), got ${JSON.stringify(key)}`,
        );
      }
      if (typeof m?.value !== 'number') {
        throw new MetricsError(
          'BAD_INPUT',
          `tasks.${name}.metrics["${key}"].value: expected a number, got ${describe(m?.value)}`,
        );
      }
      const stderr = normaliseStderr(m.stderr);
      metrics[key] = stderr === undefined ? { value: m.value } : { value: m.value, stderr };
    }
    const sampleLen = task.sampleLen ?? task.nSamples?.effective;
    out.results[name] = {
      name,
      alias: task.alias ?? name,
      ...(sampleLen === undefined ? {} : { sampleLen }),
      metrics,
      isGroup: false,
      extra: {},
    };
    out.configs[name] = task.config ?? { task: name };
    out.versions[name] = task.version ?? null;
    if (typeof task.version === 'number') markNumberKind(out.versions, name, 'float');
    out.nShot[name] = task.numFewshot ?? 0;
    out.higherIsBetter[name] =
      task.higherIsBetter ??
      Object.fromEntries(Object.keys(metrics).map((k) => [k.slice(0, k.indexOf(',')), true]));
    if (task.nSamples !== undefined) out.nSamples[name] = task.nSamples;
  }

  const groups = input.groups ?? {};
  const leavesOf = (name: string, seen: Set<string>): string[] => {
    const group = groups[name];
    if (group === undefined) return [name];
    if (seen.has(name))
      throw new MetricsError(
        'BAD_INPUT',
        `groups.${name}: expected no cycles, got ${name} inside itself`,
      );
    seen.add(name);
    return group.subtasks.flatMap((child) => leavesOf(child, new Set(seen)));
  };
  // Children before parents, roots in definition order (lm-eval's post-order traversal).
  const children = new Set(Object.values(groups).flatMap((g) => g.subtasks));
  const order: string[] = [];
  const visit = (name: string): void => {
    const group = groups[name];
    if (group === undefined || order.includes(name)) return;
    for (const child of group.subtasks) visit(child);
    order.push(name);
  };
  for (const name of Object.keys(groups)) if (!children.has(name)) visit(name);
  for (const name of Object.keys(groups)) visit(name);

  for (const name of order) {
    const group = groups[name] as LmEvalGroupInput;
    const leaves = leavesOf(name, new Set());
    for (const leaf of leaves) {
      if (out.results[leaf] === undefined) {
        throw new MetricsError(
          'BAD_INPUT',
          `groups.${name}.subtasks: expected task names present in tasks, got ${JSON.stringify(leaf)}`,
        );
      }
    }
    const entry: LmEvalTaskResult = {
      name,
      alias: group.alias ?? name,
      metrics: {},
      isGroup: true,
      extra: {},
    };
    if (group.aggregate !== undefined && group.aggregate.length > 0) {
      entry.sampleLen = leaves.reduce((s, leaf) => s + (out.results[leaf]?.sampleLen ?? 0), 0);
      const sampleCount: Record<string, number> = {};
      for (const agg of group.aggregate) {
        const filters =
          agg.filter !== undefined
            ? [agg.filter]
            : [
                ...new Set(
                  leaves.flatMap((leaf) =>
                    Object.keys(out.results[leaf]?.metrics ?? {})
                      .filter((k) => k.startsWith(`${agg.metric},`))
                      .map((k) => k.slice(agg.metric.length + 1)),
                  ),
                ),
              ];
        for (const filter of filters) {
          const key = `${agg.metric},${filter}`;
          const parts = leaves.flatMap((leaf) => {
            const task = out.results[leaf] as LmEvalTaskResult;
            const m = task.metrics[key];
            return m === undefined ? [] : [{ m, n: task.sampleLen ?? 0 }];
          });
          if (parts.length === 0) continue;
          const anyNa = parts.some(({ m }) => m.stderr === undefined || m.stderr === 'N/A');
          const agg2 = aggregateSubtasks(
            parts.map(({ m, n }) => ({
              value: m.value,
              stderr: anyNa ? 0 : (m.stderr as number),
              n: Math.max(n, 1),
            })),
            { weightBySize: agg.weightBySize ?? true },
          );
          entry.metrics[key] = { value: agg2.value, stderr: anyNa ? 'N/A' : agg2.stderr };
          sampleCount[key] = parts.reduce((s, { n }) => s + n, 0);
        }
      }
      if (Object.keys(sampleCount).length > 0) entry.sampleCount = sampleCount;
      out.groups[name] = entry;
    }
    out.results[name] = entry;
    out.versions[name] = group.version ?? null;
    if (typeof group.version === 'number') markNumberKind(out.versions, name, 'float');
    const shots = new Set(group.subtasks.map((c) => out.nShot[c]).filter((s) => s !== undefined));
    if (shots.size === 1) out.nShot[name] = [...shots][0] as number;
    const hib: Record<string, boolean | null> = {};
    for (const child of group.subtasks) {
      for (const [m, h] of Object.entries(out.higherIsBetter[child] ?? {})) {
        if (!(m in hib)) hib[m] = h;
        else if (hib[m] !== null && hib[m] !== h) hib[m] = null;
      }
    }
    if (Object.keys(hib).length > 0) out.higherIsBetter[name] = hib;
  }
  for (const [name, group] of Object.entries(groups)) out.groupSubtasks[name] = [...group.subtasks];
  out.configs = sortedRecord(out.configs);
  const versions = out.versions;
  out.versions = sortedRecord(versions);
  for (const k of Object.keys(versions)) copyNumberKind(versions, k, out.versions, k);
  out.nShot = sortedRecord(out.nShot);
  out.higherIsBetter = sortedRecord(out.higherIsBetter);

  if (input.model !== undefined) {
    out.config = {
      model: input.model.source ?? 'qlora.ts',
      model_args: input.model.args ?? { pretrained: input.model.name },
      ...input.config,
    };
  } else if (input.config !== undefined) {
    out.config = { ...input.config };
  }
  out.meta.git_hash = null;
  if (input.timing?.date !== undefined) {
    out.meta.date = input.timing.date;
    markNumberKind(out.meta, 'date', 'float');
  }
  Object.assign(out.meta, input.meta ?? {});
  out.meta.task_hashes = input.taskHashes ?? {};
  if (input.model !== undefined) {
    Object.assign(out.meta, {
      model_source: input.model.source ?? 'qlora.ts',
      model_name: input.model.name,
      model_name_sanitized: input.model.name.replace(/["<>:/|\\?*[\]]+/g, '__'),
      system_instruction: null,
      system_instruction_sha: null,
      fewshot_as_multiturn: null,
      chat_template: null,
      chat_template_sha: null,
    });
  }
  if (input.timing?.totalEvaluationTimeSeconds !== undefined) {
    const t = input.timing.totalEvaluationTimeSeconds;
    out.meta.total_evaluation_time_seconds = typeof t === 'number' ? formatPythonFloat(t) : t;
  }
  return out;
}

function entryToJson(entry: LmEvalTaskResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const head: [string, unknown][] = [
    ['name', entry.omitName === true ? undefined : entry.name],
    ['alias', entry.alias],
  ];
  if (entry.isGroup) head.reverse();
  for (const [k, v] of head) if (v !== undefined) out[k] = v;
  if (entry.sampleLen !== undefined) out.sample_len = entry.sampleLen;
  for (const [key, m] of Object.entries(entry.metrics)) {
    const comma = key.indexOf(',');
    out[key] = m.value;
    markNumberKind(out, key, 'float');
    if (m.stderr !== undefined) {
      const seKey = `${key.slice(0, comma)}_stderr${key.slice(comma)}`;
      out[seKey] = m.stderr;
      if (typeof m.stderr === 'number') markNumberKind(out, seKey, 'float');
    }
  }
  for (const [k, v] of Object.entries(entry.extra)) {
    out[k] = v;
    copyNumberKind(entry.extra, k, out, k);
  }
  if (entry.sampleCount !== undefined) out.sample_count = entry.sampleCount;
  return out;
}

/**
 * Writes an lm-evaluation-harness 0.4.x results file: the same keys in the same order as lm-eval
 * (`results`, `groups`, `group_subtasks`, `configs`, `versions`, `n-shot`, `higher_is_better`,
 * `n-samples`, `config`, then the rest), `indent=2`, Python float formatting (`1.0`, `1e-05`),
 * non-ASCII kept. A file read with {@link parseLmEvalResults} from its text is written back byte
 * for byte. Accepts a parsed/normalised {@link LmEvalResults} or a fresh {@link LmEvalResultsInput}.
 *
 * @example
 * const text = toLmEvalResults({
 *   tasks: { hellaswag: { metrics: { 'acc,none': { value: 0.4523, stderr: 0.00497 } }, nSamples: { original: 10042, effective: 10042 } } },
 *   model: { name: 'meta-llama/Llama-3.2-1B' },
 *   timing: { date: 1777023202.36, totalEvaluationTimeSeconds: 3030.04 },
 * });
 * // '{\n  "results": {\n    "hellaswag": {\n      "name": "hellaswag", …'
 */
export function toLmEvalResults(results: LmEvalResults | LmEvalResultsInput): string {
  const r: LmEvalResults = 'tasks' in results ? buildLmEvalResults(results) : results;
  if (!isRecord(r.results)) {
    throw new MetricsError(
      'BAD_INPUT',
      `toLmEvalResults(results).results: expected an object, got ${describe(r.results)}`,
    );
  }
  const doc: Record<string, unknown> = {};
  doc.results = Object.fromEntries(Object.entries(r.results).map(([k, e]) => [k, entryToJson(e)]));
  if (Object.keys(r.groups).length > 0) {
    doc.groups = Object.fromEntries(Object.entries(r.groups).map(([k, e]) => [k, entryToJson(e)]));
  }
  doc.group_subtasks = r.groupSubtasks;
  doc.configs = r.configs;
  doc.versions = r.versions;
  doc['n-shot'] = r.nShot;
  doc.higher_is_better = r.higherIsBetter;
  doc['n-samples'] = r.nSamples;
  if (r.config !== undefined) doc.config = r.config;
  for (const [k, v] of Object.entries(r.meta)) {
    doc[k] = v;
    copyNumberKind(r.meta, k, doc, k);
  }
  return stringifyPythonJson(doc, {
    indent: 2,
    // Versions are floats in lm-eval (metadata version 1.0) unless the source text said otherwise.
    isFloat: (path) => path.length === 2 && path[0] === 'versions',
  });
}

/**
 * One row of `samples_<task>_<date>.jsonl`, before lm-eval's stringification.
 *
 * @example
 * toLmEvalSampleLine({ docId: 0, doc, target: 3, arguments: [[ctx, ' ending']], resps: [[[-1.5, false]]], filteredResps: [[-1.5, false]], filter: 'none', metrics: { acc: 1 } } satisfies LmEvalSampleInput);
 */
export interface LmEvalSampleInput {
  docId: number;
  /** The processed doc. */
  doc: Record<string, unknown>;
  /** `doc_to_target(doc)`: written as Python's `str()` (3 → "3"). */
  target: string | number | boolean | null;
  /** One entry per request: `[context, continuation]` or `[context, generationKwargs]`. */
  arguments: readonly (readonly unknown[])[];
  /** Raw responses per request (e.g. `[[[-1.23, false]], …]` or `[["text"]]`), stringified like lm-eval. */
  resps: readonly unknown[];
  /** Filtered responses per request (e.g. `[[-1.23, false], …]` or `["72"]`). */
  filteredResps: readonly unknown[];
  /** `none`, `strict-match`, `flexible-extract`, … */
  filter: string;
  /** Per-sample metric values in order, e.g. `{ acc: 1, acc_norm: 0 }` (written as floats). */
  metrics: Record<string, number>;
  /** Override the computed hashes (sha256 hex). */
  docHash?: string;
  promptHash?: string;
  targetHash?: string;
}

/** Python's `str()` of a leaf in `resps` (log-likelihoods are floats, flags are bools). */
function pythonStr(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return formatPythonFloat(v);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (v === null || v === undefined) return 'None';
  return String(v);
}

function sanitizeList(v: unknown): unknown {
  return Array.isArray(v) ? v.map(sanitizeList) : pythonStr(v);
}

const FLOAT_GENERATION_KWARGS = new Set(['temperature', 'top_p', 'repetition_penalty']);

/**
 * One line of lm-eval's `samples_<task>_<date>.jsonl` (no trailing newline): keys `doc_id`, `doc`,
 * `target`, `arguments` (`gen_args_i`/`arg_j`), `resps`, `filtered_resps` (stringified),
 * `filter`, `metrics`, `doc_hash`, `prompt_hash`, `target_hash`, then the metric values; written
 * like `json.dumps(…, ensure_ascii=False)`. Hashes are sha256 as lm-eval computes them.
 *
 * @example
 * toLmEvalSampleLine({ docId: 0, doc: { question: 'q', answer: '#### 18' }, target: '#### 18',
 *   arguments: [['Question: q\nAnswer:', { until: ['Question:'], do_sample: false, temperature: 0 }]],
 *   resps: [['The answer is 18.']], filteredResps: ['18'], filter: 'flexible-extract', metrics: { exact_match: 1 } });
 * // '{"doc_id": 0, "doc": {"question": "q", …}, …, "exact_match": 1.0}'
 */
export function toLmEvalSampleLine(sample: LmEvalSampleInput): string {
  if (!Array.isArray(sample.arguments) || sample.arguments.length === 0) {
    throw new MetricsError(
      'BAD_INPUT',
      `toLmEvalSampleLine(sample).arguments: expected at least 1 request, got ${describe(sample.arguments)}`,
    );
  }
  const target =
    typeof sample.target === 'number' && !Number.isInteger(sample.target)
      ? formatPythonFloat(sample.target)
      : sample.target === null
        ? 'None'
        : typeof sample.target === 'boolean'
          ? sample.target
            ? 'True'
            : 'False'
          : String(sample.target);
  const args: Record<string, Record<string, unknown>> = {};
  sample.arguments.forEach((request, i) => {
    const entry: Record<string, unknown> = {};
    request.forEach((arg: unknown, j: number) => {
      entry[`arg_${j}`] = arg;
    });
    args[`gen_args_${i}`] = entry;
  });
  const context = sample.arguments[0]?.[0];
  const line: Record<string, unknown> = {
    doc_id: sample.docId,
    doc: sample.doc,
    target,
    arguments: args,
    resps: sanitizeList(sample.resps),
    filtered_resps: sanitizeList(sample.filteredResps),
    filter: sample.filter,
    metrics: Object.keys(sample.metrics),
    doc_hash: sample.docHash ?? sha256Hex(stringifyPythonJson(sample.doc, { indent: 2 })),
    prompt_hash:
      sample.promptHash ?? sha256Hex(typeof context === 'string' ? context : pythonStr(context)),
    target_hash: sample.targetHash ?? sha256Hex(target),
  };
  for (const [k, v] of Object.entries(sample.metrics)) {
    line[k] = v;
    markNumberKind(line, k, 'float');
  }
  return stringifyPythonJson(line, {
    isFloat: (path) =>
      path[0] === 'arguments' && FLOAT_GENERATION_KWARGS.has(String(path[path.length - 1])),
  });
}
