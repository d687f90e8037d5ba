/**
 * Stable machine-readable codes for {@link DatasetsError}.
 *
 * - `FILE_NOT_FOUND`: the path does not exist or cannot be read.
 * - `UNKNOWN_FORMAT`: the format cannot be told from the extension and none was given.
 * - `PARSE_FAILED`: a JSON/JSONL line, a CSV record or a parquet file is malformed (or a parquet page exceeds its bounds).
 * - `INVALID_RECORD`: a record parsed but failed its zod schema.
 * - `INVALID_ARGUMENT`: a function got an argument outside its contract (n > length, bad weight…).
 * - `TOKENIZATION_MISMATCH`: prompt and full text tokenize inconsistently beyond the documented case.
 * - `RECORD_TOO_LONG`: a record exceeds `maxLength` and the policy is `'error'`.
 * - `TEMPLATE_FAILED`: a chat template is missing, fails to render, or exceeds a rendering bound.
 * - `EMPTY_DATASET`: a file or sequence list that must hold records holds none.
 *
 * @example
 * ```ts
 * if (error instanceof DatasetsError && error.code === 'INVALID_RECORD') console.log(error.line);
 * ```
 */
export type DatasetsErrorCode =
  | 'FILE_NOT_FOUND'
  | 'UNKNOWN_FORMAT'
  | 'PARSE_FAILED'
  | 'INVALID_RECORD'
  | 'INVALID_ARGUMENT'
  | 'TOKENIZATION_MISMATCH'
  | 'RECORD_TOO_LONG'
  | 'TEMPLATE_FAILED'
  | 'EMPTY_DATASET';

/**
 * Where in a data file an error happened; every field is optional because not all apply.
 *
 * @example
 * ```ts
 * const where: DatasetsErrorLocation = { file: 'train.jsonl', line: 17, record: 16, path: ['answer'] };
 * ```
 */
export interface DatasetsErrorLocation {
  /** The file that was being read. */
  file?: string;
  /** 1-based line number where the record starts (json, jsonl, csv). */
  line?: number;
  /** 0-based record index within the file (data records, the CSV header excluded). */
  record?: number;
  /** 0-based parquet row group. */
  rowGroup?: number;
  /** Field path inside the record, e.g. `['endings', 2]`. */
  path?: readonly (string | number)[];
}

/**
 * The error class `@qlora/datasets` throws. Messages read
 * `[@qlora/datasets] <what failed>: expected <x>, got <y>`, then a hint; data errors carry the
 * file, line (or record / row group) and field path as fields too.
 *
 * @example
 * ```ts
 * try {
 *   await loadRecords('train.jsonl', gsm8kRecordSchema);
 * } catch (error) {
 *   if (error instanceof DatasetsError && error.code === 'INVALID_RECORD') {
 *     console.log(error.file, error.line, error.path); // 'train.jsonl' 17 ['answer']
 *   }
 * }
 * ```
 */
export class DatasetsError extends Error {
  override readonly name: string = 'DatasetsError';
  readonly code: DatasetsErrorCode;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly record: number | undefined;
  readonly rowGroup: number | undefined;
  readonly path: readonly (string | number)[] | undefined;

  constructor(
    code: DatasetsErrorCode,
    message: string,
    options?: { cause?: unknown } & DatasetsErrorLocation,
  ) {
    super(
      `[@qlora/datasets] ${message}`,
      options?.cause !== undefined ? { cause: options.cause } : {},
    );
    this.code = code;
    this.file = options?.file;
    this.line = options?.line;
    this.record = options?.record;
    this.rowGroup = options?.rowGroup;
    this.path = options?.path;
  }
}
