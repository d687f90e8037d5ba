import { formatFromPath, type LoadHellaswagOptions, loadHellaswag } from '@qlora/datasets';
import { type HellaswagDoc, processHellaswagDoc, processPreprocessedHellaswagDoc } from './process';

/** Options of {@link loadHellaswagDocs}. */
export interface LoadHellaswagDocsOptions extends LoadHellaswagOptions {
  /**
   * How `label` is kept in the doc (it only shows in samples logs and `doc_hash`): `'string'` as
   * `Rowan/hellaswag` stores it, `'number'` as rowanz jsonl does. Default: `'string'` for parquet
   * (a Hugging Face export), `'number'` otherwise.
   */
  labelType?: 'number' | 'string';
}

/**
 * Loads HellaSwag records and applies lm-eval's `process_docs`: the raw schema (rowanz jsonl or
 * `Rowan/hellaswag` parquet/jsonl; exact lm-eval prompts) or the preprocessed variant in
 * `shared/data` (full 10042-doc validation set; see {@link processPreprocessedHellaswagDoc} for
 * how its prompts differ).
 *
 * @example
 * ```ts
 * const docs = await loadHellaswagDocs('data/hellaswag/hellaswag_val_raw_subset1000.jsonl');
 * docs[0].query; // 'Pole vault: Pole vault is a sport … A few women'
 * ```
 */
export async function loadHellaswagDocs(
  path: string,
  options: LoadHellaswagDocsOptions = {},
): Promise<HellaswagDoc[]> {
  const { labelType, ...loadOptions } = options;
  const records = await loadHellaswag(path, loadOptions);
  const format = loadOptions.format ?? formatFromPath(path);
  const asString = (labelType ?? (format === 'parquet' ? 'string' : 'number')) === 'string';
  return records.map((record) => {
    const doc: HellaswagDoc =
      'ctx_a' in record ? processHellaswagDoc(record) : processPreprocessedHellaswagDoc(record);
    if (asString) doc.label = String(doc.label);
    return doc;
  });
}
