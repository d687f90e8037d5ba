import { join } from 'node:path';
import {
  type CompareOptions,
  compareResults,
  formatPercent,
  formatTable2Markdown,
  type LmEvalResults,
  type Table2Row,
} from '@qlora/metrics';
import { writeFileAtomic } from './_fs';
import { VERSION } from './_version';
import { type LossPoint, lossChartSpec, metricsChartSpec, renderSvg } from './charts';
import type { PairedOutcomes } from './outcomes';
import { summarizeTable2, type Table2Summary } from './table2';

/**
 * A results file that fed the report: where it was and its sha256.
 *
 * @example
 * const file: ReportFile = { path: 'runs/llama/base/results.json', sha256: 'e3b0c442…' };
 */
export interface ReportFile {
  path: string;
  sha256: string;
}

/**
 * One model of the report: its base and fine-tuned lm-eval results, optional per-sample
 * outcomes (for paired tests) and training log.
 *
 * @example
 * const model: ReportModelInput = { name: 'Llama 3.2 1B', base, ft, lossLog: parseLossLog(text, 'log.jsonl') };
 */
export interface ReportModelInput {
  name: string;
  base: LmEvalResults;
  ft: LmEvalResults;
  baseFile?: ReportFile;
  ftFile?: ReportFile;
  /** Per-sample 0/1 outcomes by Table 2 row id; rows with outcomes get a paired t-test and McNemar. */
  outcomes?: PairedOutcomes;
  lossLog?: readonly LossPoint[];
  /** Which tasks to compare (e.g. `{ mmlu: { subtasks: ['mmlu_college_computer_science'] } }`). */
  compare?: Omit<CompareOptions, 'outcomes'>;
}

/**
 * Everything a report shows. Pure data: {@link buildReport} reads no file and no clock.
 *
 * @example
 * const input: ReportInput = { title: 'Llama 3.2 1B, 2k Alpaca', models: [model], seeds: { subset: 3407 } };
 */
export interface ReportInput {
  title?: string;
  models: readonly ReportModelInput[];
  /** The resolved experiment config, printed as JSON. */
  config?: unknown;
  /** sha256 of the data files used (dataset subsets, benchmark files), by label. */
  dataHashes?: Readonly<Record<string, string>>;
  /** Package and runtime versions, by name. */
  versions?: Readonly<Record<string, string>>;
  /** Seeds used, by purpose (subset sampling, few-shot, LoRA init, …). */
  seeds?: Readonly<Record<string, number>>;
  /** ISO timestamp printed in the header; omitted when absent (keeps output reproducible). */
  generatedAt?: string;
}

/**
 * The machine-readable report (`report.json`): fractions, NaN written as null.
 *
 * @example
 * const json: ReportJson = (await buildReport(input)).json; json.models[0]?.summary.forgettingRate;
 */
export interface ReportJson {
  schemaVersion: 1;
  title: string;
  generatedAt?: string;
  models: Array<{
    name: string;
    baseFile?: ReportFile;
    ftFile?: ReportFile;
    rows: Table2Row[];
    summary: Table2Summary;
    lossSteps: number;
  }>;
  config?: unknown;
  dataHashes: Record<string, string>;
  versions: Record<string, string>;
  seeds: Record<string, number>;
  charts: string[];
}

/**
 * A built report: Markdown, JSON and SVG charts by file name.
 *
 * @example
 * const { markdown, json, charts } = await buildReport(input); Object.keys(charts); // ['metrics.svg', 'loss.svg']
 */
export interface Report {
  markdown: string;
  json: ReportJson;
  charts: Record<string, string>;
}

const fmt = (x: number, digits = 4): string => (Number.isFinite(x) ? x.toFixed(digits) : 'N/A');

function formatP(p: number): string {
  if (!Number.isFinite(p)) return 'N/A';
  return p < 1e-4 ? p.toExponential(2) : p.toFixed(4);
}

function tableOf(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/**
 * Builds `report.md`, `report.json` and the charts from results already in memory: the paper's
 * Table 2 for each model (base and fine-tuned values ± stderr, FR, ΔA, ΔK recomputed by
 * `@qlora/metrics`), a summary across models, paired tests where outcomes were given, the
 * config, data hashes, versions and seeds. Charts: base vs fine-tuned per metric with
 * ±1.96·stderr bars (`metrics.svg`) and, when a log was given, the training loss (`loss.svg`).
 *
 * @example
 * const report = await buildReport({ models: [{ name: 'Llama 3.2 1B', base, ft }] });
 * report.json.models[0]?.summary.knowledgeLoss; // { delta: 0.13, margin: 0.0692… }
 */
export async function buildReport(input: ReportInput): Promise<Report> {
  const title = input.title ?? 'qlora experiment report';
  const models = input.models.map((m) => {
    const options: CompareOptions = { ...(m.compare ?? {}) };
    if (m.outcomes !== undefined) options.outcomes = m.outcomes;
    const rows = compareResults(m.base, m.ft, options);
    return { input: m, rows, summary: summarizeTable2(rows) };
  });

  const charts: Record<string, string> = {};
  charts['metrics.svg'] = await renderSvg(
    metricsChartSpec(models.map((m) => ({ name: m.input.name, rows: m.rows }))),
  );
  const logs = models
    .filter((m) => m.input.lossLog !== undefined && m.input.lossLog.length > 0)
    .map((m) => ({ name: m.input.name, points: m.input.lossLog as readonly LossPoint[] }));
  if (logs.length > 0) charts['loss.svg'] = await renderSvg(lossChartSpec(logs));

  const md: string[] = [`# ${title}`, ''];
  if (input.generatedAt !== undefined) md.push(`Generated ${input.generatedAt}.`, '');
  md.push("## Results (the paper's Table 2)", '');
  md.push(
    '"±" is one standard error as lm-evaluation-harness reports it (sample std, n − 1); values in percent.',
    '',
  );
  for (const m of models) {
    if (models.length > 1) md.push(`### ${m.input.name}`, '');
    const files = [
      m.input.baseFile &&
        `base: \`${m.input.baseFile.path}\` (sha256 \`${m.input.baseFile.sha256.slice(0, 16)}…\`)`,
      m.input.ftFile &&
        `fine-tuned: \`${m.input.ftFile.path}\` (sha256 \`${m.input.ftFile.sha256.slice(0, 16)}…\`)`,
    ].filter(Boolean);
    if (files.length > 0) md.push(`Inputs: ${files.join('; ')}.`, '');
    md.push(
      formatTable2Markdown(m.rows, {
        baseLabel: 'Base',
        ftLabel: models.length > 1 ? `Fine-tuned ${m.input.name}` : 'Fine-tuned',
      }).trimEnd(),
      '',
    );
  }

  md.push('## Summary', '');
  md.push(
    tableOf(
      ['Model', 'Forgetting Rate (FR)', 'Ability Augmentation (ΔA)', 'Knowledge Loss (ΔK)'],
      models.map((m) => {
        const s = m.summary;
        return [
          m.input.name,
          s.forgettingRate === undefined ? '–' : formatPercent(s.forgettingRate),
          s.abilityAugmentation === undefined
            ? '–'
            : formatPercent(s.abilityAugmentation, { sign: true }),
          s.knowledgeLoss === undefined
            ? '–'
            : `${formatPercent(s.knowledgeLoss.delta)} ± ${formatPercent(s.knowledgeLoss.margin, { suffix: false })}`,
        ];
      }),
    ),
    '',
    'FR = (1 − A_flex(FT) / A_flex(Base)) × 100% (GSM8K flexible extract); ΔA = A_norm(FT) − A_norm(Base) (HellaSwag); ΔK = A(Base) − A(FT) ± √(se_Base² + se_FT²) (MMLU). Recomputed here from the inputs above.',
    '',
  );

  const tested = models.flatMap((m) =>
    m.rows.filter((r) => r.tests !== undefined).map((r) => ({ model: m.input.name, row: r })),
  );
  if (tested.length > 0) {
    md.push('## Paired tests (per-sample outcomes, same items)', '');
    md.push(
      tableOf(
        [
          'Model',
          'Task',
          'Metric',
          'n',
          'mean(base − ft)',
          't',
          'p (paired t)',
          'b',
          'c',
          'p (McNemar)',
        ],
        tested.map(({ model, row }) => {
          const t = row.tests!;
          return [
            model,
            row.task,
            row.metric,
            String(t.pairedTTest.n),
            fmt(t.pairedTTest.meanDifference),
            fmt(t.pairedTTest.t, 3),
            formatP(t.pairedTTest.p),
            String(t.mcnemar.b),
            String(t.mcnemar.c),
            `${formatP(t.mcnemar.p)} (${t.mcnemar.method})`,
          ];
        }),
      ),
      '',
      'b: right before fine-tuning and wrong after; c: wrong before and right after. McNemar is exact for b + c < 25, else χ² with continuity correction.',
      '',
    );
  }

  md.push('## Charts', '', '![Base vs fine-tuned per metric](metrics.svg)', '');
  if (charts['loss.svg'] !== undefined) md.push('![Training loss](loss.svg)', '');

  const dataHashes: Record<string, string> = { ...(input.dataHashes ?? {}) };
  for (const m of models) {
    if (m.input.baseFile) dataHashes[m.input.baseFile.path] = m.input.baseFile.sha256;
    if (m.input.ftFile) dataHashes[m.input.ftFile.path] = m.input.ftFile.sha256;
  }
  const versions = { ...(input.versions ?? {}) };
  const seeds = { ...(input.seeds ?? {}) };
  md.push('## Reproducibility', '');
  if (input.config !== undefined) {
    md.push('### Config', '', '```json', JSON.stringify(input.config, null, 2), '```', '');
  }
  if (Object.keys(dataHashes).length > 0) {
    md.push(
      '### Data hashes (sha256)',
      '',
      tableOf(
        ['file', 'sha256'],
        Object.entries(dataHashes).map(([k, v]) => [`\`${k}\``, `\`${v}\``]),
      ),
      '',
    );
  }
  if (Object.keys(versions).length > 0) {
    md.push('### Versions', '', tableOf(['component', 'version'], Object.entries(versions)), '');
  }
  if (Object.keys(seeds).length > 0) {
    md.push(
      '### Seeds',
      '',
      tableOf(
        ['purpose', 'seed'],
        Object.entries(seeds).map(([k, v]) => [k, String(v)]),
      ),
      '',
    );
  }

  const json: ReportJson = {
    schemaVersion: 1,
    title,
    ...(input.generatedAt === undefined ? {} : { generatedAt: input.generatedAt }),
    models: models.map((m) => ({
      name: m.input.name,
      ...(m.input.baseFile ? { baseFile: m.input.baseFile } : {}),
      ...(m.input.ftFile ? { ftFile: m.input.ftFile } : {}),
      rows: m.rows,
      summary: m.summary,
      lossSteps: m.input.lossLog?.length ?? 0,
    })),
    ...(input.config === undefined ? {} : { config: input.config }),
    dataHashes,
    versions,
    seeds,
    charts: Object.keys(charts),
  };
  return { markdown: `${md.join('\n').trimEnd()}\n`, json, charts };
}

/**
 * JSON text with NaN and ±Infinity written as `null` (JSON has neither).
 *
 * @example
 * stringifyReportJson({ p: Number.NaN }); // '{\n  "p": null\n}\n'
 */
export function stringifyReportJson(value: unknown): string {
  return `${JSON.stringify(value, (_key, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

/**
 * Builds the report and writes `report.md`, `report.json` and the SVG charts into `dir`, each
 * file atomically. Adds `@qlora/cli` and Node versions unless given. Returns the paths written.
 *
 * @example
 * await writeReport('runs/llama', { models: [{ name: 'Llama 3.2 1B', base, ft }] });
 * // ['runs/llama/report.md', 'runs/llama/report.json', 'runs/llama/metrics.svg']
 */
export async function writeReport(dir: string, input: ReportInput): Promise<string[]> {
  const report = await buildReport({
    ...input,
    versions: { '@qlora/cli': VERSION, node: process.version, ...(input.versions ?? {}) },
  });
  const written: string[] = [];
  const put = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFileAtomic(path, text);
    written.push(path);
  };
  await put('report.md', report.markdown);
  await put('report.json', stringifyReportJson(report.json));
  for (const [name, svg] of Object.entries(report.charts)) await put(name, svg);
  return written;
}
