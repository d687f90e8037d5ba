import { DatasetsError } from './errors';
import type { AlpacaRecord } from './schemas';
import { type PromptTemplate, type RenderedPrompt, renderPrompt } from './templates';
import type { Tokenizer } from './tokenizer';

/**
 * Label value the loss ignores (PyTorch `CrossEntropyLoss` `ignore_index`).
 *
 * @example
 * ```ts
 * example.labels.filter((l) => l !== IGNORE_INDEX).length; // trained positions
 * ```
 */
export const IGNORE_INDEX = -100;

/**
 * Options of {@link tokenizeForSft}.
 *
 * @example
 * ```ts
 * tokenizeForSft(record, tokenizer, { template: UNSLOTH_ALPACA_TEMPLATE, trainOnInputs: true, maxLength: 2048 });
 * ```
 */
export interface SftOptions {
  /** Template for Alpaca records; not needed when the input is already `{ prompt, response }`. */
  template?: PromptTemplate;
  /** Train on the prompt tokens too (Unsloth's Alpaca notebook does); default false (Stanford Alpaca). */
  trainOnInputs?: boolean;
  /** Append the tokenizer's EOS id unless the ids already end with it (default true). */
  addEos?: boolean;
  /** Apply the tokenizer's special-token post-processing, e.g. a leading BOS (default true). */
  addSpecialTokens?: boolean;
  /** Maximum sequence length in tokens, EOS included. */
  maxLength?: number;
  /**
   * What to do when the example is longer than `maxLength`: `'truncate'` (default) cuts the end
   * of the response (the EOS goes too) and keeps the whole prompt; `'drop'` returns null;
   * `'error'` throws. With `'truncate'`, an example whose prompt leaves no response token inside
   * `maxLength` (nothing to learn) throws `RECORD_TOO_LONG` (use `'drop'` to skip such records).
   */
  overflow?: 'truncate' | 'drop' | 'error';
}

/**
 * One tokenized training example. `labels[i]` is the target for position i before the causal shift.
 *
 * @example
 * ```ts
 * const { inputIds, labels, promptLength } = tokenizeForSft({ prompt: 'Q: 2+2?\nA:', response: ' 4' }, tokenizer);
 * ```
 */
export interface SftExample {
  inputIds: number[];
  /** `inputIds` with masked positions set to -100. */
  labels: number[];
  /** How many leading tokens belong to the prompt (BOS included). */
  promptLength: number;
  /** True when `maxLength` cut the response. */
  truncated: boolean;
  /**
   * True when the prompt's last token(s) merged with the response's first characters, so the
   * prompt tokenized alone is not a prefix of the full tokenization (see {@link tokenizeForSft}).
   */
  boundaryMerged: boolean;
}

/**
 * Tokenizes a prompt/response pair (or an Alpaca record with `options.template`) for supervised
 * fine-tuning: `inputIds` = tokenize(prompt + response) (+ EOS id), `labels` = the same with the
 * prompt positions set to -100 unless `trainOnInputs`.
 *
 * The boundary is exact: the full text and the prompt alone are both tokenized, and the prompt
 * length is the length of their longest common prefix. Normally the prompt ids are a full prefix.
 * When they are not — SentencePiece/BPE merged the prompt's last characters with the response's
 * first ones (e.g. Stanford's `### Response:` directly followed by the answer, `:N` + `o` instead
 * of `:` + `No`) — the merged token carries response text and is counted as response (trained),
 * which is also what a character-offset assignment gives. Stanford Alpaca's `train.py` instead
 * masks `len(tokenize(prompt))` positions, one token more in that case.
 *
 * BOS comes from the tokenizer (`addSpecialTokens`). EOS is appended as an id (equivalent to
 * appending the EOS string as Unsloth and Stanford do, for tokenizers that split special tokens).
 *
 * @example
 * ```ts
 * const ex = tokenizeForSft({ instruction: 'Say hi.', input: '', output: 'Hi' }, tokenizer, {
 *   template: STANFORD_ALPACA_TEMPLATE,
 *   maxLength: 512,
 * });
 * ex.inputIds.at(-1) === tokenizer.eosTokenId; // true
 * ex.labels.slice(0, ex.promptLength).every((l) => l === -100); // true
 * ```
 */
export function tokenizeForSft(
  example: RenderedPrompt | AlpacaRecord,
  tokenizer: Tokenizer,
  options: SftOptions & { overflow: 'drop' },
): SftExample | null;
/**
 * Tokenizes for SFT with prompt masking (see the first overload for the boundary rule).
 *
 * @example
 * ```ts
 * const { inputIds, labels } = tokenizeForSft({ prompt: 'Q: 2+2?\nA:', response: ' 4' }, tokenizer);
 * ```
 */
export function tokenizeForSft(
  example: RenderedPrompt | AlpacaRecord,
  tokenizer: Tokenizer,
  options?: SftOptions,
): SftExample;
export function tokenizeForSft(
  example: RenderedPrompt | AlpacaRecord,
  tokenizer: Tokenizer,
  options: SftOptions = {},
): SftExample | null {
  const rendered = toRendered(example, options.template);
  const addSpecialTokens = options.addSpecialTokens ?? true;
  const fullIds = tokenizer.encode(rendered.prompt + rendered.response, { addSpecialTokens });
  const promptIds = tokenizer.encode(rendered.prompt, { addSpecialTokens });
  let common = 0;
  const limit = Math.min(promptIds.length, fullIds.length);
  while (common < limit && promptIds[common] === fullIds[common]) common++;
  const boundaryMerged = common < promptIds.length;
  if (boundaryMerged) {
    // A merge across the boundary changes the last prompt token(s) only. A larger difference
    // means the tokenizer is not prefix-stable (or post-processing appends tokens); refuse.
    const eos = tokenizer.eosTokenId;
    const trailingEos = eos !== null && promptIds[promptIds.length - 1] === eos ? 1 : 0;
    if (promptIds.length - trailingEos - common > 2) {
      throw new DatasetsError(
        'TOKENIZATION_MISMATCH',
        `prompt tokens are not a prefix of the full tokenization: expected at most 2 differing tokens at the boundary, got ${promptIds.length - common} (prompt ${promptIds.length} tokens, common prefix ${common})\nHint: the tokenizer may append tokens in post-processing; try { addSpecialTokens: false } and add BOS yourself.`,
      );
    }
  }
  const inputIds = fullIds;
  const eos = tokenizer.eosTokenId;
  if ((options.addEos ?? true) && eos !== null && inputIds[inputIds.length - 1] !== eos) {
    inputIds.push(eos);
  }
  const promptLength = common;
  let truncated = false;
  const maxLength = options.maxLength;
  if (maxLength !== undefined && inputIds.length > maxLength) {
    const overflow = options.overflow ?? 'truncate';
    if (overflow === 'drop') return null;
    const tooLong = (what: string) =>
      new DatasetsError(
        'RECORD_TOO_LONG',
        `example too long: expected at most ${maxLength} tokens, got ${inputIds.length} (prompt ${promptLength})${what}\nHint: raise maxLength or pass { overflow: 'drop' } to skip such records.`,
      );
    if (overflow === 'error') throw tooLong('');
    if (promptLength >= maxLength && !options.trainOnInputs) {
      throw tooLong('; the prompt alone fills maxLength, so no response token would be trained');
    }
    inputIds.length = maxLength;
    truncated = true;
  }
  const labels = inputIds.slice();
  if (!options.trainOnInputs) {
    labels.fill(IGNORE_INDEX, 0, Math.min(promptLength, labels.length));
  }
  return { inputIds, labels, promptLength, truncated, boundaryMerged };
}

function toRendered(
  example: RenderedPrompt | AlpacaRecord,
  template: PromptTemplate | undefined,
): RenderedPrompt {
  if ('prompt' in example && 'response' in example) return example;
  if (!template) {
    throw new DatasetsError(
      'INVALID_ARGUMENT',
      'cannot tokenize an Alpaca record without a template: expected options.template (e.g. STANFORD_ALPACA_TEMPLATE), got none\nHint: or pass { prompt, response } from renderPrompt.',
    );
  }
  return renderPrompt(example, template);
}
