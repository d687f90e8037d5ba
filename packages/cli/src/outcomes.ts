import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readInputText } from './_fs';
import { CliError } from './errors';

/**
 * Per-sample 0/1 outcomes of base and fine-tuned model, keyed by Table 2 row id
 * (`gsm8k/exact_match,flexible-extract`, `hellaswag/acc_norm,none`, `mmlu/acc,none`, …).
 *
 * @example
 * const outcomes: PairedOutcomes = { 'hellaswag/acc,none': { base: [1, 0], ft: [1, 1] } };
 */
export type PairedOutcomes = Record<string, { base: number[]; ft: number[] }>;

/**
 * Which task names feed which row ids (defaults as lm-eval names them).
 *
 * @example
 * const tasks: OutcomeTasks = { mmluSubtasks: ['mmlu_college_computer_science'] };
 */
export interface OutcomeTasks {
  gsm8k?: string;
  hellaswag?: string;
  /** MMLU subtasks whose outcomes are concatenated (in this order) into `mmlu/acc,none`. */
  mmluSubtasks?: readonly string[];
}

function decode(value: unknown, where: string): number[] {
  if (typeof value === 'string' && /^[01]*$/.test(value))
    return Array.from(value, (c) => Number(c));
  if (Array.isArray(value) && value.every((v) => typeof v === 'number' || typeof v === 'boolean')) {
    return value.map((v) => Number(v));
  }
  throw new CliError(
    'INPUT_INVALID',
    `outcomes ${where}: expected a "0101…" string or an array of 0/1, got ${typeof value}`,
    { hint: 'Write outcomes as { "base": { "<row id>": "0101…" }, "ft": { … } }.' },
  );
}

/** Maps `task/metric,filter` keys onto row ids (`mmlu_<subject>/acc,none` → `mmlu/acc,none`). */
function toRowIds(side: Record<string, number[]>, tasks: OutcomeTasks): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const gsm8k = tasks.gsm8k ?? 'gsm8k';
  const hellaswag = tasks.hellaswag ?? 'hellaswag';
  for (const [key, values] of Object.entries(side)) {
    const [task, metric] = splitKey(key);
    if (task === gsm8k) out[`gsm8k/${metric}`] = values;
    else if (task === hellaswag) out[`hellaswag/${metric}`] = values;
    else out[key] = values;
  }
  if (out['mmlu/acc,none'] === undefined && tasks.mmluSubtasks && tasks.mmluSubtasks.length > 0) {
    const parts = tasks.mmluSubtasks.map((t) => side[`${t}/acc,none`]);
    if (parts.every((p) => p !== undefined)) out['mmlu/acc,none'] = parts.flat() as number[];
  }
  return out;
}

function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return slash < 0 ? [key, ''] : [key.slice(0, slash), key.slice(slash + 1)];
}

/**
 * Pairs base and fine-tuned outcomes that exist on both sides with the same length; rows present
 * on one side only, or of different lengths, are left out with a warning.
 *
 * @example
 * pairOutcomes({ 'hellaswag/acc,none': [1, 0] }, { 'hellaswag/acc,none': [1, 1] }, {}).outcomes;
 * // { 'hellaswag/acc,none': { base: [1, 0], ft: [1, 1] } }
 */
export function pairOutcomes(
  base: Record<string, number[]>,
  ft: Record<string, number[]>,
  tasks: OutcomeTasks,
): { outcomes: PairedOutcomes; warnings: string[] } {
  const b = toRowIds(base, tasks);
  const f = toRowIds(ft, tasks);
  const outcomes: PairedOutcomes = {};
  const warnings: string[] = [];
  for (const [id, values] of Object.entries(b)) {
    const other = f[id];
    if (other === undefined) continue;
    if (other.length !== values.length) {
      warnings.push(
        `${id}: ${values.length} base outcomes vs ${other.length} fine-tuned; no paired test`,
      );
      continue;
    }
    outcomes[id] = { base: values, ft: other };
  }
  return { outcomes, warnings };
}

/**
 * Reads an outcomes JSON file `{ "base": { "<task>/<metric,filter>": "0101…" | [0, 1, …] }, "ft": … }`
 * (the format of test-fixtures/metrics/outcomes.json) into per-side records.
 *
 * @example
 * const { base, ft } = parseOutcomesFile(text, 'outcomes.json');
 */
export function parseOutcomesFile(
  text: string,
  file: string,
): { base: Record<string, number[]>; ft: Record<string, number[]> } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new CliError('INPUT_INVALID', `${file}: expected JSON, got a syntax error`, { cause });
  }
  const record = json as { base?: unknown; ft?: unknown };
  const side = (name: 'base' | 'ft'): Record<string, number[]> => {
    const value = record?.[name];
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new CliError(
        'INPUT_INVALID',
        `${file}: expected an object at "${name}", got ${value === undefined ? 'nothing' : typeof value}`,
        { hint: 'Write outcomes as { "base": { "<row id>": "0101…" }, "ft": { … } }.' },
      );
    }
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, decode(v, `${file} ${name}.${k}`)]),
    );
  };
  return { base: side('base'), ft: side('ft') };
}

/**
 * Reads lm-eval `--log_samples` files in `dir` (`samples_<task>_<date>.jsonl`, the latest per
 * task) into outcomes keyed `<task>/<metric>,<filter>`, ordered by `doc_id`. Non-0/1 metrics
 * (e.g. perplexities) are skipped.
 *
 * @example
 * const base = await readLmEvalSamplesDir('runs/base/samples');
 * base['gsm8k/exact_match,flexible-extract']?.length; // 1319
 */
export async function readLmEvalSamplesDir(dir: string): Promise<Record<string, number[]>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (cause) {
    throw new CliError(
      'INPUT_MISSING',
      `samples folder ${dir}: expected a folder, got ${(cause as NodeJS.ErrnoException).code ?? 'an error'}`,
      {
        hint: 'Point at the folder lm-eval wrote with --log_samples.',
        cause,
      },
    );
  }
  const latest = new Map<string, string>();
  for (const name of names.sort()) {
    const match = /^samples_(.+)_(\d{4}-\d{2}-\d{2}T[\d.:-]+)\.jsonl$/.exec(name);
    if (match) latest.set(match[1] as string, name);
  }
  const out: Record<string, number[]> = {};
  for (const [task, name] of latest) {
    const text = await readInputText(join(dir, name), 'lm-eval samples');
    const rows = new Map<string, Array<[number, number]>>();
    for (const [i, line] of text.split('\n').entries()) {
      if (line.trim() === '') continue;
      let sample: Record<string, unknown>;
      try {
        sample = JSON.parse(line);
      } catch (cause) {
        throw new CliError(
          'INPUT_INVALID',
          `${name}:${i + 1}: expected a JSON line, got a syntax error`,
          { cause },
        );
      }
      const filter = typeof sample.filter === 'string' ? sample.filter : 'none';
      const metrics = Array.isArray(sample.metrics) ? sample.metrics : [];
      for (const metric of metrics) {
        const value = sample[metric as string];
        if (value !== 0 && value !== 1 && value !== true && value !== false) continue;
        const key = `${task}/${metric},${filter}`;
        const list = rows.get(key) ?? [];
        list.push([Number(sample.doc_id), Number(value)]);
        rows.set(key, list);
      }
    }
    for (const [key, list] of rows) {
      list.sort((a, b) => a[0] - b[0]);
      out[key] = list.map(([, v]) => v);
    }
  }
  return out;
}
