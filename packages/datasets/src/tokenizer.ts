/**
 * The tokenizer surface the data pipeline needs. `@qlora/trainer` implements it with
 * `@huggingface/tokenizers`; tests can implement it with anything.
 *
 * @example
 * ```ts
 * const ids = tokenizer.encode('Hello world'); // [1, 15043, 3186] with TinyLlama (BOS added)
 * ```
 */
export interface Tokenizer {
  /**
   * Token ids of `text`. `addSpecialTokens` (default true) applies the tokenizer's
   * post-processor (e.g. a leading BOS), as Hugging Face `encode` does.
   */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** Text of `ids`; `skipSpecialTokens` (default false) drops BOS/EOS/pad and other specials. */
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  /** The EOS token's text (e.g. `</s>`, `<|end_of_text|>`), used as a stop string. */
  readonly eosToken: string | null;
  readonly vocabSize: number;
}
