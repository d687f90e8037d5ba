import type {
  GenerateRequest,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ModelCallOptions,
} from '@qlora/bench-core';
import type { Tokenizer } from '@qlora/datasets';
import * as tf from '@tensorflow/tfjs-core';
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
  const maxLength = evaluation.maxLength ?? model.config.maxPositionEmbeddings;
  const batchSize = Math.max(1, evaluation.batchSize ?? 1);
  const wholes = pairs.map((p) => [...p.context, ...p.continuation]);
  const order = sortByLengthDescending(wholes);
  const results: LoglikelihoodResult[] = new Array(pairs.length);
  let done = 0;
  for (let start = 0; start < order.length; start += batchSize) {
    checkAborted(options);
    const chunk = order.slice(start, start + batchSize);
    const inputs = chunk.map((i) => {
      const whole = wholes[i] as number[];
      return whole.slice(Math.max(0, whole.length - (maxLength + 1))).slice(0, -1);
    });
    const contLengths = chunk.map((i) => (pairs[i] as TokenPair).continuation.length);
    for (let r = 0; r < chunk.length; r++) {
      const contLength = contLengths[r] as number;
      if (contLength === 0 || contLength > maxLength || (inputs[r] as number[]).length === 0) {
        throw new TrainerError(
          'E_INPUT',
          `loglikelihood request: expected a continuation of 1..${maxLength} tokens after a non-empty context, got ${contLength} tokens`,
        );
      }
    }
    const width = Math.max(...inputs.map((row) => row.length));
    const padded = inputs.map((row) => [...row, ...new Array<number>(width - row.length).fill(0)]);
    const logits = model.forward(padded);
    try {
      for (let r = 0; r < chunk.length; r++) {
        const input = inputs[r] as number[];
        const contLength = contLengths[r] as number;
        const continuation = (pairs[chunk[r] as number] as TokenPair).continuation;
        const [logprobs, argmax] = tf.tidy(() => {
          const rows = tf.slice(logits, [r, input.length - contLength, 0], [1, contLength, -1]);
          const logSoftmax = tf.logSoftmax(tf.reshape(rows, [contLength, model.config.vocabSize]));
          const targets = tf.tensor1d(continuation as number[], 'int32');
          const picked = tf.sum(tf.mul(logSoftmax, tf.oneHot(targets, model.config.vocabSize)), 1);
          return [picked, tf.argMax(logSoftmax, 1)];
        });
        const values = await logprobs.data();
        const best = await argmax.data();
        logprobs.dispose();
        argmax.dispose();
        let logprob = 0;
        for (const value of values) logprob += value;
        const isGreedy = continuation.every((token, j) => best[j] === token);
        results[chunk[r] as number] = { logprob, isGreedy };
      }
    } finally {
      logits.dispose();
    }
    done += chunk.length;
    options?.onProgress?.(done, pairs.length);
  }
  return results;
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
 * lm-eval `HFLM.generate_until`: the EOS text joins the stop strings, the context is
 * left-truncated to `maxLength − maxGenTokens`, greedy decoding in left-padded batches with a KV
 * cache, decoded without special tokens and cut at the first occurrence of each stop string.
 */
export async function generateUntil(
  model: LlamaModel,
  tokenizer: Tokenizer,
  requests: readonly GenerateRequest[],
  evaluation: EvaluationOptions = {},
  options?: ModelCallOptions,
): Promise<string[]> {
  const maxLength = evaluation.maxLength ?? model.config.maxPositionEmbeddings;
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
    const until = [...request.until];
    if (eosText !== null && eosText !== '' && !until.includes(eosText)) until.push(eosText);
    const ids = tokenizer.encode(request.context);
    const keep = Math.max(1, maxLength - maxGen);
    return { maxGen, until, ids: ids.slice(Math.max(0, ids.length - keep)) };
  });
  const order = sortByLengthDescending(prepared.map((p) => p.ids));
  const results: string[] = new Array(requests.length);
  let done = 0;
  for (let start = 0; start < order.length; start += batchSize) {
    checkAborted(options);
    const chunk = order
      .slice(start, start + batchSize)
      .map((i) => prepared[i] as (typeof prepared)[number]);
    const stopsEarly = (row: number, tokens: readonly number[]): boolean => {
      const request = chunk[row] as (typeof prepared)[number];
      if (tokens.length >= request.maxGen) return true;
      const text = tokenizer.decode(tokens, { skipSpecialTokens: true });
      return request.until.some((stop) => stop !== '' && text.includes(stop));
    };
    const generated = await model.generateGreedyBatch(
      chunk.map((p) => p.ids),
      Math.max(...chunk.map((p) => p.maxGen)),
      { eosTokenIds: eosIds, shouldStop: stopsEarly },
    );
    generated.forEach((tokens, r) => {
      const request = chunk[r] as (typeof prepared)[number];
      let text = tokenizer.decode(tokens.slice(0, request.maxGen), { skipSpecialTokens: true });
      for (const stop of request.until) if (stop !== '') text = text.split(stop)[0] as string;
      results[order[start + r] as number] = text;
    });
    done += chunk.length;
    options?.onProgress?.(done, requests.length);
  }
  return results;
}
