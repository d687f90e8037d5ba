import { sha256Hex } from '@qlora/metrics';
import { cutAtStopStrings } from './python-text';
import type {
  GenerateRequest,
  LanguageModel,
  LoglikelihoodRequest,
  LoglikelihoodResult,
} from './types';

/** Options of {@link createDeterministicLanguageModel}. */
export interface DeterministicModelOptions {
  name?: string;
  /** Raw text "generated" for a context, before stop strings cut it (default: a fixed sentence). */
  generate?: (context: string) => string;
}

/**
 * A model with no weights whose answers are a fixed function of the request strings, for tests
 * and dry runs. `logprob = -(u32 % 100000) / 4096 - 0.5 × codePoints(continuation)` and
 * `isGreedy = byte 4 is odd`, where `u32` is the first 4 bytes of
 * `sha256(context + "\0" + continuation)`. Every step is exact in float64, so a Python reference
 * computes the same numbers bit for bit (`tools/reference/lm_eval_prompts.py` does).
 *
 * @example
 * ```ts
 * const lm = createDeterministicLanguageModel();
 * await lm.loglikelihood([{ context: 'Q:', continuation: ' A' }]);
 * // [{ logprob: -18.9..., isGreedy: ... }] (the same on every run)
 * ```
 */
export function createDeterministicLanguageModel(
  options: DeterministicModelOptions = {},
): LanguageModel {
  const generate = options.generate ?? (() => ' I do not know.');
  return {
    name: options.name ?? 'deterministic-fake',
    async loglikelihood(requests: readonly LoglikelihoodRequest[]): Promise<LoglikelihoodResult[]> {
      return requests.map((r) => deterministicLoglikelihood(r.context, r.continuation));
    },
    async generateUntil(requests: readonly GenerateRequest[]): Promise<string[]> {
      return requests.map((r) => cutAtStopStrings(generate(r.context), r.until));
    },
  };
}

/**
 * The score {@link createDeterministicLanguageModel} gives one (context, continuation) pair.
 *
 * @example
 * ```ts
 * deterministicLoglikelihood('Q:', ' A').logprob < 0; // true
 * ```
 */
export function deterministicLoglikelihood(
  context: string,
  continuation: string,
): LoglikelihoodResult {
  const hex = sha256Hex(`${context}\u0000${continuation}`);
  const u32 = Number.parseInt(hex.slice(0, 8), 16);
  const byte4 = Number.parseInt(hex.slice(8, 10), 16);
  const codePoints = [...continuation].length;
  return { logprob: -(u32 % 100000) / 4096 - 0.5 * codePoints, isGreedy: (byte4 & 1) === 1 };
}
