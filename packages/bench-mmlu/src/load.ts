import { loadMmluCsv, loadRecords, mmluParquetSchema, toMmluItem } from '@qlora/datasets';
import { BenchMmluError } from './errors';
import type { MmluDoc } from './prompt';

/**
 * Loads one subject from a hendrycks MMLU folder (`<dir>/<subject>_<split>.csv`, headerless
 * `question,A,B,C,D,answer`) into `cais/mmlu`-shaped docs, in file order.
 *
 * @example
 * ```ts
 * const test = await loadMmluCsvDocs('data/mmlu/test', 'machine_learning'); // 112 docs
 * const dev = await loadMmluCsvDocs('data/mmlu/dev', 'machine_learning'); // 5 docs
 * test[0]; // { question: 'Statement 1| …', subject: 'machine_learning', choices: [...], answer: 3 }
 * ```
 */
export async function loadMmluCsvDocs(dir: string, subject: string): Promise<MmluDoc[]> {
  const rows = await loadMmluCsv(dir, subject);
  return rows.map((row) => toMmluItem(row, row.subject));
}

/**
 * Loads `cais/mmlu` parquet (one config's split, or the `all` config) into docs, optionally keeping
 * one subject, in file order.
 *
 * @example
 * ```ts
 * const docs = await loadMmluParquetDocs('mmlu/all/test-00000-of-00001.parquet', { subject: 'machine_learning' });
 * ```
 */
export async function loadMmluParquetDocs(
  path: string,
  options: { subject?: string } = {},
): Promise<MmluDoc[]> {
  const { records } = await loadRecords(path, mmluParquetSchema, { format: 'parquet' });
  const docs =
    options.subject === undefined ? records : records.filter((r) => r.subject === options.subject);
  if (docs.length === 0) {
    throw new BenchMmluError(
      'E_NO_DOCS',
      `mmlu parquet ${path}: expected rows for subject ${JSON.stringify(options.subject)}, got none of ${records.length}. Hint: subjects are snake_case, e.g. "machine_learning".`,
    );
  }
  return docs;
}
