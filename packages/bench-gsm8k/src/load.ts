import { loadGsm8k } from '@qlora/datasets';
import type { Gsm8kDoc } from './prompts';

/**
 * Loads GSM8K docs (`openai/grade-school-math` jsonl or `openai/gsm8k` parquet), validated.
 *
 * @example
 * ```ts
 * const test = await loadGsm8kDocs('data/gsm8k/test.jsonl'); // 1319 docs
 * ```
 */
export async function loadGsm8kDocs(
  path: string,
  options: { limit?: number } = {},
): Promise<Gsm8kDoc[]> {
  return loadGsm8k(path, options);
}
