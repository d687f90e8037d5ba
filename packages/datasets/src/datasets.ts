import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { DatasetsError } from './errors';
import { type LoadOptions, loadRecords } from './load';
import {
  type AlpacaRecord,
  alpacaRecordSchema,
  type Gsm8kRecord,
  gsm8kRecordSchema,
  type HellaswagRecord,
  hellaswagPreprocessedSchema,
  hellaswagRawSchema,
  MMLU_CSV_COLUMNS,
  type MmluCsvRow,
  mmluCsvRowSchema,
} from './schemas';

type CommonOptions = Pick<LoadOptions, 'format' | 'limit'>;

/**
 * Loads Alpaca records (json array as published, jsonl or parquet), failing on the first bad
 * record with its file and line.
 *
 * @example
 * ```ts
 * const records = await loadAlpaca(sharedDataPath('alpaca', 'alpaca_5000.json'));
 * records.length; // 5000
 * records[1]; // { instruction: 'Arrange the following musical notes', input: 'G, B, E', output: 'E, G, B' }
 * ```
 */
export async function loadAlpaca(
  path: string,
  options: CommonOptions = {},
): Promise<AlpacaRecord[]> {
  return nonEmpty(path, (await loadRecords(path, alpacaRecordSchema, options)).records, options);
}

/** A named loader's result must hold records unless `limit: 0` asked for none. */
function nonEmpty<T>(path: string, records: T[], options: CommonOptions): T[] {
  if (records.length === 0 && options.limit !== 0) {
    throw new DatasetsError(
      'EMPTY_DATASET',
      `no records in ${path}: expected at least one record, got 0\nHint: the file is empty or holds only blank lines; check the path (a dataset setting such as finetune.dataset.path).`,
      { file: path },
    );
  }
  return records;
}

/**
 * Loads GSM8K records (`openai/grade-school-math` jsonl or `openai/gsm8k` parquet).
 *
 * @example
 * ```ts
 * const test = await loadGsm8k(sharedDataPath('gsm8k', 'test.jsonl'));
 * test.length; // 1319
 * ```
 */
export async function loadGsm8k(path: string, options: CommonOptions = {}): Promise<Gsm8kRecord[]> {
  return nonEmpty(path, (await loadRecords(path, gsm8kRecordSchema, options)).records, options);
}

/**
 * Options of {@link loadHellaswag}.
 *
 * @example
 * ```ts
 * await loadHellaswag('hellaswag_val.jsonl', { variant: 'raw' });
 * ```
 */
export interface LoadHellaswagOptions extends CommonOptions {
  /** `'auto'` (default) picks by the first record: `ctx_a` present ⇒ raw, else preprocessed. */
  variant?: 'auto' | 'raw' | 'preprocessed';
}

/**
 * Loads HellaSwag: the raw rowanz / `Rowan/hellaswag` schema or the preprocessed 4-field variant
 * in `shared/data`, chosen by the first record unless `variant` says. Labels come out as numbers.
 *
 * @example
 * ```ts
 * const val = await loadHellaswag(sharedDataPath('hellaswag', 'hellaswag_val_preprocessed.jsonl'));
 * val.length; // 10042
 * 'ctx_a' in val[0]; // false (preprocessed)
 * ```
 */
export async function loadHellaswag(
  path: string,
  options: LoadHellaswagOptions = {},
): Promise<HellaswagRecord[]> {
  const { variant = 'auto', ...rest } = options;
  const raw =
    variant === 'raw' || (variant === 'auto' && (await firstRecordHas(path, 'ctx_a', rest)));
  const schema = raw ? hellaswagRawSchema : hellaswagPreprocessedSchema;
  return nonEmpty(path, (await loadRecords(path, schema, rest)).records, rest) as HellaswagRecord[];
}

async function firstRecordHas(path: string, key: string, options: CommonOptions): Promise<boolean> {
  const format = options.format ?? (path.toLowerCase().endsWith('.parquet') ? 'parquet' : 'jsonl');
  if (format === 'jsonl') {
    const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }) });
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        try {
          const value: unknown = JSON.parse(line);
          return value !== null && typeof value === 'object' && key in value;
        } catch {
          return false; // the real load reports the parse error with its line
        }
      }
    } finally {
      lines.close();
    }
    return false;
  }
  const { records } = await loadRecords(path, z.unknown(), { ...options, limit: 1 });
  const first = records[0];
  return first !== null && typeof first === 'object' && key in first;
}

/**
 * An MMLU CSV row with the subject taken from its file name.
 *
 * @example
 * ```ts
 * const [row] = await loadMmluCsv('mmlu/test', 'anatomy'); // row.subject === 'anatomy'
 * ```
 */
export type MmluCsvRecord = MmluCsvRow & { subject: string };

const SPLIT_SUFFIX = /_(test|dev|val|validation|train)\.csv$/i;

/**
 * Loads hendrycks MMLU CSVs (headerless `question,A,B,C,D,answer`; RFC 4180, fields may hold
 * commas, quotes and newlines). Given a file, loads it; given a directory, loads
 * `<subject>_<split>.csv` for `subject`, or every `*.csv` in name order when no subject is given.
 * The subject is the file name without the `_<split>.csv` suffix.
 *
 * @example
 * ```ts
 * const all = await loadMmluCsv(sharedDataPath('mmlu', 'test'));
 * all.length; // 14042
 * const ml = await loadMmluCsv(sharedDataPath('mmlu', 'test'), 'machine_learning');
 * ml.length; // 112
 * ml[0].subject; // 'machine_learning'
 * ```
 */
export async function loadMmluCsv(pathOrDir: string, subject?: string): Promise<MmluCsvRecord[]> {
  let isDir: boolean;
  try {
    isDir = (await stat(pathOrDir)).isDirectory();
  } catch (cause) {
    throw new DatasetsError(
      'FILE_NOT_FOUND',
      `cannot read ${pathOrDir}: expected an MMLU CSV file or a directory of them, got ${(cause as NodeJS.ErrnoException).code ?? 'an error'}`,
      { cause, file: pathOrDir },
    );
  }
  let files: string[];
  if (!isDir) {
    files = [pathOrDir];
  } else {
    const names = (await readdir(pathOrDir)).filter((n) => n.toLowerCase().endsWith('.csv')).sort();
    const chosen = subject === undefined ? names : names.filter((n) => subjectOf(n) === subject);
    if (chosen.length === 0) {
      const known = [...new Set(names.map(subjectOf))];
      const close = subject ? known.filter((k) => k.includes(subject) || subject.includes(k)) : [];
      throw new DatasetsError(
        'FILE_NOT_FOUND',
        `no MMLU CSV for ${subject === undefined ? 'any subject' : `subject "${subject}"`} in ${pathOrDir}: expected <subject>_<split>.csv, got ${names.length} CSV file(s)${close.length ? `\nDid you mean ${close.map((c) => `"${c}"`).join(', ')}?` : ''}`,
        { file: pathOrDir },
      );
    }
    files = chosen.map((n) => join(pathOrDir, n));
  }
  const out: MmluCsvRecord[] = [];
  for (const file of files) {
    const fileSubject = subject ?? subjectOf(basename(file));
    const { records } = await loadRecords(file, mmluCsvRowSchema, {
      format: 'csv',
      csv: { columns: MMLU_CSV_COLUMNS },
    });
    for (const row of nonEmpty(file, records, {})) out.push({ ...row, subject: fileSubject });
  }
  return out;
}

function subjectOf(fileName: string): string {
  return fileName.replace(SPLIT_SUFFIX, '').replace(/\.csv$/i, '');
}
