/**
 * Makes the embedded model's tokenizer: a character-level BPE trained here on the synthetic
 * corpus, written as a Hugging Face `tokenizer.json` + `tokenizer_config.json`.
 *
 *   node --import tsx tools/embedded/make-tokenizer.ts [--corpus DIR] [--data DIR] [--out DIR] [--vocab N]
 *
 * Vocabulary: `<unk>` `<s>` `</s>` `<pad>` (ids 0–3), every character of the corpus and data
 * files, then merges learnt by plain BPE until the vocabulary has `--vocab` entries (default 768).
 * Merges never touch digits (numbers stay one token per digit, which keeps arithmetic learnable),
 * never mix a newline with other characters, and allow a space only as a token's first character
 * (so a context and a continuation that starts with a space tokenize the same apart and together,
 * as lm-eval's whole-then-split encoding assumes). No normalizer or pre-tokenizer; a `Fuse`
 * decoder; a `TemplateProcessing` post-processor that prepends `<s>` (like Llama tokenizers).
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>'] as const;

function parseArgs(argv: readonly string[]): {
  corpus: string;
  data: string;
  out: string;
  vocab: number;
} {
  const get = (flag: string, fallback: string): string => {
    const i = argv.indexOf(flag);
    return i >= 0 && argv[i + 1] ? (argv[i + 1] as string) : fallback;
  };
  return {
    corpus: resolve(get('--corpus', '.carry/embedded')),
    data: resolve(get('--data', 'packages/cli/assets/embedded/data')),
    out: resolve(get('--out', 'packages/cli/assets/embedded/model')),
    vocab: Number(get('--vocab', '768')),
  };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? listFiles(path) : [path];
    });
}

/** Stanford Alpaca rendering of an instruction record plus its response (spec lora-training §4.5). */
function alpacaText(r: { instruction: string; input: string; output: string }): string {
  return r.input
    ? `Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n${r.instruction}\n\n### Input:\n${r.input}\n\n### Response:${r.output}`
    : `Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n${r.instruction}\n\n### Response:${r.output}`;
}

/** Whether a merged token is allowed (see the file comment). */
function mergeAllowed(token: string): boolean {
  if (/[0-9]/.test(token)) return false;
  if (token.includes('\n') && !/^\n+$/.test(token)) return false;
  return token.indexOf(' ', 1) === -1;
}

interface BpeResult {
  tokens: string[];
  merges: [string, string][];
}

/**
 * Greedy BPE: repeatedly merge the most frequent allowed adjacent pair (first in id order on
 * ties) in `docs`, until `vocabSize` tokens. Documents never merge across their boundary.
 */
function trainBpe(
  docs: readonly string[],
  baseTokens: readonly string[],
  vocabSize: number,
): BpeResult {
  const tokens = [...baseTokens];
  const idOf = new Map(tokens.map((t, i) => [t, i]));
  const total = docs.reduce((n, d) => n + [...d].length + 1, 0);
  let seq = new Int32Array(total);
  let len = 0;
  for (const d of docs) {
    for (const ch of d) seq[len++] = idOf.get(ch) ?? 0;
    seq[len++] = -1;
  }
  const stride = vocabSize;
  const counts = new Int32Array(vocabSize * vocabSize);
  const allowed = new Int8Array(vocabSize * vocabSize); // 0 unknown, 1 yes, 2 no
  const merges: [string, string][] = [];
  while (tokens.length < vocabSize) {
    counts.fill(0);
    for (let i = 0; i + 1 < len; i++) {
      const a = seq[i] as number;
      const b = seq[i + 1] as number;
      if (a >= 0 && b >= 0) counts[a * stride + b] = (counts[a * stride + b] as number) + 1;
    }
    let best = -1;
    let bestCount = 1;
    for (let key = 0; key < counts.length; key++) {
      const c = counts[key] as number;
      if (c <= bestCount) continue;
      if (allowed[key] === 0) {
        const t = (tokens[Math.floor(key / stride)] as string) + (tokens[key % stride] as string);
        allowed[key] = mergeAllowed(t) ? 1 : 2;
      }
      if (allowed[key] === 1) {
        best = key;
        bestCount = c;
      }
    }
    if (best < 0) break;
    const a = Math.floor(best / stride);
    const b = best % stride;
    const merged = (tokens[a] as string) + (tokens[b] as string);
    const id = tokens.length;
    tokens.push(merged);
    merges.push([tokens[a] as string, tokens[b] as string]);
    const next = new Int32Array(len);
    let n = 0;
    for (let i = 0; i < len; i++) {
      if (seq[i] === a && seq[i + 1] === b) {
        next[n++] = id;
        i++;
      } else {
        next[n++] = seq[i] as number;
      }
    }
    seq = next;
    len = n;
  }
  return { tokens, merges };
}

function main(): void {
  const { corpus, data, out, vocab } = parseArgs(process.argv.slice(2));
  const corpusDocs = readFileSync(join(corpus, 'corpus.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const instructions = JSON.parse(
    readFileSync(join(data, 'alpaca', 'instructions.json'), 'utf8'),
  ) as { instruction: string; input: string; output: string }[];
  const dataTexts = listFiles(data).map((f) => readFileSync(f, 'utf8'));

  // Every character of the corpus and of the data files (so nothing ever maps to <unk>).
  const chars = new Set<string>();
  for (const text of [...corpusDocs, ...dataTexts]) for (const ch of text) chars.add(ch);
  // Characters that JSON escapes in the data files are covered by the decoded corpus texts.
  const baseTokens = [...SPECIAL_TOKENS, ...[...chars].sort()];

  // Train merges on every 6th corpus document plus the rendered instruction data.
  const sample = [...corpusDocs.filter((_, i) => i % 6 === 0), ...instructions.map(alpacaText)];
  const { tokens, merges } = trainBpe(sample, baseTokens, vocab);
  const symbols = sample.reduce((n, d) => n + d.length, 0);

  const vocabObject: Record<string, number> = {};
  tokens.forEach((t, i) => {
    vocabObject[t] = i;
  });
  const special = (content: string, id: number) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((t, i) => special(t, i)),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: false,
      ignore_merges: false,
      vocab: vocabObject,
      merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    pad_token: '<pad>',
    unk_token: '<unk>',
    clean_up_tokenization_spaces: false,
    model_max_length: 512,
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: Object.fromEntries(
      SPECIAL_TOKENS.map((t, i) => {
        const { id: _id, ...rest } = special(t, i);
        return [String(i), rest];
      }),
    ),
  };
  const specialTokensMap = {
    bos_token: '<s>',
    eos_token: '</s>',
    pad_token: '<pad>',
    unk_token: '<unk>',
  };
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'tokenizer.json'), `${JSON.stringify(tokenizerJson)}\n`);
  writeFileSync(
    join(out, 'tokenizer_config.json'),
    `${JSON.stringify(tokenizerConfig, null, 2)}\n`,
  );
  writeFileSync(
    join(out, 'special_tokens_map.json'),
    `${JSON.stringify(specialTokensMap, null, 2)}\n`,
  );
  process.stdout.write(
    `vocab ${tokens.length} (${baseTokens.length} base + ${merges.length} merges), trained on ${symbols} chars → ${out}\n`,
  );
}

main();
