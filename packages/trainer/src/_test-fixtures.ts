import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaConfig } from './config';
import { TrainerError } from './errors';
import { LlamaModel } from './llama-model';

/** Reference data of one case made by tools/reference/llama_logits.py. */
export interface ReferenceCase {
  case: string;
  inv_freq: number[];
  max_length: number;
  sequences: { input_ids: number[]; logits_offset: number; shape: number[] }[];
  left_padded_batch?: {
    input_ids: number[][];
    attention_mask: number[][];
    position_ids: number[][];
    logits_offset: number;
    shape: number[];
  };
  greedy?: { prompt: number[]; max_new_tokens: number; tokens: number[] }[];
  batched_greedy?: {
    input_ids: number[][];
    attention_mask: number[][];
    max_new_tokens: number;
    tokens: number[][];
  };
  loglikelihoods?: {
    context: number[];
    continuation: number[];
    logprob: number;
    is_greedy: boolean;
  }[];
  tokenizer_cases?: {
    text: string;
    auto_ids: number[];
    tokenizers_ids: number[];
    auto_no_special: number[];
    decoded_skip: string;
  }[];
  text_loglikelihoods?: {
    context: string;
    continuation: string;
    context_ids: number[];
    continuation_ids: number[];
    logprob: number;
    is_greedy: boolean;
  }[];
  generate_until?: {
    context: string;
    until: string[];
    max_gen_toks: number;
    tokens: number[];
    text: string;
    result: string;
  }[];
}

export const REFERENCE_CASES = ['llama3-gqa-tied', 'mqa-untied', 'mha-headdim-llama3'] as const;

export function readReference(name: string): {
  ref: ReferenceCase;
  logits: Float32Array;
  dir: string;
} {
  const dir = fixturePath('trainer', name);
  const ref = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as ReferenceCase;
  let logits = new Float32Array(0);
  try {
    const bytes = readFileSync(`${dir}/logits.bin`);
    logits = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    );
  } catch {
    // the tokenizer case has no logits
  }
  return { ref, logits, dir };
}

export { relativeError } from '@qlora/test-utils';

/** The TrainerError `run` throws (any other error is rethrown; no error fails the test). */
export function caughtTrainerError(run: () => unknown): TrainerError {
  try {
    run();
  } catch (error) {
    if (error instanceof TrainerError) return error;
    throw error;
  }
  throw new Error('expected a TrainerError');
}

/** The TrainerError `run` rejects with (any other rejection is rethrown). */
export async function rejectedTrainerError(run: () => Promise<unknown>): Promise<TrainerError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof TrainerError) return error;
    throw error;
  }
  throw new Error('expected a TrainerError');
}

/** meta-llama/Llama-3.2-1B's config.json (transformers 4 form: rope_theta + rope_scaling). */
export const LLAMA_32_1B = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 64,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  rope_scaling: {
    factor: 32.0,
    low_freq_factor: 1.0,
    high_freq_factor: 4.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  tie_word_embeddings: true,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  hidden_act: 'silu',
  torch_dtype: 'bfloat16',
};

/**
 * A Llama of `config`'s shapes with reproducible weights: norms 1, every other tensor uniform in
 * ±scale/2 from one linear congruential stream (in `LlamaModel.fromTensors`' order).
 */
export function randomLlama(
  config: LlamaConfig,
  options: { seed: number; scale: number },
): LlamaModel {
  let seed = options.seed;
  const random = (shape: number[]): tf.Tensor => {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      values[i] = (seed / 2 ** 31 - 0.5) * options.scale;
    }
    return tf.tensor(values, shape);
  };
  const { hiddenSize: hidden, intermediateSize: inner, headDim } = config;
  const queries = config.numAttentionHeads * headDim;
  const keys = config.numKeyValueHeads * headDim;
  return LlamaModel.fromTensors(config, (name) => {
    if (name.endsWith('norm.weight')) return tf.ones([hidden]);
    if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight')
      return random([config.vocabSize, hidden]);
    if (name.endsWith('q_proj.weight')) return random([queries, hidden]);
    if (name.endsWith('k_proj.weight') || name.endsWith('v_proj.weight'))
      return random([keys, hidden]);
    if (name.endsWith('o_proj.weight')) return random([hidden, queries]);
    if (name.endsWith('down_proj.weight')) return random([hidden, inner]);
    return random([inner, hidden]); // gate_proj, up_proj
  });
}
