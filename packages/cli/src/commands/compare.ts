import { basename } from 'node:path';
import {
  type CompareOptions,
  compareResults,
  formatTable2Markdown,
  type LmEvalResults,
  parseLmEvalResults,
  type Table2Row,
} from '@qlora/metrics';
import { readInputText, resolvePath, sha256Hex, writeFileAtomic } from '../_fs';
import { parseLossLog } from '../charts';
import type { CliIo } from '../io';
import {
  type PairedOutcomes,
  pairOutcomes,
  parseOutcomesFile,
  readLmEvalSamplesDir,
} from '../outcomes';
import { stringifyReportJson, writeReport } from '../report';
import { formatSummaryLines, summarizeTable2, type Table2Summary } from '../table2';

/**
 * Options of `qlora compare`.
 *
 * @example
 * const options: CompareCommandOptions = { base: 'base.json', ft: 'ft.json', markdown: 'table2.md' };
 */
export interface CompareCommandOptions {
  /** lm-eval results file of the base model. */
  base: string;
  /** lm-eval results file of the fine-tuned model. */
  ft: string;
  json?: boolean;
  /** Also write the Table 2 Markdown here. */
  markdown?: string;
  /** MMLU subtasks to aggregate (e.g. `mmlu_college_computer_science`). */
  mmluSubtasks?: string[];
  /** MMLU task or group entry to read instead (e.g. `mmlu`). */
  mmluTask?: string;
  baseLabel?: string;
  ftLabel?: string;
  /** Outcomes JSON `{ base: { rowId: "0101…" }, ft: … }` for paired tests. */
  outcomes?: string;
  /** lm-eval `--log_samples` folders of each run, for paired tests. */
  baseSamples?: string;
  ftSamples?: string;
  /** Write report.md, report.json and SVG charts into this folder. */
  report?: string;
  /** Training log (JSONL) for the report's loss chart. */
  lossLog?: string;
  /** Model name in the report. */
  name?: string;
}

/**
 * What `qlora compare` computed (also its `--json` output).
 *
 * @example
 * (await runCompare({ base: 'b.json', ft: 'f.json' }, io)).summary.forgettingRate; // 0.8893…
 */
export interface CompareCommandResult {
  base: string;
  ft: string;
  rows: Table2Row[];
  summary: Table2Summary;
  warnings: string[];
  written: string[];
}

async function readResults(
  path: string,
  which: string,
): Promise<{ results: LmEvalResults; text: string }> {
  const text = await readInputText(path, `${which} lm-eval results`);
  return { results: parseLmEvalResults(text), text };
}

/**
 * `qlora compare base.json ft.json`: reads two lm-evaluation-harness 0.4.x results files and
 * prints the paper's Table 2 (accuracies ± stderr, FR, ΔA, ΔK with margin), with paired tests
 * when per-sample outcomes are given; optionally writes the table as Markdown and a full report.
 *
 * @example
 * await runCompare({ base: 'base/results.json', ft: 'ft/results.json' }, createNodeIo());
 * // | GSM8K | Forgetting Rate | – | 88.93% |
 * // FR 88.93%  (Forgetting Rate, GSM8K flexible accuracy 33.51 → 3.71)
 */
export async function runCompare(
  options: CompareCommandOptions,
  io: CliIo,
): Promise<CompareCommandResult> {
  const basePath = resolvePath(io.cwd, options.base);
  const ftPath = resolvePath(io.cwd, options.ft);
  const base = await readResults(basePath, 'base');
  const ft = await readResults(ftPath, 'fine-tuned');

  const compare: Omit<CompareOptions, 'outcomes'> = {};
  if (options.mmluSubtasks !== undefined && options.mmluSubtasks.length > 0) {
    compare.mmlu = { subtasks: options.mmluSubtasks };
  } else if (options.mmluTask !== undefined) {
    compare.mmlu = { task: options.mmluTask };
  }

  const warnings: string[] = [];
  let outcomes: PairedOutcomes | undefined;
  const tasks = { mmluSubtasks: options.mmluSubtasks ?? [] };
  if (options.outcomes !== undefined) {
    const path = resolvePath(io.cwd, options.outcomes);
    const sides = parseOutcomesFile(await readInputText(path, 'outcomes'), options.outcomes);
    const paired = pairOutcomes(sides.base, sides.ft, tasks);
    outcomes = paired.outcomes;
    warnings.push(...paired.warnings);
  }
  if (options.baseSamples !== undefined && options.ftSamples !== undefined) {
    const paired = pairOutcomes(
      await readLmEvalSamplesDir(resolvePath(io.cwd, options.baseSamples)),
      await readLmEvalSamplesDir(resolvePath(io.cwd, options.ftSamples)),
      tasks,
    );
    outcomes = { ...paired.outcomes, ...(outcomes ?? {}) };
    warnings.push(...paired.warnings);
  }

  const rows = compareResults(base.results, ft.results, {
    ...compare,
    ...(outcomes === undefined ? {} : { outcomes }),
  });
  const labels = {
    baseLabel: options.baseLabel ?? 'Base',
    ftLabel: options.ftLabel ?? 'Fine-tuned',
  };
  const markdown = formatTable2Markdown(rows, labels);
  const written: string[] = [];
  if (options.markdown !== undefined) {
    const path = resolvePath(io.cwd, options.markdown);
    await writeFileAtomic(path, markdown);
    written.push(path);
  }
  if (options.report !== undefined) {
    const lossLog =
      options.lossLog === undefined
        ? undefined
        : parseLossLog(
            await readInputText(resolvePath(io.cwd, options.lossLog), 'training log'),
            options.lossLog,
          );
    const versions: Record<string, string> = {};
    const seeds: Record<string, number> = {};
    for (const [side, r] of [
      ['base', base.results],
      ['fine-tuned', ft.results],
    ] as const) {
      for (const key of ['lm_eval_version', 'transformers_version']) {
        const value = r.meta[key];
        if (typeof value === 'string')
          versions[`${key.replace('_version', '')} (${side} results)`] = value;
      }
      for (const [key, value] of Object.entries(r.config ?? {})) {
        if (key.endsWith('_seed') && typeof value === 'number')
          seeds[`${key} (${side} eval)`] = value;
      }
    }
    written.push(
      ...(await writeReport(resolvePath(io.cwd, options.report), {
        title: `${options.name ?? basename(ftPath)}: base vs fine-tuned`,
        models: [
          {
            name: options.name ?? labels.ftLabel,
            base: base.results,
            ft: ft.results,
            baseFile: { path: options.base, sha256: sha256Hex(base.text) },
            ftFile: { path: options.ft, sha256: sha256Hex(ft.text) },
            compare,
            ...(outcomes === undefined ? {} : { outcomes }),
            ...(lossLog === undefined ? {} : { lossLog }),
          },
        ],
        versions,
        seeds,
      })),
    );
  }

  const result: CompareCommandResult = {
    base: options.base,
    ft: options.ft,
    rows,
    summary: summarizeTable2(rows),
    warnings,
    written,
  };
  if (options.json) {
    io.stdout.write(stringifyReportJson(result));
  } else {
    io.stdout.write(`${markdown}\n`);
    const lines = formatSummaryLines(rows);
    if (lines.length > 0) io.stdout.write(`${lines.join('\n')}\n`);
    for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
    for (const path of written) io.stderr.write(`wrote ${path}\n`);
  }
  return result;
}
