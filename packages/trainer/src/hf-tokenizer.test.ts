import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { TrainerError } from './errors';
import { HfTokenizer } from './hf-tokenizer';

const modelDir = join(repoRoot, 'packages/cli/assets/embedded/model');
const tokenizerJson = JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8')) as Record<
  string,
  unknown
>;
const tokenizerConfig = JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8'));

describe('HfTokenizer on hostile or odd input (found by tools/fuzz)', () => {
  it('decodes no ids to the empty string', () => {
    const tok = HfTokenizer.fromJson(tokenizerJson, tokenizerConfig);
    expect(tok.decode([])).toBe('');
  });

  it('turns a post-processor that fails at encode time into a TrainerError', () => {
    // Loads fine, then fails inside encode (BertProcessing without its sep/cls tokens).
    const hostile = { ...tokenizerJson, post_processor: { type: 'BertProcessing' } };
    let tok: HfTokenizer;
    try {
      tok = HfTokenizer.fromJson(hostile, tokenizerConfig);
    } catch (error) {
      expect(error).toBeInstanceOf(TrainerError); // refused at load time: also fine
      return;
    }
    expect(() => tok.encode('hello')).toThrow(TrainerError);
  });
});
