import { createReadStream } from 'node:fs';
import { access, open, readFile } from 'node:fs/promises';
import { CsvError, parse as parseCsv } from 'csv-parse';
import {
  type AsyncBuffer,
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
  type SchemaTree,
} from 'hyparquet';
import { z } from 'zod';
import {
  arrayElementOffset,
  expectedOf,
  formatPath,
  issuePath,
  lineColumnAt,
  preview,
  valueAtPath,
} from './_locate';
import { type ColumnLevels, checkColumnChunkPages, snappyDecompress } from './_parquet-pages';
import { DatasetsError } from './errors';

/**
 * File formats `loadRecords` reads.
 *
 * @example
 * ```ts
 * await loadRecords('shard.bin', schema, { format: 'parquet' satisfies DataFormat });
 * ```
 */
export type DataFormat = 'json' | 'jsonl' | 'csv' | 'parquet';

/**
 * CSV options. Without `columns` the first row is the header.
 *
 * @example
 * ```ts
 * await loadRecords('rows.csv', schema, { csv: { columns: ['question', 'answer'], header: false } });
 * ```
 */
export interface CsvOptions {
  /**
   * Column names for a headerless file (e.g. hendrycks MMLU `question,A,B,C,D,answer`). When
   * given, the first row is data unless `header: true` (then the header row is skipped and these
   * names are used instead).
   */
  columns?: readonly string[];
  /** Whether the first row is a header. Default: `true` without `columns`, `false` with them. */
  header?: boolean;
  /** Field delimiter, default `,`. */
  delimiter?: string;
}

/**
 * A record that failed to parse or validate and was skipped (`onInvalid: 'skip'`).
 *
 * @example
 * ```ts
 * const { skipped } = await loadRecords('dirty.jsonl', schema, { onInvalid: 'skip' });
 * skipped[0]; // { file: 'dirty.jsonl', line: 3, record: 2, path: ['answer'], message: '…' }
 * ```
 */
export interface SkippedRecord {
  file: string;
  /** 1-based line where the record starts (json, jsonl, csv). */
  line?: number;
  /** 0-based record index in the file. */
  record: number;
  /** 0-based parquet row group. */
  rowGroup?: number;
  /** Field path of the first problem; empty for parse errors. */
  path: (string | number)[];
  /** The full message, as the thrown error would have had it. */
  message: string;
}

/**
 * Options of {@link loadRecords} and {@link streamRecords}.
 *
 * @example
 * ```ts
 * await loadRecords('train.jsonl', schema, { onInvalid: 'skip', limit: 1000 });
 * ```
 */
export interface LoadOptions {
  /** Format; default from the extension (`.json`, `.jsonl`/`.ndjson`, `.csv`, `.parquet`). */
  format?: DataFormat;
  /** `'throw'` (default) stops at the first bad record; `'skip'` drops and reports it. */
  onInvalid?: 'throw' | 'skip';
  /** CSV layout. */
  csv?: CsvOptions;
  /** Stop after this many valid records. */
  limit?: number;
  /** Called for every skipped record (streaming callers collect their own report). */
  onSkip?: (skipped: SkippedRecord) => void;
}

/**
 * What {@link loadRecords} returns.
 *
 * @example
 * ```ts
 * const { records, skippedCount } = await loadRecords('train.jsonl', gsm8kRecordSchema);
 * ```
 */
export interface LoadResult<T> {
  records: T[];
  /** The first `maxReportedSkips` (100) skipped records, in file order. */
  skipped: SkippedRecord[];
  /** How many records were skipped in total (may exceed `skipped.length`). */
  skippedCount: number;
}

const MAX_REPORTED_SKIPS = 100;

interface Located {
  value: unknown;
  record: number;
  line?: number;
  rowGroup?: number;
}

/** A parse failure that `'skip'` mode may step over (a bad JSONL line, a wrong CSV field count). */
class RecoverableParseError {
  constructor(
    readonly error: DatasetsError,
    readonly record: number,
    readonly line: number,
  ) {}
}

/**
 * The format a path implies by its extension, or undefined.
 *
 * @example
 * ```ts
 * formatFromPath('data/train-00000-of-00001.parquet'); // 'parquet'
 * formatFromPath('gsm8k/test.jsonl'); // 'jsonl'
 * ```
 */
export function formatFromPath(path: string): DataFormat | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.parquet')) return 'parquet';
  return undefined;
}

/**
 * Streams the validated records of a json (array), jsonl, csv or parquet file. JSONL is read line
 * by line, CSV through the csv-parse stream, parquet one row group at a time; a JSON array is
 * parsed whole (JSON has no record boundaries to stream on). A `.json` file whose first character
 * is `{` is read as JSON Lines (e.g. QLoRA's `zero_shot_mmlu_val.json`).
 *
 * Errors name the file, the line (or record index / row group) and the field path, and include
 * `z.prettifyError` output. With `onInvalid: 'skip'` bad records go to `onSkip` instead; CSV
 * quoting errors and broken JSON arrays or parquet files always throw (nothing to resume from).
 *
 * @example
 * ```ts
 * for await (const row of streamRecords('gsm8k/train.jsonl', gsm8kRecordSchema)) {
 *   console.log(row.question); // 'Natalia sold clips to 48 of her friends in April, …'
 *   break;
 * }
 * ```
 */
export async function* streamRecords<S extends z.ZodType>(
  path: string,
  schema: S,
  options: LoadOptions = {},
): AsyncGenerator<z.output<S>, void, undefined> {
  const format = await resolveFormat(path, options.format);
  const skip = options.onInvalid === 'skip';
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (limit <= 0) return;
  let jsonText: string | undefined;
  const source: AsyncIterable<Located | RecoverableParseError> =
    format === 'jsonl'
      ? readJsonl(path)
      : format === 'csv'
        ? readCsv(path, options.csv ?? {})
        : format === 'parquet'
          ? readParquet(path)
          : readJsonArray(path, (text) => {
              jsonText = text;
            });
  let emitted = 0;
  for await (const item of source) {
    if (item instanceof RecoverableParseError) {
      if (!skip) throw item.error;
      options.onSkip?.({
        file: path,
        line: item.line,
        record: item.record,
        path: [],
        message: item.error.message,
      });
      continue;
    }
    const parsed = schema.safeParse(item.value);
    if (parsed.success) {
      yield parsed.data;
      emitted++;
      if (emitted >= limit) return;
      continue;
    }
    const line =
      item.line ?? (jsonText !== undefined ? jsonArrayLine(jsonText, item.record) : undefined);
    const error = invalidRecordError(path, { ...item, line }, parsed.error);
    if (!skip) throw error;
    options.onSkip?.({
      file: path,
      ...(line !== undefined ? { line } : {}),
      record: item.record,
      ...(item.rowGroup !== undefined ? { rowGroup: item.rowGroup } : {}),
      path: error.path ? [...error.path] : [],
      message: error.message,
    });
  }
}

/**
 * Loads and validates every record of a json (array), jsonl, csv or parquet file (format from the
 * extension or `options.format`). See {@link streamRecords} for streaming and error details.
 *
 * @example
 * ```ts
 * const { records, skippedCount } = await loadRecords('alpaca_5000.json', alpacaRecordSchema);
 * records.length; // 5000
 * skippedCount; // 0
 * const lenient = await loadRecords('dirty.jsonl', gsm8kRecordSchema, { onInvalid: 'skip' });
 * lenient.skipped[0]; // { file: 'dirty.jsonl', line: 3, record: 2, path: ['answer'], message: '…' }
 * ```
 */
export async function loadRecords<S extends z.ZodType>(
  path: string,
  schema: S,
  options: LoadOptions = {},
): Promise<LoadResult<z.output<S>>> {
  const records: z.output<S>[] = [];
  const skipped: SkippedRecord[] = [];
  let skippedCount = 0;
  const stream = streamRecords(path, schema, {
    ...options,
    onSkip: (entry) => {
      skippedCount++;
      if (skipped.length < MAX_REPORTED_SKIPS) skipped.push(entry);
      options.onSkip?.(entry);
    },
  });
  for await (const record of stream) records.push(record);
  return { records, skipped, skippedCount };
}

async function resolveFormat(path: string, explicit: DataFormat | undefined): Promise<DataFormat> {
  try {
    await access(path);
  } catch (cause) {
    throw new DatasetsError(
      'FILE_NOT_FOUND',
      `cannot read ${path}: expected an existing readable file, got ${(cause as NodeJS.ErrnoException).code ?? 'an error'}\nHint: paths are resolved from the current directory (${process.cwd()}).`,
      { cause, file: path },
    );
  }
  const format = explicit ?? formatFromPath(path);
  if (!format) {
    throw new DatasetsError(
      'UNKNOWN_FORMAT',
      `cannot tell the format of ${path}: expected an extension .json, .jsonl, .csv or .parquet, got "${path.split('/').pop() ?? path}"\nHint: pass { format: 'jsonl' } (or json, csv, parquet).`,
      { file: path },
    );
  }
  return format;
}

function invalidRecordError(path: string, item: Located, error: z.ZodError): DatasetsError {
  const issue = error.issues[0];
  const fieldPath = issuePath(issue);
  const where = describeWhere(path, item);
  const got = preview(valueAtPath(item.value, issue?.path ?? []));
  const more = error.issues.length > 1 ? ` (+${error.issues.length - 1} more issue(s))` : '';
  return new DatasetsError(
    'INVALID_RECORD',
    `invalid record at ${where}, field ${formatPath(fieldPath)}: expected ${expectedOf(issue)}, got ${got}${more}\n${z.prettifyError(error)}\nHint: fix the record, or load with { onInvalid: 'skip' } to drop and count bad records.`,
    {
      cause: error,
      file: path,
      ...(item.line !== undefined ? { line: item.line } : {}),
      record: item.record,
      ...(item.rowGroup !== undefined ? { rowGroup: item.rowGroup } : {}),
      path: fieldPath,
    },
  );
}

function describeWhere(
  path: string,
  item: { record: number; line?: number; rowGroup?: number },
): string {
  if (item.line !== undefined) return `${path}:${item.line} (record ${item.record})`;
  if (item.rowGroup !== undefined)
    return `${path} row group ${item.rowGroup} (record ${item.record})`;
  return `${path} (record ${item.record})`;
}

function jsonArrayLine(text: string, record: number): number | undefined {
  const offset = arrayElementOffset(text, record);
  return offset >= 0 ? lineColumnAt(text, offset).line : undefined;
}

async function* readJsonl(path: string): AsyncGenerator<Located | RecoverableParseError> {
  let lineNumber = 0;
  let record = 0;
  for await (const raw of readLines(path)) {
    lineNumber++;
    // A UTF-8 BOM on the first line is not part of the JSON.
    const text = lineNumber === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      yield new RecoverableParseError(
        new DatasetsError(
          'PARSE_FAILED',
          `cannot parse ${path}:${lineNumber} (record ${record}): expected one JSON value per line, got ${preview(text, 60)} (${(cause as Error).message})\nHint: a truncated last line or an unescaped newline inside a string breaks JSON Lines.`,
          { cause, file: path, line: lineNumber, record },
        ),
        record,
        lineNumber,
      );
      record++;
      continue;
    }
    yield { value, record, line: lineNumber };
    record++;
  }
}

/**
 * Lines of a UTF-8 file, streamed in 1 MiB chunks (the stream's decoder keeps multi-byte
 * characters whole across chunks). Splits on `\n` and drops a trailing `\r`; faster than
 * `node:readline` for many short lines.
 */
async function* readLines(path: string): AsyncGenerator<string> {
  let carry = '';
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const text = carry + (chunk as string);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      yield text.slice(start, end);
      start = nl + 1;
    }
    carry = text.slice(start);
  }
  if (carry !== '') yield carry.endsWith('\r') ? carry.slice(0, -1) : carry;
}

async function* readJsonArray(
  path: string,
  keepText: (text: string) => void,
): AsyncGenerator<Located | RecoverableParseError> {
  let text = await readFile(path, 'utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const first = text.trimStart()[0];
  if (first === '{') {
    // JSON Lines stored under a .json name.
    yield* readJsonl(path);
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const message = (cause as Error).message;
    const position = /position (\d+)/.exec(message);
    const lineMatch = /line (\d+)/.exec(message);
    const at = position?.[1]
      ? lineColumnAt(text, Number(position[1]))
      : lineMatch?.[1]
        ? { line: Number(lineMatch[1]), column: undefined }
        : undefined;
    throw new DatasetsError(
      'PARSE_FAILED',
      `cannot parse ${path}${at ? `:${at.line}${at.column !== undefined ? `:${at.column}` : ''}` : ''}: expected a JSON array of records, got invalid JSON (${message})\nHint: check for a truncated file or a trailing comma.`,
      { cause, file: path, ...(at ? { line: at.line } : {}) },
    );
  }
  if (!Array.isArray(value)) {
    throw new DatasetsError(
      'PARSE_FAILED',
      `cannot read ${path}: expected a JSON array of records, got ${value === null ? 'null' : typeof value}\nHint: JSON Lines files should end in .jsonl (or pass { format: 'jsonl' }).`,
      { file: path },
    );
  }
  keepText(text);
  for (let i = 0; i < value.length; i++) yield { value: value[i], record: i };
}

async function* readCsv(
  path: string,
  options: CsvOptions,
): AsyncGenerator<Located | RecoverableParseError> {
  const names = options.columns ? [...options.columns] : undefined;
  const hasHeader = options.header ?? names === undefined;
  let parsedEndLine = 0;
  let parsedRecords = 0;
  const parser = createReadStream(path).pipe(
    parseCsv({
      bom: true,
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      delimiter: options.delimiter ?? ',',
      // Runs inside the parser, ahead of the buffered async iteration: on a parse error it tells
      // where the last good record ended, so the failing record's start line is known.
      on_record: (parsed, context) => {
        parsedEndLine = context.lines;
        parsedRecords++;
        return parsed;
      },
    }),
  );
  let columns = names;
  let record = 0;
  let headerSeen = !hasHeader;
  let lastEndLine = 0;
  let emptySeen = 0;
  try {
    for await (const row of parser as AsyncIterable<{
      record: string[];
      info: { lines: number; empty_lines: number };
    }>) {
      // info.lines is the line the record ended on; it started after the previous record and any
      // empty lines skipped since.
      const line = lastEndLine + 1 + (row.info.empty_lines - emptySeen);
      emptySeen = row.info.empty_lines;
      lastEndLine = row.info.lines;
      if (!headerSeen) {
        headerSeen = true;
        if (!columns) columns = row.record;
        continue;
      }
      const fields = row.record;
      const cols = columns ?? [];
      if (fields.length !== cols.length) {
        yield new RecoverableParseError(
          new DatasetsError(
            'PARSE_FAILED',
            `wrong field count at ${path}:${line} (record ${record}): expected ${cols.length} fields (${cols.join(',')}), got ${fields.length}\nHint: a field containing a comma, quote or newline must be quoted ("a, b"), with inner quotes doubled ("").`,
            { file: path, line, record },
          ),
          record,
          line,
        );
        record++;
        continue;
      }
      // fromEntries defines own keys, so a "__proto__" column stays a column.
      const value: Record<string, string> = Object.fromEntries(
        cols.map((name, i) => [name, fields[i] as string]),
      );
      yield { value, record, line };
      record++;
    }
  } catch (cause) {
    if (cause instanceof DatasetsError) throw cause;
    // The failing record starts right after the last one parsed; csv-parse reports where it gave up.
    const line = parsedEndLine + 1;
    const failedRecord = parsedRecords - (hasHeader ? 1 : 0);
    const gaveUp =
      cause instanceof CsvError && typeof cause.lines === 'number' ? cause.lines : undefined;
    throw new DatasetsError(
      'PARSE_FAILED',
      `cannot parse ${path}:${line} (record ${failedRecord}${gaveUp !== undefined && gaveUp !== line ? `, parser stopped at line ${gaveUp}` : ''}): expected RFC 4180 CSV, got ${(cause as Error).message}\nHint: quoted fields must close their quote; inner quotes are doubled ("").`,
      { cause, file: path, line, record: failedRecord },
    );
  }
}

/** BigInt values (parquet INT64) become numbers when they fit exactly, else stay BigInt. */
function normalizeBigInts(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value;
  }
  if (Array.isArray(value)) return value.map(normalizeBigInts);
  if (
    value !== null &&
    typeof value === 'object' &&
    !(value instanceof Date) &&
    !ArrayBuffer.isView(value)
  ) {
    // fromEntries defines own keys: a "__proto__" column must not become the prototype.
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [key, normalizeBigInts(inner)]),
    );
  }
  return value;
}

/** A parquet file read through one descriptor, closed only after every read has settled. */
interface ParquetSource {
  file: AsyncBuffer;
  close(): Promise<void>;
}

/**
 * hyparquet starts several column-chunk reads at once and stops awaiting the rest when one chunk
 * fails to decode. Its own `asyncBufferFromFile` reopens the file by name for every read, so a
 * read still in flight after the error rejected (ENOENT) with nobody listening once the file was
 * moved or deleted, and an unhandled rejection ends a Node process. Here every read goes through
 * one open descriptor (valid while the file is renamed or unlinked), reads are clamped to the
 * file (a footer cannot ask for more bytes than exist), and `close` waits for stragglers.
 */
async function openParquetSource(path: string): Promise<ParquetSource> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  const inFlight = new Set<Promise<ArrayBuffer>>();
  const readRange = async (start: number, end: number): Promise<ArrayBuffer> => {
    const from = Math.min(Math.max(0, start), size);
    const length = Math.max(0, Math.min(end, size) - from);
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(bytes, done, length - done, from + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return bytes.buffer.slice(0, done);
  };
  return {
    file: {
      byteLength: size,
      slice(start: number, end?: number) {
        const read = readRange(start, end ?? size);
        inFlight.add(read);
        const forget = (): void => {
          inFlight.delete(read);
        };
        read.then(forget, forget);
        return read;
      },
    },
    async close() {
      await Promise.allSettled([...inFlight]);
      await handle.close();
    },
  };
}

/**
 * Every row group must hold exactly the schema's leaf columns. hyparquet reads a column chunk
 * whose path is not in the schema but never awaits it, so its decode error surfaced as an
 * unhandled rejection that ended the process (found by fuzzing: a flipped byte in a column
 * name, `choices.list.elemenQ`).
 */
function checkColumnChunks(
  path: string,
  metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>,
): void {
  const schema = metadata.schema;
  const leaves = new Set<string>();
  let next = 1;
  const walk = (prefix: readonly string[], children: number): void => {
    for (let c = 0; c < children && next < schema.length; c++) {
      const element = schema[next++];
      if (element === undefined) return;
      const at = [...prefix, element.name];
      if (element.num_children) walk(at, element.num_children);
      else leaves.add(at.join('.'));
    }
  };
  walk([], schema[0]?.num_children ?? 0);
  metadata.row_groups.forEach((group, index) => {
    const seen = new Set<string>();
    for (const chunk of group.columns) {
      const column = chunk.meta_data?.path_in_schema.join('.') ?? '';
      if (!leaves.has(column) || seen.has(column)) {
        throw new DatasetsError(
          'PARSE_FAILED',
          `cannot read ${path} row group ${index}: expected one column chunk per schema column (${[...leaves].join(', ')}), got ${seen.has(column) ? 'a repeated' : 'an unknown'} column "${column}"\nHint: the file is corrupt; re-download or re-export it.`,
          { file: path, rowGroup: index },
        );
      }
      seen.add(column);
    }
  });
}

/**
 * The levels hyparquet derives for a column from the schema (`getTreePath`,
 * `getMaxDefinitionLevel`, `getMaxRepetitionLevel` in hyparquet), or undefined when hyparquet
 * could not find the column (it then fails itself, with an error the loader wraps).
 */
function columnLevels(tree: SchemaTree, pathInSchema: readonly string[]): ColumnLevels | undefined {
  const path = [tree];
  let node = tree;
  for (const part of pathInSchema) {
    const child = node.children.find((c) => c.element.name === part);
    if (child === undefined) return undefined;
    path.push(child);
    node = child;
  }
  let maxRepetitionLevel = 0;
  let maxDefinitionLevel = 0;
  path.forEach(({ element }, depth) => {
    if (element.repetition_type === 'REPEATED') maxRepetitionLevel++;
    if (depth > 0 && element.repetition_type !== 'REQUIRED') maxDefinitionLevel++;
  });
  return {
    physicalType: node.element.type,
    typeLength: node.element.type_length,
    maxDefinitionLevel,
    maxRepetitionLevel,
    pathLength: path.length,
  };
}

/**
 * Every page header, and every RLE / bit-packed run inside every data page, within bounds (see
 * `_parquet-pages.ts`), before hyparquet decodes any.
 */
async function checkPages(
  path: string,
  source: ParquetSource,
  metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>,
): Promise<void> {
  const size = source.file.byteLength;
  let tree: SchemaTree;
  try {
    tree = parquetSchema(metadata);
  } catch (cause) {
    throw new DatasetsError(
      'PARSE_FAILED',
      `cannot read ${path}: expected a schema whose elements hold their declared children, got ${(cause as Error).message}\nHint: the file is corrupt; re-download or re-export it.`,
      { cause, file: path },
    );
  }
  for (const [index, group] of metadata.row_groups.entries()) {
    for (const chunk of group.columns) {
      const meta = chunk.meta_data;
      if (meta === undefined) continue;
      const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
      const end = start + Number(meta.total_compressed_size);
      const column = meta.path_in_schema.join('.');
      const fail = (where: string, expected: string, got: string): never => {
        throw new DatasetsError(
          'PARSE_FAILED',
          `cannot read ${path} row group ${index} column "${column}"${where}: expected ${expected}, got ${got}\nHint: the file is corrupt; re-download or re-export it.`,
          { file: path, rowGroup: index },
        );
      };
      if (!(start >= 0 && end >= start && end <= size)) {
        fail('', 'a column chunk inside the file', `bytes ${start}–${end} of a ${size}-byte file`);
      }
      const levels = columnLevels(tree, meta.path_in_schema);
      if (levels === undefined) {
        fail('', 'a column chunk of a schema column', `"${column}", not in the schema`);
      }
      const bytes = new Uint8Array(await source.file.slice(start, end));
      const problem = checkColumnChunkPages(
        bytes,
        meta.codec,
        Number(meta.num_values),
        levels as ColumnLevels,
      );
      if (problem !== undefined) {
        fail(` page ${problem.page} (byte ${start + problem.byte})`, problem.expected, problem.got);
      }
    }
  }
}

async function* readParquet(path: string): AsyncGenerator<Located> {
  let source: ParquetSource | undefined;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    source = await openParquetSource(path);
    metadata = await parquetMetadataAsync(source.file);
  } catch (cause) {
    await source?.close();
    throw new DatasetsError(
      'PARSE_FAILED',
      `cannot read parquet file ${path}: expected a parquet file (PAR1 magic and a valid footer), got ${(cause as Error).message}\nHint: a truncated download or a Git LFS pointer file looks like this.`,
      { cause, file: path },
    );
  }
  try {
    checkColumnChunks(path, metadata);
    await checkPages(path, source, metadata);
    let rowStart = 0;
    for (let group = 0; group < metadata.row_groups.length; group++) {
      const rows = Number(metadata.row_groups[group]?.num_rows ?? 0);
      const rowEnd = rowStart + rows;
      let objects: Record<string, unknown>[];
      try {
        objects = await parquetReadObjects({
          file: source.file,
          metadata,
          // hyparquet's snappy decoder loops forever on some hostile streams; this one throws.
          compressors: { SNAPPY: snappyDecompress },
          rowStart,
          rowEnd,
          rowFormat: 'object',
        });
      } catch (cause) {
        throw new DatasetsError(
          'PARSE_FAILED',
          `cannot decode ${path} row group ${group} (records ${rowStart}–${rowEnd - 1}): expected readable column chunks, got ${(cause as Error).message}\nHint: hyparquet reads uncompressed and snappy data; other codecs need hyparquet-compressors.`,
          { cause, file: path, rowGroup: group, record: rowStart },
        );
      }
      for (let i = 0; i < objects.length; i++) {
        yield { value: normalizeBigInts(objects[i]), record: rowStart + i, rowGroup: group };
      }
      rowStart = rowEnd;
    }
  } finally {
    await source.close();
  }
}
