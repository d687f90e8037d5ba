import { readFileSync } from 'node:fs';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { Tokenizer } from './tokenizer';

/**
 * Test and bench helper (not exported): the package's `Tokenizer` interface over
 * `@huggingface/tokenizers` (a devDependency), loaded from a `tokenizer.json` and its config.
 */
export function loadHfTokenizer(tokenizerJsonPath: string, tokenizerConfigPath: string): Tokenizer {
  const json = JSON.parse(readFileSync(tokenizerJsonPath, 'utf8')) as Record<string, unknown>;
  const config = JSON.parse(readFileSync(tokenizerConfigPath, 'utf8')) as Record<string, unknown>;
  const hf = new HfTokenizer(json, config);
  const text = (key: string): string | null => {
    const v = config[key];
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
      return (v as { content: string }).content;
    }
    return null;
  };
  const idOf = (token: string | null): number | null =>
    token === null ? null : (hf.token_to_id(token) ?? null);
  const eosToken = text('eos_token');
  return {
    encode: (value, options) =>
      hf.encode(value, { add_special_tokens: options?.addSpecialTokens ?? true }).ids,
    decode: (ids, options) =>
      hf.decode([...ids], { skip_special_tokens: options?.skipSpecialTokens ?? false }),
    bosTokenId: idOf(text('bos_token')),
    eosTokenId: idOf(eosToken),
    padTokenId: idOf(text('pad_token')),
    eosToken,
    vocabSize: hf.get_vocab(true).size,
  };
}
