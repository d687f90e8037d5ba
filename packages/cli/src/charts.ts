import type { Table2Row } from '@qlora/metrics';
import { parse as parseVega, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { CliError } from './errors';

/**
 * One line of a training log (JSONL): at least `step` and `loss`; other fields (`lr`,
 * `grad_norm`, `epoch`, …) are kept.
 *
 * @example
 * const point: LossPoint = { step: 10, loss: 1.42, lr: 0.0002 };
 */
export interface LossPoint {
  step: number;
  loss: number;
  [field: string]: unknown;
}

/**
 * Parses a JSONL training log: one JSON object per line, lines without a numeric `step` and
 * `loss` (e.g. evaluation lines) are skipped; a malformed line throws `INPUT_INVALID` with
 * `file:line`.
 *
 * @example
 * parseLossLog('{"step":1,"loss":2.1,"lr":0.0002}\n{"step":2,"loss":1.9}\n', 'train-log.jsonl');
 * // [{ step: 1, loss: 2.1, lr: 0.0002 }, { step: 2, loss: 1.9 }]
 */
export function parseLossLog(text: string, file: string): LossPoint[] {
  const points: LossPoint[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      throw new CliError(
        'INPUT_INVALID',
        `${file}:${i + 1}: expected one JSON object per line, got ${JSON.stringify(line.slice(0, 40))}`,
        {
          hint: 'Training logs are JSONL: {"step": 1, "loss": 2.3, "lr": 0.0002} per line.',
          cause,
        },
      );
    }
    const record = value as Record<string, unknown>;
    if (
      value !== null &&
      typeof value === 'object' &&
      typeof record.step === 'number' &&
      typeof record.loss === 'number' &&
      Number.isFinite(record.loss)
    ) {
      points.push(record as LossPoint);
    }
  }
  return points;
}

/**
 * Renders a Vega-Lite spec to an SVG string in Node: vega-lite → vega → `View.toSVG()` with the
 * headless renderer (no canvas needed).
 *
 * @example
 * const svg = await renderSvg({ data: { values: [{ x: 1, y: 2 }] }, mark: 'point',
 *   encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } } });
 * svg.startsWith('<svg'); // true
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parseVega(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * The loss-curve chart: loss against optimizer step, one colored line per run.
 *
 * @example
 * lossChartSpec([{ name: 'Llama 3.2 1B', points: parseLossLog(text, 'log.jsonl') }]);
 */
export function lossChartSpec(
  series: ReadonlyArray<{ name: string; points: readonly LossPoint[] }>,
): TopLevelSpec {
  const values = series.flatMap((s) =>
    s.points.map((p) => ({ run: s.name, step: p.step, loss: p.loss })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Training loss',
    width: 560,
    height: 280,
    background: 'white',
    data: { values },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
      y: { field: 'loss', type: 'quantitative', title: 'training loss', scale: { zero: false } },
      ...(series.length > 1 ? { color: { field: 'run', type: 'nominal', title: 'run' } } : {}),
    },
  };
}

/**
 * Rows of the metrics chart: every accuracy row of every model, base and fine-tuned, in percent
 * with the 95% interval ±1.96·stderr (a missing stderr gives no error bar).
 *
 * @example
 * metricsChartData([{ name: 'Llama', rows }])[0];
 * // { model: 'Llama', metric: 'GSM8K flexible accuracy', stage: 'base', series: 'base', value: 33.51, lower: 30.96, upper: 36.06 }
 */
export function metricsChartData(
  models: ReadonlyArray<{ name: string; rows: readonly Table2Row[] }>,
) {
  const multi = models.length > 1;
  return models.flatMap((m) =>
    m.rows
      .filter((r) => r.kind === 'accuracy')
      .flatMap((r) =>
        (['base', 'fine-tuned'] as const).map((stage) => {
          const e = stage === 'base' ? r.base : r.ft;
          const half = Number.isFinite(e.stderr) ? 1.96 * e.stderr * 100 : 0;
          return {
            model: m.name,
            metric: `${r.task} ${r.metric}`,
            stage,
            series: multi ? `${m.name} · ${stage}` : stage,
            value: e.value * 100,
            lower: e.value * 100 - half,
            upper: e.value * 100 + half,
          };
        }),
      ),
  );
}

/**
 * The base-vs-fine-tuned chart: one group of bars per metric, one bar per model and stage, with
 * ±1.96·stderr error bars; several models sit side by side.
 *
 * @example
 * await renderSvg(metricsChartSpec([{ name: 'Llama 3.2 1B', rows }]));
 */
export function metricsChartSpec(
  models: ReadonlyArray<{ name: string; rows: readonly Table2Row[] }>,
): TopLevelSpec {
  const values = metricsChartData(models);
  const x = {
    field: 'metric',
    type: 'nominal' as const,
    title: null,
    axis: { labelAngle: -30, labelLimit: 240 },
  };
  const xOffset = { field: 'series', type: 'nominal' as const };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Base vs fine-tuned (error bars: 95% interval, ±1.96·stderr)',
    width: { step: 28 * Math.max(2, new Set(values.map((v) => v.series)).size) },
    height: 280,
    background: 'white',
    data: { values },
    layer: [
      {
        mark: 'bar',
        encoding: {
          x,
          xOffset,
          y: { field: 'value', type: 'quantitative', title: 'accuracy (%)' },
          color: { field: 'series', type: 'nominal', title: null },
          tooltip: [
            { field: 'model' },
            { field: 'metric' },
            { field: 'stage' },
            { field: 'value', format: '.2f' },
          ],
        },
      },
      {
        mark: { type: 'rule', color: 'black' },
        encoding: {
          x,
          xOffset,
          y: { field: 'lower', type: 'quantitative' },
          y2: { field: 'upper' },
        },
      },
    ],
  };
}
