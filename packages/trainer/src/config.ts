import { z } from 'zod';
import { TrainerError } from './errors';

/**
 * Rotary scaling as Llama 3.1/3.2 configure it (`rope_type: "llama3"`).
 *
 * @example
 * ```ts
 * parseLlamaConfig(json).ropeScaling; // { ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 }
 * ```
 */
export interface Llama3RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/**
 * A validated Llama-family configuration, in camelCase, with defaults applied.
 *
 * @example
 * ```ts
 * const config: LlamaConfig = parseLlamaConfig(json);
 * config.headDim; // 64
 * ```
 */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** null for the plain rotary embedding (TinyLlama, Llama 2). */
  ropeScaling: Llama3RopeScaling | null;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  /** All EOS ids (Llama 3 Instruct lists several). */
  eosTokenIds: number[];
  padTokenId: number | null;
}

const ropeDictSchema = z
  .object({
    rope_type: z.string().optional(),
    type: z.string().optional(),
    rope_theta: z.number().positive().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().optional(),
    high_freq_factor: z.number().optional(),
    original_max_position_embeddings: z.number().int().positive().optional(),
  })
  .loose();

const tokenIdsSchema = z.union([z.number().int(), z.array(z.number().int())]).nullish();

const rawConfigSchema = z
  .object({
    architectures: z.array(z.string()).nullish(),
    model_type: z.string(),
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive().nullish(),
    head_dim: z.number().int().positive().nullish(),
    max_position_embeddings: z.number().int().positive().default(2048),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().nullish(),
    rope_scaling: ropeDictSchema.nullish(),
    rope_parameters: ropeDictSchema.nullish(),
    tie_word_embeddings: z.boolean().default(false),
    hidden_act: z.string().default('silu'),
    attention_bias: z.boolean().default(false),
    mlp_bias: z.boolean().default(false),
    pretraining_tp: z.number().int().nullish(),
    bos_token_id: tokenIdsSchema,
    eos_token_id: tokenIdsSchema,
    pad_token_id: tokenIdsSchema,
  })
  .loose();

const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM'];

function firstId(value: number | number[] | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

function unsupported(what: string, got: string, hint: string): TrainerError {
  return new TrainerError('E_CONFIG_UNSUPPORTED', `unsupported ${what}: ${got}. ${hint}`);
}

/**
 * Validates a Hugging Face `config.json` of the Llama family (Llama 2/3.x, TinyLlama) and
 * returns it normalised. Accepts both the transformers 4 keys (`rope_theta` + `rope_scaling`
 * with `rope_type` or `type`) and the transformers 5 key `rope_parameters`.
 *
 * @example
 * ```ts
 * const config = parseLlamaConfig(JSON.parse(readFileSync('config.json', 'utf8')));
 * config.numKeyValueHeads; // 8 for Llama-3.2-1B
 * config.ropeScaling?.factor; // 32
 * ```
 */
export function parseLlamaConfig(json: unknown): LlamaConfig {
  const parsed = rawConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new TrainerError(
      'E_CONFIG',
      `invalid config.json: expected a Llama config, got:\n${z.prettifyError(parsed.error)}`,
      { cause: parsed.error },
    );
  }
  const raw = parsed.data;
  const architecture = raw.architectures?.[0];
  if (
    raw.model_type !== 'llama' ||
    (architecture && !SUPPORTED_ARCHITECTURES.includes(architecture))
  ) {
    throw unsupported(
      'architecture',
      `expected model_type "llama" with LlamaForCausalLM, got model_type ${JSON.stringify(raw.model_type)}${
        architecture ? ` (${architecture})` : ''
      }`,
      'Only the Llama family (Llama 2, Llama 3.x, TinyLlama) is implemented.',
    );
  }
  if (raw.hidden_act !== 'silu') {
    throw unsupported(
      'hidden_act',
      `expected "silu", got ${JSON.stringify(raw.hidden_act)}`,
      'Llama uses SiLU.',
    );
  }
  if (raw.attention_bias || raw.mlp_bias) {
    throw unsupported(
      'bias',
      'expected attention_bias and mlp_bias false, got true',
      'Biased projections are not implemented.',
    );
  }
  const numKeyValueHeads = raw.num_key_value_heads ?? raw.num_attention_heads;
  if (raw.num_attention_heads % numKeyValueHeads !== 0) {
    throw new TrainerError(
      'E_CONFIG',
      `invalid config.json: expected num_attention_heads divisible by num_key_value_heads, got ${raw.num_attention_heads} and ${numKeyValueHeads}`,
    );
  }
  const headDim = raw.head_dim ?? raw.hidden_size / raw.num_attention_heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new TrainerError(
      'E_CONFIG',
      `invalid config.json: expected an even integer head_dim, got ${headDim}. Hint: set "head_dim" explicitly.`,
    );
  }
  // transformers 5 folds rope_theta and the scaling into rope_parameters.
  const rope = raw.rope_parameters ?? raw.rope_scaling ?? null;
  const ropeTheta = raw.rope_parameters?.rope_theta ?? raw.rope_theta ?? 10000;
  const ropeType = rope?.rope_type ?? rope?.type ?? 'default';
  let ropeScaling: Llama3RopeScaling | null = null;
  if (ropeType === 'llama3') {
    const { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } =
      rope ?? {};
    if (
      factor === undefined ||
      low_freq_factor === undefined ||
      high_freq_factor === undefined ||
      original_max_position_embeddings === undefined
    ) {
      throw new TrainerError(
        'E_CONFIG',
        'invalid llama3 rope scaling: expected factor, low_freq_factor, high_freq_factor and original_max_position_embeddings, got some missing',
      );
    }
    ropeScaling = {
      ropeType: 'llama3',
      factor,
      lowFreqFactor: low_freq_factor,
      highFreqFactor: high_freq_factor,
      originalMaxPositionEmbeddings: original_max_position_embeddings,
    };
  } else if (ropeType !== 'default') {
    throw unsupported(
      'rope type',
      `expected "default" or "llama3", got ${JSON.stringify(ropeType)}`,
      'linear, dynamic, yarn and longrope scaling are not implemented.',
    );
  }
  const eos = raw.eos_token_id;
  return {
    vocabSize: raw.vocab_size,
    hiddenSize: raw.hidden_size,
    intermediateSize: raw.intermediate_size,
    numHiddenLayers: raw.num_hidden_layers,
    numAttentionHeads: raw.num_attention_heads,
    numKeyValueHeads,
    headDim,
    maxPositionEmbeddings: raw.max_position_embeddings,
    rmsNormEps: raw.rms_norm_eps,
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: raw.tie_word_embeddings,
    bosTokenId: firstId(raw.bos_token_id),
    eosTokenIds: eos === null || eos === undefined ? [] : Array.isArray(eos) ? eos : [eos],
    padTokenId: firstId(raw.pad_token_id),
  };
}
