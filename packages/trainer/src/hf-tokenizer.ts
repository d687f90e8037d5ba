import { Tokenizer } from '@huggingface/tokenizers';
import type { Tokenizer as DatasetsTokenizer } from '@qlora/datasets';
import { TrainerError } from './errors';

/**
 * Options of {@link HfTokenizer.fromJson}.
 *
 * @example
 * ```ts
 * await HfTokenizer.fromDir('./TinyLlama', { verbatim: true }); // ids as the tokenizers library gives them
 * ```
 */
export interface HfTokenizerOptions {
  /**
   * Use `tokenizer.json` exactly as written (the `tokenizers` library's behaviour). By default a
   * SentencePiece-style Llama tokenizer whose `tokenizer_config.json` says `legacy: false` is
   * read the way transformers reads it (a Metaspace pre-tokenizer that prepends `▁` only at the
   * start of the text, not after special tokens), so ids match `AutoTokenizer`.
   */
  verbatim?: boolean;
}

type Json = Record<string, unknown>;

function tokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') {
    return (value as Json).content as string;
  }
  return null;
}

function isLegacyLlamaNormalizer(normalizer: unknown): boolean {
  if (!normalizer || typeof normalizer !== 'object') return false;
  const steps = (normalizer as Json).normalizers;
  if ((normalizer as Json).type !== 'Sequence' || !Array.isArray(steps)) return false;
  const types = steps.map((step) => (step as Json).type);
  return types.includes('Prepend') && types.includes('Replace') && types.length === 2;
}

/**
 * The transformers LlamaConverter for `legacy: false`: no normalizer, a Metaspace pre-tokenizer
 * with `prepend_scheme: "first"`. transformers 5 builds this from the same vocab and merges.
 */
function applyNonLegacy(json: Json): Json {
  return {
    ...json,
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
  };
}

/**
 * A Hugging Face tokenizer (`tokenizer.json` + `tokenizer_config.json`) through
 * `@huggingface/tokenizers`, implementing the `Tokenizer` interface of `@qlora/datasets`.
 * BOS/EOS are added as the file's post-processor defines them.
 *
 * @example
 * ```ts
 * const tok = await HfTokenizer.fromDir('./TinyLlama-1.1B-Chat-v1.0');
 * tok.encode('Hello world'); // [1, 15043, 3186]
 * tok.decode([1, 15043, 3186], { skipSpecialTokens: true }); // 'Hello world'
 * ```
 */
export class HfTokenizer implements DatasetsTokenizer {
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly vocabSize: number;
  /** `model_max_length` of tokenizer_config.json when finite, else null. */
  readonly modelMaxLength: number | null;
  private readonly inner: Tokenizer;

  private constructor(inner: Tokenizer, json: Json, config: Json) {
    this.inner = inner;
    const idOf = (key: string): [string | null, number | null] => {
      const text = tokenText(config[key]);
      if (text === null) return [null, null];
      return [text, inner.token_to_id(text) ?? null];
    };
    [this.bosToken, this.bosTokenId] = idOf('bos_token');
    [this.eosToken, this.eosTokenId] = idOf('eos_token');
    this.padTokenId = idOf('pad_token')[1];
    let maxId = -1;
    const vocab = ((json.model as Json | undefined)?.vocab ?? {}) as
      | Record<string, number>
      | unknown[];
    if (Array.isArray(vocab)) maxId = vocab.length - 1;
    else for (const id of Object.values(vocab)) maxId = Math.max(maxId, id);
    for (const added of (json.added_tokens ?? []) as Json[])
      maxId = Math.max(maxId, Number(added.id));
    this.vocabSize = maxId + 1;
    const maxLength = Number(config.model_max_length);
    this.modelMaxLength = Number.isFinite(maxLength) && maxLength < 1e12 ? maxLength : null;
  }

  /**
   * Builds a tokenizer from the parsed `tokenizer.json` and `tokenizer_config.json`.
   *
   * @example
   * ```ts
   * const tok = HfTokenizer.fromJson(JSON.parse(tokenizerJson), JSON.parse(configJson));
   * ```
   */
  static fromJson(
    tokenizerJson: unknown,
    tokenizerConfig: unknown = {},
    options: HfTokenizerOptions = {},
  ): HfTokenizer {
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
      throw new TrainerError(
        'E_TOKENIZER',
        'invalid tokenizer.json: expected an object with a "model" field, got something else. Hint: pass the parsed tokenizer.json, not tokenizer.model.',
      );
    }
    let json = tokenizerJson as Json;
    const config = (tokenizerConfig ?? {}) as Json;
    if (
      !options.verbatim &&
      config.legacy === false &&
      json.pre_tokenizer == null &&
      isLegacyLlamaNormalizer(json.normalizer)
    ) {
      json = applyNonLegacy(json);
    }
    try {
      return new HfTokenizer(new Tokenizer(json, config), json, config);
    } catch (error) {
      throw new TrainerError(
        'E_TOKENIZER',
        `tokenizer.json not loadable: expected a tokenizer @huggingface/tokenizers supports, got ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /**
   * Reads `tokenizer.json` and (if present) `tokenizer_config.json` from a folder (Node only).
   *
   * @example
   * ```ts
   * const tok = await HfTokenizer.fromDir('./model');
   * ```
   */
  static async fromDir(dir: string, options: HfTokenizerOptions = {}): Promise<HfTokenizer> {
    const { readFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    let json: unknown;
    try {
      json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8'));
    } catch (error) {
      throw new TrainerError(
        'E_TOKENIZER',
        `cannot read tokenizer: expected ${join(dir, 'tokenizer.json')}, got ${(error as Error).message}. Hint: only tokenizer.json is supported (not tokenizer.model).`,
        { cause: error },
      );
    }
    let config: unknown = {};
    try {
      config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
    } catch {
      // tokenizer_config.json is optional; without it there are no named BOS/EOS tokens.
    }
    return HfTokenizer.fromJson(json, config, options);
  }

  // A tokenizer.json from the internet can load and still fail later (e.g. a hostile
  // post_processor): encode and decode turn any such failure into a TrainerError.
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    try {
      return this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
    } catch (error) {
      throw new TrainerError(
        'E_TOKENIZER',
        `tokenizer.json could not encode a ${text.length}-character text: expected token ids, got ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    try {
      return this.inner.decode([...ids], {
        skip_special_tokens: options.skipSpecialTokens ?? false,
      });
    } catch (error) {
      throw new TrainerError(
        'E_TOKENIZER',
        `tokenizer.json could not decode ${ids.length} ids: expected ids in [0, ${this.vocabSize}), got ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /** The id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }
}
