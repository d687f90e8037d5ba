import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import { TrainerError } from './errors';

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
