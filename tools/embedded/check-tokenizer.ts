/**
 * Encodes sample texts with `@huggingface/tokenizers` (the JS library the trainer uses) and writes
 * the ids, so `pretrain.py` can check that Python `tokenizers`/transformers give the same ids.
 * Also prints characters per token over the data files (the CPU cost of the experiment scales
 * with token counts).
 *
 *   node --import tsx tools/embedded/check-tokenizer.ts [--model DIR] [--data DIR] [--out FILE]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
// @huggingface/tokenizers through the datasets package's own loader (its devDependency).
import { loadHfTokenizer } from '../../packages/datasets/src/_hf-tokenizer';

const argv = process.argv.slice(2);
const get = (flag: string, fallback: string): string => {
  const i = argv.indexOf(flag);
  return i >= 0 && argv[i + 1] ? (argv[i + 1] as string) : fallback;
};
const model = resolve(get('--model', 'packages/cli/assets/embedded/model'));
const data = resolve(get('--data', 'packages/cli/assets/embedded/data'));
const out = resolve(get('--out', join(model, '..', 'tokenizer-check.json')));

const tokenizer = loadHfTokenizer(
  join(model, 'tokenizer.json'),
  join(model, 'tokenizer_config.json'),
);
const lines = (file: string): string[] =>
  readFileSync(join(data, file), 'utf8')
    .split('\n')
    .filter((l) => l);
const gsm = lines('gsm8k/test.jsonl').map(
  (l) => JSON.parse(l) as { question: string; answer: string },
);
const hs = lines('hellaswag/validation.jsonl').map(
  (l) => JSON.parse(l) as { ctx: string; endings: string[] },
);
const mmlu = lines('mmlu/test/fictional_networking_test.csv');
const alpaca = JSON.parse(readFileSync(join(data, 'alpaca/instructions.json'), 'utf8')) as {
  instruction: string;
  input: string;
  output: string;
}[];

const samples = [
  ...gsm.slice(0, 20).map((r) => `Question: ${r.question}\nAnswer: ${r.answer}`),
  ...hs.slice(0, 10).flatMap((r) => [r.ctx, ` ${r.endings[0]}`]),
  ...mmlu.slice(0, 10),
  ...alpaca
    .slice(0, 10)
    .map(
      (r) =>
        `### Instruction:\n${r.instruction}\n\n### Input:\n${r.input}\n\n### Response:${r.output}</s>`,
    ),
  'Answer: A',
  ' B',
  'The following are multiple choice questions (with answers) about fictional networking.\n\n',
  '  two  spaces\n\n\nthree newlines </s><s><pad>',
];
const encoded = samples.map((text) => ({
  text,
  ids: tokenizer.encode(text),
  idsNoSpecial: tokenizer.encode(text, { addSpecialTokens: false }),
}));
for (const e of encoded) {
  const back = tokenizer.decode(e.idsNoSpecial, { skipSpecialTokens: false });
  if (back !== e.text)
    throw new Error(`round trip failed: ${JSON.stringify(e.text)} → ${JSON.stringify(back)}`);
}
writeFileSync(out, `${JSON.stringify(encoded)}\n`);

const ratio = (texts: string[]): string => {
  const chars = texts.reduce((n, t) => n + t.length, 0);
  const toks = texts.reduce(
    (n, t) => n + tokenizer.encode(t, { addSpecialTokens: false }).length,
    0,
  );
  return `${(chars / toks).toFixed(2)} chars/token (${(toks / texts.length).toFixed(1)} tokens/item)`;
};
process.stdout.write(
  `gsm8k q+a: ${ratio(gsm.map((r) => `Question: ${r.question}\nAnswer: ${r.answer}`))}\n` +
    `gsm8k answer: ${ratio(gsm.map((r) => ` ${r.answer}`))}\n` +
    `hellaswag ctx: ${ratio(hs.map((r) => r.ctx))}\n` +
    `hellaswag ending: ${ratio(hs.flatMap((r) => r.endings.map((e) => ` ${e}`)))}\n` +
    `mmlu row: ${ratio(mmlu)}\n` +
    `alpaca rendered: ${ratio(
      alpaca.map((r) =>
        r.input
          ? `Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n${r.instruction}\n\n### Input:\n${r.input}\n\n### Response:${r.output}`
          : `Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n${r.instruction}\n\n### Response:${r.output}`,
      ),
    )}\n` +
    `round trips ok: ${encoded.length}; ids → ${out}\n`,
);
