import { MetricsError } from './errors';
import { type McNemarTest, mcnemar, type PairedTTest, pairedTTest } from './hypothesis-tests';
import type { LmEvalResults, LmEvalTaskResult } from './lm-eval-results';
import { abilityAugmentation, forgettingRate, formatPercent, knowledgeLoss } from './paper';
import { aggregateSubtasks } from './stats';
import type { Estimate, Outcomes } from './types';

/**
 * An estimate read from a results file, with the item count when known.
 *
 * @example
 * compareResults(base, ft)[0]?.base; // { value: 0.3351…, stderr: 0.0130…, n: 1319 }
 */
export interface ResultEstimate extends Estimate {
  n?: number;
}

/**
 * One row of the paper's Table 2. Accuracy rows fill `base`/`ft`; derived rows also `derived`.
 *
 * @example
 * const fr: Table2Row | undefined = compareResults(base, ft).find((r) => r.kind === 'forgettingRate');
 */
export interface Table2Row {
  /** Stable id, e.g. `gsm8k/exact_match,flexible-extract` or `gsm8k/forgetting-rate`. */
  id: string;
  /** Display task, e.g. "GSM8K", "HellaSwag", "MMLU CS". */
  task: string;
  /** Display metric, e.g. "flexible accuracy", "Forgetting Rate". */
  metric: string;
  kind: 'accuracy' | 'forgettingRate' | 'abilityAugmentation' | 'knowledgeLoss';
  /** Base model's value ± stderr (for derived rows: the input the figure came from). */
  base: ResultEstimate;
  /** Fine-tuned model's value ± stderr. */
  ft: ResultEstimate;
  /** FR, ΔA or ΔK (fractions); `margin` only for Knowledge Loss. */
  derived?: { value: number; margin?: number };
  /** Paired tests when per-sample outcomes for this row were given. */
  tests?: { pairedTTest: PairedTTest; mcnemar: McNemarTest };
}

/**
 * Options of {@link compareResults}.
 *
 * @example
 * compareResults(base, ft, { mmlu: { subtasks: ['mmlu_college_computer_science'], label: 'MMLU CS' } } satisfies CompareOptions);
 */
export interface CompareOptions {
  /** GSM8K task name (default "gsm8k"); false skips it. */
  gsm8k?: string | false;
  /** HellaSwag task name (default "hellaswag"); false skips it. */
  hellaswag?: string | false;
  /**
   * MMLU: a `task` or `group` entry (default: group "mmlu" if present), or `subtasks` to aggregate
   * (size-weighted, pooled stderr), e.g. `['mmlu_college_computer_science']` for the paper's n = 100.
   * Without either and without "mmlu", the computer-science subtasks present are used. false skips.
   */
  mmlu?: { task?: string; subtasks?: string[]; label?: string } | false;
  /** Per-sample 0/1 outcomes by row id (e.g. `gsm8k/exact_match,flexible-extract`), same items in both. */
  outcomes?: Record<string, { base: Outcomes; ft: Outcomes }>;
}

const MMLU_CS = [
  'mmlu_college_computer_science',
  'mmlu_high_school_computer_science',
  'mmlu_computer_security',
  'mmlu_machine_learning',
];

function readMetric(
  results: LmEvalResults,
  which: string,
  task: string,
  key: string,
): ResultEstimate {
  const entry = results.results[task] as LmEvalTaskResult;
  const m = entry.metrics[key];
  if (m === undefined) {
    const have = Object.keys(entry.metrics).join(', ') || 'none';
    throw new MetricsError(
      'MISSING_METRIC',
      `compareResults(${which}): results.${task}["${key}"]: expected a metric, got none (metrics there: ${have})`,
    );
  }
  const stderr = typeof m.stderr === 'number' ? m.stderr : Number.NaN;
  return entry.sampleLen === undefined
    ? { value: m.value, stderr }
    : { value: m.value, stderr, n: entry.sampleLen };
}

function present(base: LmEvalResults, ft: LmEvalResults, task: string): boolean {
  const inBase = task in base.results;
  const inFt = task in ft.results;
  if (inBase !== inFt) {
    throw new MetricsError(
      'MISSING_TASK',
      `compareResults: results.${task}: expected in both files, got it only in the ${inBase ? 'base' : 'fine-tuned'} results`,
    );
  }
  return inBase;
}

function subtaskEstimate(results: LmEvalResults, which: string, tasks: string[]): ResultEstimate {
  const parts = tasks.map((t) => {
    if (!(t in results.results)) {
      throw new MetricsError(
        'MISSING_TASK',
        `compareResults(${which}): results.${t}: expected an MMLU subtask, got none`,
      );
    }
    const e = readMetric(results, which, t, 'acc,none');
    const n = e.n ?? results.nSamples[t]?.effective;
    if (n === undefined) {
      throw new MetricsError(
        'MISSING_METRIC',
        `compareResults(${which}): results.${t}.sample_len: expected a size to weight by, got none`,
      );
    }
    return { value: e.value, stderr: e.stderr, n };
  });
  if (parts.length === 1) return parts[0] as ResultEstimate;
  return aggregateSubtasks(parts);
}

/**
 * Turns two lm-eval results (base, fine-tuned) into the paper's Table 2 rows: GSM8K flexible and
 * strict accuracy + Forgetting Rate (flexible-extract), HellaSwag acc and acc_norm + Ability
 * Augmentation (acc_norm), MMLU acc + Knowledge Loss with margin. Tasks absent from both are
 * skipped. With `outcomes`, rows carry a paired t-test and McNemar's test.
 *
 * @example
 * const rows = compareResults(parseLmEvalResults(baseText), parseLmEvalResults(ftText),
 *   { mmlu: { subtasks: ['mmlu_college_computer_science'], label: 'MMLU CS' } });
 * rows.find((r) => r.kind === 'forgettingRate')?.derived?.value; // e.g. 0.8891…
 */
export function compareResults(
  base: LmEvalResults,
  ft: LmEvalResults,
  options: CompareOptions = {},
): Table2Row[] {
  const rows: Table2Row[] = [];
  const accuracyRow = (
    id: string,
    task: string,
    metric: string,
    b: ResultEstimate,
    f: ResultEstimate,
  ): Table2Row => {
    const row: Table2Row = { id, task, metric, kind: 'accuracy', base: b, ft: f };
    const outcomes = options.outcomes?.[id];
    if (outcomes !== undefined) {
      row.tests = {
        pairedTTest: pairedTTest(outcomes.base, outcomes.ft),
        mcnemar: mcnemar(outcomes.base, outcomes.ft),
      };
    }
    return row;
  };

  const gsm8k = options.gsm8k ?? 'gsm8k';
  if (gsm8k !== false && present(base, ft, gsm8k)) {
    const flexKey = 'exact_match,flexible-extract';
    const strictKey = 'exact_match,strict-match';
    const bFlex = readMetric(base, 'base', gsm8k, flexKey);
    const fFlex = readMetric(ft, 'ft', gsm8k, flexKey);
    rows.push(accuracyRow(`gsm8k/${flexKey}`, 'GSM8K', 'flexible accuracy', bFlex, fFlex));
    rows.push(
      accuracyRow(
        `gsm8k/${strictKey}`,
        'GSM8K',
        'strict accuracy',
        readMetric(base, 'base', gsm8k, strictKey),
        readMetric(ft, 'ft', gsm8k, strictKey),
      ),
    );
    rows.push({
      id: 'gsm8k/forgetting-rate',
      task: 'GSM8K',
      metric: 'Forgetting Rate',
      kind: 'forgettingRate',
      base: bFlex,
      ft: fFlex,
      derived: { value: forgettingRate(bFlex, fFlex) },
    });
  }

  const hellaswag = options.hellaswag ?? 'hellaswag';
  if (hellaswag !== false && present(base, ft, hellaswag)) {
    rows.push(
      accuracyRow(
        'hellaswag/acc,none',
        'HellaSwag',
        'accuracy',
        readMetric(base, 'base', hellaswag, 'acc,none'),
        readMetric(ft, 'ft', hellaswag, 'acc,none'),
      ),
    );
    const bNorm = readMetric(base, 'base', hellaswag, 'acc_norm,none');
    const fNorm = readMetric(ft, 'ft', hellaswag, 'acc_norm,none');
    rows.push(
      accuracyRow('hellaswag/acc_norm,none', 'HellaSwag', 'normalized accuracy', bNorm, fNorm),
    );
    rows.push({
      id: 'hellaswag/ability-augmentation',
      task: 'HellaSwag',
      metric: 'Ability Augmentation',
      kind: 'abilityAugmentation',
      base: bNorm,
      ft: fNorm,
      derived: { value: abilityAugmentation(bNorm, fNorm) },
    });
  }

  if (options.mmlu !== false) {
    const mmlu = options.mmlu ?? {};
    let label = mmlu.label;
    let estimates: [ResultEstimate, ResultEstimate] | undefined;
    if (mmlu.subtasks !== undefined) {
      estimates = [
        subtaskEstimate(base, 'base', mmlu.subtasks),
        subtaskEstimate(ft, 'ft', mmlu.subtasks),
      ];
      label ??= 'MMLU CS';
    } else {
      const task = mmlu.task ?? 'mmlu';
      if (present(base, ft, task)) {
        estimates = [
          readMetric(base, 'base', task, 'acc,none'),
          readMetric(ft, 'ft', task, 'acc,none'),
        ];
        label ??= 'MMLU';
      } else if (mmlu.task === undefined) {
        const cs = MMLU_CS.filter((t) => present(base, ft, t));
        if (cs.length > 0) {
          estimates = [subtaskEstimate(base, 'base', cs), subtaskEstimate(ft, 'ft', cs)];
          label ??= 'MMLU CS';
        }
      } else {
        throw new MetricsError(
          'MISSING_TASK',
          `compareResults: results.${task}: expected the MMLU task or group, got none`,
        );
      }
    }
    if (estimates !== undefined) {
      const [b, f] = estimates;
      rows.push(accuracyRow('mmlu/acc,none', label ?? 'MMLU', 'accuracy', b, f));
      const loss = knowledgeLoss(b, f);
      rows.push({
        id: 'mmlu/knowledge-loss',
        task: label ?? 'MMLU',
        metric: 'Knowledge Loss',
        kind: 'knowledgeLoss',
        base: b,
        ft: f,
        derived: { value: loss.delta, margin: loss.margin },
      });
    }
  }
  return rows;
}

const cell = (e: Estimate): string =>
  Number.isNaN(e.stderr)
    ? `${formatPercent(e.value, { suffix: false })} ± N/A`
    : `${formatPercent(e.value, { suffix: false })} ± ${formatPercent(e.stderr, { suffix: false })}`;

function formatP(p: number): string {
  if (Number.isNaN(p)) return 'N/A';
  if (p < 1e-4) return p.toExponential(1);
  return p.toFixed(4);
}

/**
 * Options of {@link formatTable2Markdown}.
 *
 * @example
 * formatTable2Markdown(rows, { baseLabel: 'Llama 3.2 1B', ftLabel: 'QLoRA 2k' });
 */
export interface Table2FormatOptions {
  baseLabel?: string;
  ftLabel?: string;
}

/**
 * Prints Table 2 rows as a Markdown table, like the paper: percents with 2 decimals, "±" the
 * stderr, "–" where a cell has no value; adds p-value columns when any row carries tests.
 *
 * @example
 * formatTable2Markdown(rows);
 * // | Task | Metric | Base | Fine-tuned |
 * // |---|---|---|---|
 * // | GSM8K | flexible accuracy | 33.51 ± 1.30 | 3.71 ± 0.52 |
 * // | GSM8K | Forgetting Rate | – | 88.93% |
 */
export function formatTable2Markdown(
  rows: readonly Table2Row[],
  options: Table2FormatOptions = {},
): string {
  const withTests = rows.some((r) => r.tests !== undefined);
  const header = ['Task', 'Metric', options.baseLabel ?? 'Base', options.ftLabel ?? 'Fine-tuned'];
  if (withTests) header.push('paired t-test p', 'McNemar p');
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) {
    let baseCell = '–';
    let ftCell: string;
    if (row.kind === 'accuracy') {
      baseCell = cell(row.base);
      ftCell = cell(row.ft);
    } else if (row.kind === 'forgettingRate') {
      ftCell = formatPercent(row.derived?.value ?? Number.NaN);
    } else if (row.kind === 'abilityAugmentation') {
      ftCell = formatPercent(row.derived?.value ?? Number.NaN, { sign: true });
    } else {
      const margin = row.derived?.margin ?? Number.NaN;
      ftCell = `${formatPercent(row.derived?.value ?? Number.NaN)} ± ${Number.isNaN(margin) ? 'N/A' : formatPercent(margin, { suffix: false })}`;
    }
    const cells = [row.task, row.metric, baseCell, ftCell];
    if (withTests) {
      cells.push(
        row.tests ? formatP(row.tests.pairedTTest.p) : '–',
        row.tests ? formatP(row.tests.mcnemar.p) : '–',
      );
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}
