import { z } from 'zod';

/**
 * One Stanford Alpaca record (`alpaca_data.json`, `yahma/alpaca-cleaned`). A missing `input`
 * reads as `''` (some Alpaca-style sets omit it).
 *
 * @example
 * ```ts
 * alpacaRecordSchema.parse({ instruction: 'Add 2 and 3.', output: '5' });
 * // { instruction: 'Add 2 and 3.', input: '', output: '5' }
 * ```
 */
export const alpacaRecordSchema = z.object({
  instruction: z.string(),
  input: z.string().default(''),
  output: z.string(),
});
/**
 * A validated Alpaca record.
 *
 * @example
 * ```ts
 * const r: AlpacaRecord = { instruction: 'Say hi.', input: '', output: 'Hi' };
 * ```
 */
export type AlpacaRecord = z.output<typeof alpacaRecordSchema>;

/**
 * One GSM8K record (`openai/grade-school-math` jsonl, `openai/gsm8k` parquet). The answer must
 * contain the `#### <final answer>` line that lm-eval's filters read.
 *
 * @example
 * ```ts
 * gsm8kRecordSchema.parse({ question: 'What is 2+2?', answer: '2+2=<<2+2=4>>4\n#### 4' });
 * ```
 */
export const gsm8kRecordSchema = z.object({
  question: z.string(),
  answer: z.string().refine((answer) => answer.includes('#### '), {
    message: 'expected an answer ending in "#### <final answer>"',
  }),
});
/**
 * A validated GSM8K record.
 *
 * @example
 * ```ts
 * const r: Gsm8kRecord = { question: 'What is 2+2?', answer: '#### 4' };
 * ```
 */
export type Gsm8kRecord = z.output<typeof gsm8kRecordSchema>;

const choiceIndex = z.number().int().min(0).max(3);

/**
 * A label 0–3 given as a number (rowanz jsonl) or a digit string (Hugging Face `Rowan/hellaswag`);
 * the output is always a number.
 */
const hellaswagLabel = z.union([
  choiceIndex,
  z
    .string()
    .regex(/^[0-3]$/, 'expected a label "0"–"3" (the test split has no labels)')
    .transform(Number),
]);

/**
 * One raw HellaSwag record: the rowanz `hellaswag_val.jsonl` line, or a row of Hugging Face
 * `Rowan/hellaswag`. `label` may be a number or a digit string; the output label is a number.
 *
 * @example
 * ```ts
 * const r = hellaswagRawSchema.parse({ ind: 24, activity_label: 'Roof shingle removal',
 *   ctx_a: 'A man is sitting on a roof.', ctx_b: 'he', ctx: 'A man is sitting on a roof. he',
 *   endings: ['a', 'b', 'c', 'd'], source_id: 'activitynet~v_x', split: 'val',
 *   split_type: 'indomain', label: '3' });
 * r.label; // 3
 * ```
 */
export const hellaswagRawSchema = z.object({
  ind: z.number().int(),
  activity_label: z.string(),
  ctx_a: z.string(),
  ctx_b: z.string(),
  ctx: z.string(),
  endings: z.array(z.string()).length(4),
  source_id: z.string(),
  split: z.string(),
  split_type: z.string(),
  label: hellaswagLabel,
});
/**
 * A validated raw HellaSwag record (label normalised to a number).
 *
 * @example
 * ```ts
 * const [r] = (await loadHellaswag('hellaswag_val.jsonl')) as HellaswagRaw[]; // r.ctx_a, r.label: number
 * ```
 */
export type HellaswagRaw = z.output<typeof hellaswagRawSchema>;

/**
 * One record of the preprocessed HellaSwag validation set in `shared/data`
 * (`hellaswag_val_preprocessed.jsonl`, derived from klosax/hellaswag_text_data): bracket tags
 * already removed, `idx` = line index of the official `hellaswag_val.jsonl`.
 *
 * @example
 * ```ts
 * hellaswagPreprocessedSchema.parse({ idx: 0, activity_label: 'Roof shingle removal',
 *   ctx: 'A man is sitting on a roof. he', endings: ['a', 'b', 'c', 'd'], label: 3 });
 * ```
 */
export const hellaswagPreprocessedSchema = z.object({
  idx: z.number().int().min(0),
  activity_label: z.string(),
  ctx: z.string(),
  endings: z.array(z.string()).length(4),
  label: hellaswagLabel,
});
/**
 * A validated preprocessed HellaSwag record.
 *
 * @example
 * ```ts
 * const [r] = (await loadHellaswag('hellaswag_val_preprocessed.jsonl')) as HellaswagPreprocessed[]; // r.idx
 * ```
 */
export type HellaswagPreprocessed = z.output<typeof hellaswagPreprocessedSchema>;

/**
 * Either HellaSwag shape; tell them apart with `'ctx_a' in record`.
 *
 * @example
 * ```ts
 * const text = 'ctx_a' in record ? `${record.ctx_a} ${record.ctx_b}` : record.ctx;
 * ```
 */
export type HellaswagRecord = HellaswagRaw | HellaswagPreprocessed;

/**
 * Column names of the hendrycks MMLU CSVs, which have no header row.
 *
 * @example
 * ```ts
 * await loadRecords('mmlu/test/anatomy_test.csv', mmluCsvRowSchema, { csv: { columns: MMLU_CSV_COLUMNS } });
 * ```
 */
export const MMLU_CSV_COLUMNS: readonly string[] = ['question', 'A', 'B', 'C', 'D', 'answer'];

/**
 * One row of a hendrycks MMLU CSV (`question,A,B,C,D,answer`, answer a letter).
 *
 * @example
 * ```ts
 * mmluCsvRowSchema.parse({ question: 'Q?', A: '1', B: '2', C: '3', D: '4', answer: 'B' });
 * ```
 */
export const mmluCsvRowSchema = z.object({
  question: z.string(),
  A: z.string(),
  B: z.string(),
  C: z.string(),
  D: z.string(),
  answer: z.enum(['A', 'B', 'C', 'D']),
});
/**
 * A validated MMLU CSV row.
 *
 * @example
 * ```ts
 * const row: MmluCsvRow = { question: 'Q?', A: '1', B: '2', C: '3', D: '4', answer: 'B' };
 * ```
 */
export type MmluCsvRow = z.output<typeof mmluCsvRowSchema>;

/**
 * One row of Hugging Face `cais/mmlu` parquet: `{question, subject, choices[4], answer}` with
 * `answer` an index 0–3 (a ClassLabel stored as INT64; the loader turns BigInt into number, and
 * BigInt is accepted here too).
 *
 * @example
 * ```ts
 * mmluParquetSchema.parse({ question: 'Q?', subject: 'anatomy', choices: ['1', '2', '3', '4'], answer: 1n });
 * // { …, answer: 1 }
 * ```
 */
export const mmluParquetSchema = z.object({
  question: z.string(),
  subject: z.string(),
  choices: z.array(z.string()).length(4),
  answer: z.union([choiceIndex, z.bigint().min(0n).max(3n).transform(Number)]),
});
/**
 * A validated `cais/mmlu` row; also the common shape {@link toMmluItem} produces from CSV rows.
 *
 * @example
 * ```ts
 * const item: MmluItem = { question: 'Q?', subject: 'anatomy', choices: ['1', '2', '3', '4'], answer: 1 };
 * ```
 */
export type MmluItem = z.output<typeof mmluParquetSchema>;

/**
 * Converts a hendrycks CSV row to the `cais/mmlu` shape (`choices` array, `answer` index).
 *
 * @example
 * ```ts
 * toMmluItem({ question: 'Q?', A: '1', B: '2', C: '3', D: '4', answer: 'C' }, 'anatomy');
 * // { question: 'Q?', subject: 'anatomy', choices: ['1', '2', '3', '4'], answer: 2 }
 * ```
 */
export function toMmluItem(row: MmluCsvRow, subject: string): MmluItem {
  return {
    question: row.question,
    subject,
    choices: [row.A, row.B, row.C, row.D],
    answer: 'ABCD'.indexOf(row.answer),
  };
}
