import { formatPercent, type Table2Row } from '@qlora/metrics';

/**
 * The paper's three derived figures picked out of Table 2 rows (fractions; absent when the
 * benchmark was not in both results).
 *
 * @example
 * summarizeTable2(rows).forgettingRate; // 0.8892…
 */
export interface Table2Summary {
  forgettingRate?: number;
  abilityAugmentation?: number;
  knowledgeLoss?: { delta: number; margin: number };
}

/**
 * Picks FR, ΔA and ΔK (with margin) out of `compareResults` rows.
 *
 * @example
 * summarizeTable2(compareResults(base, ft)); // { forgettingRate: 0.889…, abilityAugmentation: 0.0043…, knowledgeLoss: { delta: 0.13, margin: 0.0692… } }
 */
export function summarizeTable2(rows: readonly Table2Row[]): Table2Summary {
  const summary: Table2Summary = {};
  for (const row of rows) {
    const value = row.derived?.value;
    if (value === undefined) continue;
    if (row.kind === 'forgettingRate') summary.forgettingRate = value;
    else if (row.kind === 'abilityAugmentation') summary.abilityAugmentation = value;
    else if (row.kind === 'knowledgeLoss') {
      summary.knowledgeLoss = { delta: value, margin: row.derived?.margin ?? Number.NaN };
    }
  }
  return summary;
}

const points = (fraction: number, sign = false): string =>
  formatPercent(fraction, { suffix: false, sign });

/**
 * One line per derived figure, e.g. `FR 88.93%`, `ΔA +0.43 points`, `ΔK 13.00 ± 6.92 points`,
 * each with the row it came from.
 *
 * @example
 * formatSummaryLines(rows);
 * // ['FR 88.93%  (GSM8K flexible accuracy 33.51 → 3.71)', 'ΔA +0.43 points  (…)', 'ΔK 13.00 ± 6.92 points  (…)']
 */
export function formatSummaryLines(rows: readonly Table2Row[]): string[] {
  const lines: string[] = [];
  for (const row of rows) {
    const value = row.derived?.value;
    if (value === undefined) continue;
    const from = `${row.task} ${row.kind === 'forgettingRate' ? 'flexible accuracy' : row.kind === 'abilityAugmentation' ? 'normalized accuracy' : 'accuracy'} ${points(row.base.value)} → ${points(row.ft.value)}`;
    if (row.kind === 'forgettingRate') {
      lines.push(`FR ${formatPercent(value)}  (Forgetting Rate, ${from})`);
    } else if (row.kind === 'abilityAugmentation') {
      lines.push(`ΔA ${points(value, true)} points  (Ability Augmentation, ${from})`);
    } else if (row.kind === 'knowledgeLoss') {
      const margin = row.derived?.margin ?? Number.NaN;
      lines.push(`ΔK ${points(value)} ± ${points(margin)} points  (Knowledge Loss, ${from})`);
    }
  }
  return lines;
}
