import { readFileSync } from 'node:fs';
import { fixturePath, sharedDataPath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { loadHfTokenizer } from './_hf-tokenizer';
import { loadAlpaca } from './datasets';
import { DatasetsError } from './errors';
import type { AlpacaRecord } from './schemas';
import { IGNORE_INDEX, tokenizeForSft } from './sft';
import {
  type PromptTemplate,
  renderChatTemplate,
  renderPrompt,
  STANFORD_ALPACA_TEMPLATE,
  UNSLOTH_ALPACA_TEMPLATE,
} from './templates';

interface RefTemplate {
  prompt: string;
  response: string;
  inputIds: number[];
  promptTokenCount: number;
  stanfordSourceLen: number;
  isPrefix: boolean;
}
interface RefEntry {
  source: 'alpaca' | 'synthetic';
  index: number;
  record?: AlpacaRecord;
  stanford: RefTemplate;
  unsloth: RefTemplate;
}

const reference = JSON.parse(
  readFileSync(fixturePath('datasets', 'sft_tinyllama.json'), 'utf8'),
) as RefEntry[];
const tokenizerDir = sharedDataPath('tokenizers', 'tinyllama');
const tokenizer = loadHfTokenizer(
  `${tokenizerDir}/tokenizer.json`,
  `${tokenizerDir}/tokenizer_config.json`,
);
const alpaca = await loadAlpaca(sharedDataPath('alpaca', 'alpaca_5000.json'));

function recordOf(entry: RefEntry): AlpacaRecord {
  const record = entry.source === 'alpaca' ? alpaca[entry.index] : entry.record;
  if (!record) throw new Error(`no record for ${entry.source} ${entry.index}`);
  return record;
}

const templates: [keyof Pick<RefEntry, 'stanford' | 'unsloth'>, PromptTemplate][] = [
  ['stanford', STANFORD_ALPACA_TEMPLATE],
  ['unsloth', UNSLOTH_ALPACA_TEMPLATE],
];

describe('prompt templates', () => {
  it('render the same strings as Python str.format on the spec text', () => {
    for (const entry of reference) {
      for (const [key, template] of templates) {
        const rendered = renderPrompt(recordOf(entry), template);
        expect(rendered).toEqual({ prompt: entry[key].prompt, response: entry[key].response });
      }
    }
  });

  it('substitutes once (a literal {input} inside the instruction stays)', () => {
    const { prompt } = renderPrompt(
      { instruction: 'Fill {input} here', input: 'X', output: '' },
      UNSLOTH_ALPACA_TEMPLATE,
    );
    expect(prompt).toContain('### Instruction:\nFill {input} here\n\n### Input:\nX\n\n');
  });

  it('accepts a user template as data', () => {
    const mine: PromptTemplate = {
      name: 'qa',
      withInput: 'Q: {instruction} ({input})\nA:',
      withoutInput: 'Q: {instruction}\nA:',
    };
    expect(renderPrompt({ instruction: 'Why?', input: '', output: ' Because.' }, mine)).toEqual({
      prompt: 'Q: Why?\nA:',
      response: ' Because.',
    });
  });
});

describe('tokenizeForSft vs Python tokenizers (TinyLlama tokenizer.json)', () => {
  it('inputIds equal the reference ids of prompt + response + "</s>" and the mask boundary matches offsets', () => {
    let merged = 0;
    for (const entry of reference) {
      for (const [key, template] of templates) {
        const ref = entry[key];
        const ex = tokenizeForSft(recordOf(entry), tokenizer, { template });
        expect(ex.inputIds, `${entry.source} ${entry.index} ${key}`).toEqual(ref.inputIds);
        expect(ex.promptLength, `${entry.source} ${entry.index} ${key}`).toBe(ref.promptTokenCount);
        expect(ex.boundaryMerged).toBe(!ref.isPrefix);
        if (ex.boundaryMerged) merged++;
        const firstLabel = ex.labels.findIndex((l) => l !== IGNORE_INDEX);
        expect(firstLabel).toBe(ref.promptTokenCount);
        expect(ex.labels.slice(firstLabel)).toEqual(ref.inputIds.slice(firstLabel));
        expect(ex.inputIds[0]).toBe(1); // BOS
        expect(ex.inputIds.at(-1)).toBe(2); // EOS
      }
    }
    // Alpaca record 10 and a synthetic one merge ":" with the response under Stanford's template.
    expect(merged).toBe(2);
  });

  it('documents the Stanford off-by-one: its source length masks one token more on a merge', () => {
    const entry = reference.find((e) => e.source === 'alpaca' && e.index === 10);
    expect(entry?.stanford.isPrefix).toBe(false);
    expect(entry?.stanford.stanfordSourceLen).toBe((entry?.stanford.promptTokenCount ?? 0) + 1);
  });

  it('trainOnInputs trains on everything; addEos false; EOS not doubled', () => {
    const record = alpaca[0] as AlpacaRecord;
    const all = tokenizeForSft(record, tokenizer, {
      template: UNSLOTH_ALPACA_TEMPLATE,
      trainOnInputs: true,
    });
    expect(all.labels).toEqual(all.inputIds);
    const noEos = tokenizeForSft(record, tokenizer, {
      template: UNSLOTH_ALPACA_TEMPLATE,
      addEos: false,
    });
    expect(noEos.inputIds).toEqual(all.inputIds.slice(0, -1));
    const withEosText = tokenizeForSft(
      { prompt: 'Q:', response: ` yes${tokenizer.eosToken}` },
      tokenizer,
    );
    expect(withEosText.inputIds.filter((id) => id === 2)).toHaveLength(1);
  });

  it('truncation keeps the prompt and cuts the response end; drop and error policies', () => {
    const record = {
      instruction: 'Count.',
      input: '',
      output: 'one two three four five six seven eight nine ten',
    };
    const full = tokenizeForSft(record, tokenizer, { template: STANFORD_ALPACA_TEMPLATE });
    const maxLength = full.promptLength + 3;
    const cut = tokenizeForSft(record, tokenizer, {
      template: STANFORD_ALPACA_TEMPLATE,
      maxLength,
    });
    expect(cut.truncated).toBe(true);
    expect(cut.inputIds).toEqual(full.inputIds.slice(0, maxLength));
    expect(cut.labels.filter((l) => l !== IGNORE_INDEX)).toHaveLength(3);
    expect(
      tokenizeForSft(record, tokenizer, {
        template: STANFORD_ALPACA_TEMPLATE,
        maxLength,
        overflow: 'drop',
      }),
    ).toBeNull();
    expect(() =>
      tokenizeForSft(record, tokenizer, {
        template: STANFORD_ALPACA_TEMPLATE,
        maxLength,
        overflow: 'error',
      }),
    ).toThrow(DatasetsError);
    expect(() =>
      tokenizeForSft(record, tokenizer, {
        template: STANFORD_ALPACA_TEMPLATE,
        maxLength: full.promptLength,
      }),
    ).toThrow(/no response token would be trained/);
  });

  it('needs a template for raw Alpaca records', () => {
    expect(() => tokenizeForSft(alpaca[0] as AlpacaRecord, tokenizer)).toThrow(
      /expected options.template/,
    );
  });
});

describe('renderChatTemplate vs transformers apply_chat_template', () => {
  const config = JSON.parse(
    readFileSync(`${tokenizerDir}/tokenizer_config.json`, 'utf8'),
  ) as Record<string, unknown>;
  const chats = JSON.parse(
    readFileSync(fixturePath('datasets', 'chat_tinyllama.json'), 'utf8'),
  ) as {
    messages: { role: string; content: string }[];
    addGenerationPrompt: boolean;
    text: string;
  }[];

  it('renders the TinyLlama chat template identically', () => {
    expect(chats).toHaveLength(6);
    for (const chat of chats) {
      expect(
        renderChatTemplate(config, chat.messages, {
          addGenerationPrompt: chat.addGenerationPrompt,
        }),
      ).toBe(chat.text);
    }
  });

  it('explains a missing template', () => {
    expect(() => renderChatTemplate({ eos_token: '</s>' }, [])).toThrow(
      /expected tokenizer_config.json to have a chat_template/,
    );
  });
});
