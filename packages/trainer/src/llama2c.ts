import type { TensorInput } from '@qlora/safetensors';
import { TrainerError } from './errors';

/**
 * The header of a llama2.c checkpoint.
 *
 * @example
 * ```ts
 * parseLlama2cHeader(bytes).header; // { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true, version: 0 }
 * ```
 */
export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** True when the classifier is the token embedding (tied). */
  sharedClassifier: boolean;
  /** 0 for the legacy export, 1 for the `ak42` float32 export. */
  version: 0 | 1;
}

/**
 * One token of a llama2.c `tokenizer.bin`: its piece (spaces, not `▁`) and SentencePiece score.
 *
 * @example
 * ```ts
 * parseLlama2cTokenizer(bytes, 512)[300]; // { piece: ' the', score: -41 }
 * ```
 */
export interface Llama2cToken {
  piece: string;
  score: number;
}

const MAGIC = 0x616b3432; // "ak42"

function fail(message: string): TrainerError {
  return new TrainerError('E_LLAMA2C', message);
}

/**
 * Reads the header of a llama2.c `.bin` (legacy version 0, or version 1 `ak42`).
 *
 * @example
 * ```ts
 * const { header, dataOffset } = parseLlama2cHeader(new Uint8Array(readFileSync('stories260K.bin')));
 * dataOffset; // 28
 * ```
 */
export function parseLlama2cHeader(bytes: Uint8Array): {
  header: Llama2cHeader;
  dataOffset: number;
} {
  if (bytes.byteLength < 28)
    throw fail(`llama2.c checkpoint: expected at least 28 bytes, got ${bytes.byteLength}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) === MAGIC) {
    const version = view.getInt32(4, true);
    if (version !== 1) {
      throw fail(
        `llama2.c checkpoint version: expected 0 (legacy) or 1 (float32), got ${version}. Hint: version 2 is int8-quantized; export with --version 1.`,
      );
    }
    const ints = Array.from({ length: 7 }, (_, i) => view.getInt32(8 + 4 * i, true));
    const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen] = ints as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const sharedClassifier = view.getUint8(36) === 1;
    return {
      header: {
        dim,
        hiddenDim,
        nLayers,
        nHeads,
        nKvHeads,
        vocabSize,
        seqLen,
        sharedClassifier,
        version: 1,
      },
      dataOffset: 256,
    };
  }
  const ints = Array.from({ length: 7 }, (_, i) => view.getInt32(4 * i, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = ints as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // Legacy export: a negative vocab size marks an untied classifier stored at the end.
  return {
    header: {
      dim,
      hiddenDim,
      nLayers,
      nHeads,
      nKvHeads,
      vocabSize: Math.abs(signedVocab),
      seqLen,
      sharedClassifier: signedVocab > 0,
      version: 0,
    },
    dataOffset: 28,
  };
}

/**
 * Reads a llama2.c `tokenizer.bin` (`tok512.bin`, Llama 2's 32000-token one); the vocab size
 * comes from the model header, the file does not store it.
 *
 * @example
 * ```ts
 * const tokens = parseLlama2cTokenizer(new Uint8Array(readFileSync('tok512.bin')), 512);
 * tokens[1].piece; // '\n<s>\n'
 * ```
 */
export function parseLlama2cTokenizer(bytes: Uint8Array, vocabSize: number): Llama2cToken[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // ignoreBOM: a piece may be U+FEFF itself (Llama 2 id 30143).
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  const tokens: Llama2cToken[] = [];
  let at = 4; // int32 max_token_length
  for (let id = 0; id < vocabSize; id++) {
    if (at + 8 > bytes.byteLength) {
      throw fail(
        `llama2.c tokenizer: expected ${vocabSize} tokens, got ${id} before the end of the file`,
      );
    }
    const score = view.getFloat32(at, true);
    const length = view.getInt32(at + 4, true);
    at += 8;
    const piece = decoder.decode(bytes.subarray(at, at + length));
    at += length;
    tokens.push({ piece, score });
  }
  return tokens;
}

/** Python-style code-point split points of a string. */
function codePoints(text: string): string[] {
  return Array.from(text);
}

/**
 * BPE merges from SentencePiece scores, as transformers' `generate_merges` makes them for the
 * Llama converter: every split of every piece into two vocabulary pieces, ordered by the
 * piece's score (descending), then the longer left part, then the longer right part.
 *
 * @example
 * ```ts
 * mergesFromScores(new Map([['a', 0], ['b', 1], ['ab', 2]]), [{ piece: 'ab', score: -1 }]); // [['a', 'b']]
 * ```
 */
export function mergesFromScores(
  vocab: ReadonlyMap<string, number>,
  scores: readonly Llama2cToken[],
): [string, string][] {
  const merges: { left: string; right: string; score: number; ll: number; lr: number }[] = [];
  const seen = new Set<string>();
  for (const { piece, score } of scores) {
    if (seen.has(piece)) continue;
    seen.add(piece);
    const chars = codePoints(piece);
    const local: (typeof merges)[number][] = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      if (vocab.has(left) && vocab.has(right))
        local.push({ left, right, score, ll: i, lr: chars.length - i });
    }
    local.sort(
      (a, b) =>
        (vocab.get(a.left) as number) - (vocab.get(b.left) as number) ||
        (vocab.get(a.right) as number) - (vocab.get(b.right) as number),
    );
    merges.push(...local);
  }
  merges.sort((a, b) => b.score - a.score || b.ll - a.ll || b.lr - a.lr);
  return merges.map((m) => [m.left, m.right]);
}

/**
 * A Hugging Face `tokenizer.json` for a llama2.c SentencePiece-style vocabulary, shaped as
 * transformers' LlamaConverter writes it (legacy form): BPE with byte fallback, merges from
 * the scores, normalizer prepend `▁` + replace space, `<s>` prepended by the post-processor.
 *
 * @example
 * ```ts
 * const json = llama2cTokenizerJson(parseLlama2cTokenizer(bytes, 512));
 * HfTokenizer.fromJson(json, { bos_token: '<s>', eos_token: '</s>' }).encode('Once'); // [1, …]
 * ```
 */
export function llama2cTokenizerJson(tokens: readonly Llama2cToken[]): Record<string, unknown> {
  const pieces = tokens.map(({ piece }, id) => {
    if (id === 0) return '<unk>';
    if (id === 1) return '<s>';
    if (id === 2) return '</s>';
    return piece.replaceAll(' ', '▁');
  });
  const vocab = new Map<string, number>();
  pieces.forEach((piece, id) => {
    if (!vocab.has(piece)) vocab.set(piece, id);
  });
  // LlamaConverter.vocab gives the three specials a score of 0.
  const scored = pieces.map((piece, id) => ({
    piece,
    score: id < 3 ? 0 : (tokens[id] as Llama2cToken).score,
  }));
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
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
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: mergesFromScores(vocab, scored),
    },
  };
}

/** Rows of q/k from Meta's interleaved rotary pairs to rotate-half order (transformers' `permute`). */
function permuteRotary(
  weight: Float32Array,
  heads: number,
  rows: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(weight.length);
  const headDim = rows / heads;
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + 2 * i + j) * cols;
        const to = (h * headDim + j * half + i) * cols;
        out.set(weight.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

/**
 * What {@link convertLlama2c} wrote.
 *
 * @example
 * ```ts
 * const { header, files } = await convertLlama2c('stories260K.bin', 'tok512.bin', 'out');
 * files; // ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
 * ```
 */
export interface ConvertLlama2cResult {
  header: Llama2cHeader;
  files: string[];
}

/**
 * Converts a llama2.c checkpoint (`stories260K.bin`, `stories15M.bin`, …) and its
 * `tokenizer.bin` into a Hugging Face Llama folder: `config.json`, `model.safetensors` (f32,
 * q/k rows permuted from interleaved to rotate-half rotary), `tokenizer.json`,
 * `tokenizer_config.json` and `generation_config.json`.
 *
 * @example
 * ```ts
 * await convertLlama2c('stories260K.bin', 'tok512.bin', './stories260K-hf');
 * const { model, tokenizer } = await loadModel('./stories260K-hf');
 * tokenizer!.decode(await model.generateGreedy([1], 20)); // 'Once upon a time, there was a little girl named Lily. …'
 * ```
 */
export async function convertLlama2c(
  binPath: string,
  tokenizerBinPath: string,
  outDir: string,
): Promise<ConvertLlama2cResult> {
  // Node modules are imported lazily so the package still loads in a browser.
  const { mkdir, readFile, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { writeSafetensors } = await import('@qlora/safetensors/node');
  const bytes = new Uint8Array(await readFile(binPath));
  const { header, dataOffset } = parseLlama2cHeader(bytes);
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen } = header;
  if (dim <= 0 || nHeads <= 0 || dim % nHeads !== 0 || nKvHeads <= 0 || nHeads % nKvHeads !== 0) {
    throw fail(
      `llama2.c header: expected dim divisible by n_heads and n_heads by n_kv_heads, got dim ${dim}, n_heads ${nHeads}, n_kv_heads ${nKvHeads}`,
    );
  }
  const headSize = dim / nHeads;
  const kvDim = nKvHeads * headSize;
  const floats = new Float32Array(bytes.slice(dataOffset).buffer);
  let at = 0;
  const take = (count: number): Float32Array => {
    if (at + count > floats.length) {
      throw fail(
        `llama2.c checkpoint ${binPath}: expected at least ${(dataOffset + 4 * (at + count)).toLocaleString('en')} bytes, got ${bytes.byteLength.toLocaleString('en')}`,
      );
    }
    const out = floats.subarray(at, at + count);
    at += count;
    return out;
  };
  const perLayer = (count: number): Float32Array[] =>
    Array.from({ length: nLayers }, () => take(count));
  let embedding: Float32Array;
  let attentionNorm: Float32Array[];
  let ffnNorm: Float32Array[];
  let finalNorm: Float32Array;
  let wq: Float32Array[];
  let wk: Float32Array[];
  let wv: Float32Array[];
  let wo: Float32Array[];
  let w1: Float32Array[];
  let w2: Float32Array[];
  let w3: Float32Array[];
  if (header.version === 0) {
    embedding = take(vocabSize * dim);
    attentionNorm = perLayer(dim);
    wq = perLayer(dim * dim);
    wk = perLayer(kvDim * dim);
    wv = perLayer(kvDim * dim);
    wo = perLayer(dim * dim);
    ffnNorm = perLayer(dim);
    w1 = perLayer(hiddenDim * dim);
    w2 = perLayer(dim * hiddenDim);
    w3 = perLayer(hiddenDim * dim);
    finalNorm = take(dim);
    // Legacy rotary tables freq_cis_real and freq_cis_imag, [seq_len, head_size / 2] each: unused.
    take((seqLen * headSize) / 2);
    take((seqLen * headSize) / 2);
  } else {
    attentionNorm = perLayer(dim);
    ffnNorm = perLayer(dim);
    finalNorm = take(dim);
    embedding = take(vocabSize * dim);
    wq = perLayer(dim * dim);
    wk = perLayer(kvDim * dim);
    wv = perLayer(kvDim * dim);
    wo = perLayer(dim * dim);
    w1 = perLayer(hiddenDim * dim);
    w2 = perLayer(dim * hiddenDim);
    w3 = perLayer(hiddenDim * dim);
  }
  const classifier = header.sharedClassifier ? null : take(vocabSize * dim);
  if (at !== floats.length) {
    throw fail(
      `llama2.c checkpoint ${binPath}: expected ${dataOffset + 4 * at} bytes for this header, got ${bytes.byteLength}`,
    );
  }

  const tensors: Record<string, TensorInput> = {};
  const f32 = (shape: number[], data: Float32Array): TensorInput => ({ dtype: 'F32', shape, data });
  tensors['model.embed_tokens.weight'] = f32([vocabSize, dim], embedding);
  for (let l = 0; l < nLayers; l++) {
    const p = `model.layers.${l}.`;
    tensors[`${p}input_layernorm.weight`] = f32([dim], attentionNorm[l] as Float32Array);
    tensors[`${p}post_attention_layernorm.weight`] = f32([dim], ffnNorm[l] as Float32Array);
    tensors[`${p}self_attn.q_proj.weight`] = f32(
      [dim, dim],
      permuteRotary(wq[l] as Float32Array, nHeads, dim, dim),
    );
    tensors[`${p}self_attn.k_proj.weight`] = f32(
      [kvDim, dim],
      permuteRotary(wk[l] as Float32Array, nKvHeads, kvDim, dim),
    );
    tensors[`${p}self_attn.v_proj.weight`] = f32([kvDim, dim], wv[l] as Float32Array);
    tensors[`${p}self_attn.o_proj.weight`] = f32([dim, dim], wo[l] as Float32Array);
    tensors[`${p}mlp.gate_proj.weight`] = f32([hiddenDim, dim], w1[l] as Float32Array);
    tensors[`${p}mlp.down_proj.weight`] = f32([dim, hiddenDim], w2[l] as Float32Array);
    tensors[`${p}mlp.up_proj.weight`] = f32([hiddenDim, dim], w3[l] as Float32Array);
  }
  tensors['model.norm.weight'] = f32([dim], finalNorm);
  if (classifier) tensors['lm_head.weight'] = f32([vocabSize, dim], classifier);

  const tokenizerTokens = parseLlama2cTokenizer(
    new Uint8Array(await readFile(tokenizerBinPath)),
    vocabSize,
  );
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: dim,
    intermediate_size: hiddenDim,
    num_hidden_layers: nLayers,
    num_attention_heads: nHeads,
    num_key_value_heads: nKvHeads,
    head_dim: headSize,
    vocab_size: vocabSize,
    max_position_embeddings: seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    rope_scaling: null,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: header.sharedClassifier,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    add_bos_token: true,
    add_eos_token: false,
    legacy: true,
    model_max_length: seqLen,
    clean_up_tokenization_spaces: false,
  };
  await mkdir(outDir, { recursive: true });
  const write = (name: string, value: unknown) =>
    writeFile(join(outDir, name), `${JSON.stringify(value, null, 2)}\n`);
  await write('config.json', config);
  await write('generation_config.json', { bos_token_id: 1, eos_token_id: 2 });
  await write('tokenizer.json', llama2cTokenizerJson(tokenizerTokens));
  await write('tokenizer_config.json', tokenizerConfig);
  await writeSafetensors(join(outDir, 'model.safetensors'), tensors, { format: 'pt' });
  return {
    header,
    files: [
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ],
  };
}
