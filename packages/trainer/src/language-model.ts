import type {
  GenerateRequest,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ModelCallOptions,
} from '@qlora/bench-core';
import type { Tokenizer } from '@qlora/datasets';
import * as tf from '@tensorflow/tfjs-core';
import { checkDeviceFits, guardDeviceErrors } from './_device-limits';
import { selectTargets } from './_select-targets';
import {
  GENERATION_LIMITS,
  LOGLIKELIHOOD_LIMITS,
  positionsOf,
  SETTINGS,
  sequenceTooLong,
} from './_sequence-limits';
import { trimWebgpuBufferPool } from './_webgpu-pool';
import { TrainerError } from './errors';
import type { LlamaModel } from './llama-model';

/**
 * How the `LanguageModel` methods batch and truncate, as lm-eval's `HFLM` arguments do.
 *
 * @example
 * ```ts
 * model.evaluation = { batchSize: 8, maxLength: 2048 };
 * ```
 */
export interface EvaluationOptions {
  /** Requests per forward pass (lm-eval `batch_size`, default 1). */
  batchSize?: number;
  /** Context window for truncation (default: config `max_position_embeddings`). */
  maxLength?: number;
  /** Generation budget when a request gives none (lm-eval default 256). */
  maxGenTokens?: number;
}

/**
 * A context/continuation pair already tokenized.
 *
 * @example
 * ```ts
 * const pair: TokenPair = { context: [1, 450, 4996], continuation: [17354] };
 * ```
 */
export interface TokenPair {
  context: readonly number[];
  continuation: readonly number[];
}

// Python's str.isspace() set, so trailing-whitespace moves match lm-eval exactly.
const PYTHON_SPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001,
  0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f,
  0x205f, 0x3000,
]);

function trailingWhitespace(text: string): number {
  let n = 0;
  while (n < text.length && PYTHON_SPACE.has(text.charCodeAt(text.length - 1 - n))) n++;
  return n;
}

function checkAborted(options: ModelCallOptions | undefined): void {
  if (options?.signal?.aborted) {
    throw new TrainerError('E_ABORTED', 'call aborted: expected to finish, got an abort signal', {
      cause: options.signal.reason,
    });
  }
}

/**
 * lm-eval `TemplateLM._encode_pair`: moves trailing context whitespace to the continuation,
 * encodes context + continuation together and splits at the length of the encoded context.
 *
 * @example
 * ```ts
 * encodePair(tokenizer, 'The cat sat on the ', 'mat');
 * // { context: [1, 450, 6635, 3290, 373, 278], continuation: [1775] }
 * ```
 */
export function encodePair(tokenizer: Tokenizer, context: string, continuation: string): TokenPair {
  if (context === '') {
    const prefix = tokenizer.bosTokenId ?? tokenizer.eosTokenId;
    if (prefix === null) {
      throw new TrainerError(
        'E_INPUT',
        'empty context: expected a BOS or EOS token to stand in, got neither',
      );
    }
    return { context: [prefix], continuation: tokenizer.encode(continuation) };
  }
  const n = trailingWhitespace(context);
  const ctx = n > 0 ? context.slice(0, -n) : context;
  const cont = n > 0 ? context.slice(-n) + continuation : continuation;
  const whole = tokenizer.encode(ctx + cont);
  const contextIds = tokenizer.encode(ctx);
  return { context: contextIds, continuation: whole.slice(contextIds.length) };
}

/** Sorts indices by descending total length, ties by the token tuple, as lm-eval's Collator. */
function sortByLengthDescending(tokens: readonly (readonly number[])[]): number[] {
  const compareTuples = (a: readonly number[], b: readonly number[]): number => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
    }
    return a.length - b.length;
  };
  return tokens
    .map((_, i) => i)
    .sort((i, j) => {
      const a = tokens[i] as readonly number[];
      const b = tokens[j] as readonly number[];
      return b.length - a.length || compareTuples(a, b);
    });
}

/**
 * lm-eval `HFLM._loglikelihood_tokens`: input `(ctx + cont)[-(maxLength + 1):][:-1]`, one
 * right-padded forward per batch, log-softmax over the vocabulary, sum over the continuation,
 * and whether every continuation token is the argmax.
 */
export async function scoreTokenPairs(
  model: LlamaModel,
  pairs: readonly TokenPair[],
  evaluation: EvaluationOptions = {},
  options?: ModelCallOptions,
): Promise<LoglikelihoodResult[]> {
  const maxLength = evaluationMaxLength(model, evaluation);
  const batchSize = Math.max(1, evaluation.batchSize ?? 1);
  const wholes = pairs.map((p) => [...p.context, ...p.continuation]);
  const order = sortByLengthDescending(wholes);
  const results: LoglikelihoodResult[] = new Array(pairs.length);
  let done = 0;
  // One forward per chunk. A chunk whose tensors would pass the device's per-buffer limit (the
  // continuation logits of long, wide batches) is halved until its parts fit, so a large
  // batchSize only ever costs a few extra forwards; results do not depend on the split.
  const scoreChunk = async (chunk: readonly number[]): Promise<void> => {
    const inputs = chunk.map((i) => {
      const whole = wholes[i] as number[];
      return whole.slice(Math.max(0, whole.length - (maxLength + 1))).slice(0, -1);
    });
    const contLengths = chunk.map((i) => (pairs[i] as TokenPair).continuation.length);
    for (let r = 0; r < chunk.length; r++) {
      const contLength = contLengths[r] as number;
      if (contLength > maxLength) {
        // lm-eval asserts len(continuation_enc) <= max_length: the continuation alone cannot fit.
        throw new TrainerError(
          'E_SEQUENCE_TOO_LONG',
          `loglikelihood request: expected a continuation of at most ${maxLength} tokens (the context is left-truncated, the continuation never is; ${positionsOf(model)}), got ${contLength} tokens. Hint: shorten the continuation${maxLength < model.config.maxPositionEmbeddings ? `, or raise ${SETTINGS.evalMaxLength} up to ${model.config.maxPositionEmbeddings}` : ''}.`,
        );
      }
      if (contLength === 0 || (inputs[r] as number[]).length === 0) {
        throw new TrainerError(
          'E_INPUT',
          `loglikelihood request: expected a continuation of 1..${maxLength} tokens after a non-empty context, got ${contLength} tokens`,
        );
      }
    }
    const width = Math.max(...inputs.map((row) => row.length));
    const padded = inputs.map((row) => [...row, ...new Array<number>(width - row.length).fill(0)]);
    // Only the continuation positions get logits (see scoreBatch).
    const logitRows = contLengths.reduce((a, b) => a + b, 0);
    try {
      checkDeviceFits(
        model.config,
        { batch: chunk.length, steps: width, logitSteps: Math.ceil(logitRows / chunk.length) },
        LOGLIKELIHOOD_LIMITS,
      );
    } catch (error) {
      if (
        !(error instanceof TrainerError) ||
        error.code !== 'E_OUT_OF_MEMORY' ||
        chunk.length < 2
      ) {
        throw error;
      }
      const half = Math.ceil(chunk.length / 2);
      await scoreChunk(chunk.slice(0, half));
      await scoreChunk(chunk.slice(half));
      return;
    }
    await guardDeviceErrors(LOGLIKELIHOOD_LIMITS, () =>
      scoreBatch(model, padded, inputs, chunk, contLengths, pairs, results),
    );
    trimWebgpuBufferPool();
    done += chunk.length;
    options?.onProgress?.(done, pairs.length);
  };
  for (let start = 0; start < order.length; start += batchSize) {
    checkAborted(options);
    await scoreChunk(order.slice(start, start + batchSize));
  }
  return results;
}

/**
 * One right-padded forward and the continuation scores of its rows, into `results`. Only the
 * continuation positions get logits; their log-softmax, target log-probabilities and argmax are
 * read back once per batch.
 */
async function scoreBatch(
  model: LlamaModel,
  padded: number[][],
  inputs: readonly number[][],
  chunk: readonly number[],
  contLengths: readonly number[],
  pairs: readonly TokenPair[],
  results: LoglikelihoodResult[],
): Promise<void> {
  const positions: [number, number][] = [];
  const targets: number[] = [];
  for (let r = 0; r < chunk.length; r++) {
    const input = inputs[r] as number[];
    const contLength = contLengths[r] as number;
    const continuation = (pairs[chunk[r] as number] as TokenPair).continuation;
    for (let j = 0; j < contLength; j++) {
      positions.push([r, input.length - contLength + j]);
      targets.push(continuation[j] as number);
    }
  }
  const vocab = model.config.vocabSize;
  const [picked, argmax] = tf.tidy(() => {
    const logits = tf.reshape(model.forward(padded, { logitPositions: positions }), [
      positions.length,
      vocab,
    ]);
    const logSoftmax = tf.logSoftmax(logits);
    // selectTargets addresses by (row, target) pairs: a flat row·vocab + target index built with
    // tf ops is rounded by webgpu's f32 int arithmetic past 2^24 (found on the H200: HellaSwag
    // log-probabilities of neighbouring tokens, 1.3% off).
    const picked = selectTargets(logSoftmax as tf.Tensor2D, tf.tensor1d(targets, 'int32'));
    return [picked, tf.argMax(logSoftmax, 1)];
  });
  try {
    const [values, best] = await Promise.all([picked.data(), argmax.data()]);
    let at = 0;
    for (let r = 0; r < chunk.length; r++) {
      const contLength = contLengths[r] as number;
      const continuation = (pairs[chunk[r] as number] as TokenPair).continuation;
      let logprob = 0;
      let isGreedy = true;
      for (let j = 0; j < contLength; j++, at++) {
        logprob += values[at] as number;
        if (best[at] !== continuation[j]) isGreedy = false;
      }
      results[chunk[r] as number] = { logprob, isGreedy };
    }
  } finally {
    picked.dispose();
    argmax.dispose();
  }
}

/** lm-eval `loglikelihood` for text requests. */
export async function scoreLoglikelihood(
  model: LlamaModel,
  tokenizer: Tokenizer,
  requests: readonly LoglikelihoodRequest[],
  evaluation: EvaluationOptions = {},
  options?: ModelCallOptions,
): Promise<LoglikelihoodResult[]> {
  const pairs = requests.map((r) => encodePair(tokenizer, r.context, r.continuation));
  return scoreTokenPairs(model, pairs, evaluation, options);
}

/**
 * lm-eval `HFLM.generate_until`: requests grouped by their generation settings (stop strings and
 * token budget, as lm-eval's Collator groups by gen_kwargs), the EOS text joins the stop strings,
 * the context is left-truncated to `maxLength − maxGenTokens` (a budget of `maxLength` or more is
 * refused, as lm-eval asserts), greedy decoding in left-padded batches with a KV cache, decoded
 * without special tokens and cut at the first occurrence of each stop string.
 */
export async function generateUntil(
  model: LlamaModel,
  tokenizer: Tokenizer,
  requests: readonly GenerateRequest[],
  evaluation: EvaluationOptions = {},
  options?: ModelCallOptions,
): Promise<string[]> {
  const maxLength = evaluationMaxLength(model, evaluation);
  const batchSize = Math.max(1, evaluation.batchSize ?? 1);
  const eosIds = [
    ...new Set([
      ...(tokenizer.eosTokenId !== null ? [tokenizer.eosTokenId] : []),
      ...model.config.eosTokenIds,
    ]),
  ];
  const eosText = tokenizer.eosTokenId !== null ? tokenizer.decode([tokenizer.eosTokenId]) : null;
  const prepared = requests.map((request) => {
    const maxGen =
      request.maxGenTokens > 0 ? request.maxGenTokens : (evaluation.maxGenTokens ?? 256);
    if (maxGen >= maxLength) {
      throw new TrainerError(
        'E_SEQUENCE_TOO_LONG',
        `generation request: expected maxGenTokens below the context window of ${maxLength} tokens (${positionsOf(model)}), got ${maxGen}. Hint: lower ${SETTINGS.maxGenTokens} below ${maxLength}.`,
      );
    }
    const until = [...request.until];
    if (eosText !== null && eosText !== '' && !until.includes(eosText)) until.push(eosText);
    const ids = tokenizer.encode(request.context);
    const keep = maxLength - maxGen;
    return {
      maxGen,
      until,
      group: JSON.stringify([request.until, maxGen]),
      ids: ids.slice(Math.max(0, ids.length - keep)),
    };
  });
  type Prepared = (typeof prepared)[number];
  // Every batch shares one budget, so width + steps never passes maxLength.
  const groups = new Map<string, number[]>();
  prepared.forEach((p, i) => {
    const members = groups.get(p.group);
    if (members) members.push(i);
    else groups.set(p.group, [i]);
  });
  const results: string[] = new Array(requests.length);
  let done = 0;
  for (const members of groups.values()) {
    const order = sortByLengthDescending(members.map((i) => (prepared[i] as Prepared).ids)).map(
      (k) => members[k] as number,
    );
    for (let start = 0; start < order.length; start += batchSize) {
      checkAborted(options);
      const indices = order.slice(start, start + batchSize);
      const chunk = indices.map((i) => prepared[i] as Prepared);
      const stopsEarly = (row: number, tokens: readonly number[]): boolean => {
        const request = chunk[row] as Prepared;
        if (tokens.length >= request.maxGen) return true;
        const text = tokenizer.decode(tokens, { skipSpecialTokens: true });
        return request.until.some((stop) => stop !== '' && text.includes(stop));
      };
      const width = Math.max(...chunk.map((p) => p.ids.length));
      const budget = (chunk[0] as Prepared).maxGen;
      // The prompt pass (attention over the whole context) and the last decoding step.
      checkDeviceFits(
        model.config,
        { batch: chunk.length, steps: width, logitSteps: 1 },
        GENERATION_LIMITS,
      );
      checkDeviceFits(
        model.config,
        { batch: chunk.length, steps: 1, past: width + budget - 1, logitSteps: 1 },
        GENERATION_LIMITS,
      );
      const generated = await guardDeviceErrors(GENERATION_LIMITS, () =>
        model.generateGreedyBatch(
          chunk.map((p) => p.ids),
          budget,
          { eosTokenIds: eosIds, shouldStop: stopsEarly },
        ),
      );
      generated.forEach((tokens, r) => {
        const request = chunk[r] as Prepared;
        let text = tokenizer.decode(tokens.slice(0, request.maxGen), { skipSpecialTokens: true });
        for (const stop of request.until) if (stop !== '') text = text.split(stop)[0] as string;
        results[indices[r] as number] = text;
      });
      trimWebgpuBufferPool();
      done += chunk.length;
      options?.onProgress?.(done, requests.length);
    }
  }
  return results;
}

/**
 * `evaluation.maxLength`, defaulting to the model's positions; a window larger than those is
 * refused (lm-eval would run the model past them).
 */
function evaluationMaxLength(model: LlamaModel, evaluation: EvaluationOptions): number {
  const positions = model.config.maxPositionEmbeddings;
  const maxLength = evaluation.maxLength ?? positions;
  if (maxLength > positions) {
    throw sequenceTooLong(
      model,
      'evaluation window',
      `evaluation.maxLength ${maxLength}`,
      `lower ${SETTINGS.evalMaxLength} to at most ${positions}, or leave it unset`,
    );
  }
  return maxLength;
}
