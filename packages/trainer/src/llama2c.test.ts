import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, sharedDataPath } from '@qlora/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { HfTokenizer } from './hf-tokenizer';
import { convertLlama2c, llama2cTokenizerJson, parseLlama2cTokenizer } from './llama2c';
import { type LoadedModel, loadModel } from './load-model';

// karpathy/llama2.c doc/stories260K.md: `./run stories260K.bin -z tok512.bin -t 0.0`.
const DOCUMENTED_GREEDY =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n' +
  'Lily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do. She said, "I want to play with your ball, but I can\'t find it."\n' +
  "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n" +
  "Lily didn't want to help her mom, so she said, \"I'm sorry, mom. I didn't know what to do.\" Her mom said, \"Don't worry, Lily. We can help you.";

const STORIES = sharedDataPath('models', 'stories260K');

describe('convertLlama2c (stories260K)', () => {
  let out: string;
  let loaded: LoadedModel;
  beforeAll(async () => {
    await initBackend('wasm');
    out = mkdtempSync(join(tmpdir(), 'stories260K-'));
    await convertLlama2c(join(STORIES, 'stories260K.bin'), join(STORIES, 'tok512.bin'), out);
    loaded = await loadModel(out);
  });
  afterAll(() => {
    loaded?.model.dispose();
    rmSync(out, { recursive: true, force: true });
  });

  it('writes a Llama config transformers can read', () => {
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      hidden_size: 64,
      intermediate_size: 172,
      num_hidden_layers: 5,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      vocab_size: 512,
      tie_word_embeddings: true,
    });
  });

  it('reproduces the documented greedy story from BOS, and transformers on its own conversion', async () => {
    // run.c stops at BOS; 256 steps are enough for the documented text.
    const tokens = await loaded.model.generateGreedy([1], 256, { eosTokenIds: [] });
    const text = loaded.tokenizer!.decode(tokens, { skipSpecialTokens: true });
    expect(text.startsWith(DOCUMENTED_GREEDY)).toBe(true);
    const ref = JSON.parse(
      readFileSync(fixturePath('trainer', 'stories260K-greedy.json'), 'utf8'),
    ) as {
      greedy_from_bos: number[];
    };
    expect(tokens.slice(0, ref.greedy_from_bos.length)).toEqual(ref.greedy_from_bos);
  });

  it('tokenizes as llama2.c does', () => {
    const ids = loaded.tokenizer!.encode('Once upon a time');
    expect(ids[0]).toBe(1);
    expect(loaded.tokenizer!.decode(ids, { skipSpecialTokens: true })).toBe('Once upon a time');
  });
});

describe('llama2cTokenizerJson (Llama 2 tokenizer.bin against the HF TinyLlama tokenizer.json)', () => {
  const ours = llama2cTokenizerJson(
    parseLlama2cTokenizer(
      new Uint8Array(readFileSync(sharedDataPath('tokenizers', 'llama2', 'tokenizer.bin'))),
      32000,
    ),
  ) as { model: { vocab: Record<string, number>; merges: [string, string][] } };
  const reference = JSON.parse(
    readFileSync(sharedDataPath('tokenizers', 'tinyllama', 'tokenizer.json'), 'utf8'),
  );

  it('has the same vocabulary, merges, normalizer, post-processor and decoder', () => {
    expect(ours.model.vocab).toEqual(reference.model.vocab);
    // Same merges; ties within one score are ordered by transformers' current rule (longer left
    // part first), which the older converter that wrote the TinyLlama file did not apply.
    expect(new Set(ours.model.merges.map((m) => m.join(' ')))).toEqual(
      new Set(reference.model.merges),
    );
    for (const key of [
      'normalizer',
      'pre_tokenizer',
      'post_processor',
      'decoder',
      'added_tokens',
    ]) {
      expect((ours as Record<string, unknown>)[key], key).toEqual(reference[key]);
    }
  });

  it('encodes real text to the same ids', () => {
    const config = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' };
    const mine = HfTokenizer.fromJson(ours, config, { verbatim: true });
    const theirs = HfTokenizer.fromJson(reference, config, { verbatim: true });
    const records = JSON.parse(
      readFileSync(sharedDataPath('alpaca', 'alpaca_5000.json'), 'utf8'),
    ) as {
      instruction: string;
      output: string;
    }[];
    const texts = records.slice(0, 150).flatMap((r) => [r.instruction, r.output]);
    texts.push('naïve café ☕ 日本 \u{1F600} <s> 12345  double  spaces\n\n\ttab');
    for (const text of texts) expect(mine.encode(text), text).toEqual(theirs.encode(text));
  });
});
