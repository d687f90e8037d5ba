/** One loglikelihood request: score `continuation` given `context` (lm-eval `loglikelihood`). */
export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
}

/** Sum of the continuation's token log-probabilities, and whether greedy decoding yields it. */
export interface LoglikelihoodResult {
  logprob: number;
  isGreedy: boolean;
}

/** One generation request (lm-eval `generate_until`). */
export interface GenerateRequest {
  context: string;
  /** Stop strings; the output is cut before the first one found. */
  until: string[];
  maxGenTokens: number;
}

/** Whole-text loglikelihood (lm-eval `loglikelihood_rolling`). */
export interface RollingRequest {
  text: string;
}

/** Progress of a batch call, for progress bars. */
export interface ModelCallOptions {
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * The small interface every model implements to be evaluated by the @qlora bench packages.
 * Batches in, batches out, results in request order.
 */
export interface LanguageModel {
  /** A name for result files (e.g. the model path). */
  readonly name?: string;
  loglikelihood(
    requests: readonly LoglikelihoodRequest[],
    options?: ModelCallOptions,
  ): Promise<LoglikelihoodResult[]>;
  generateUntil(
    requests: readonly GenerateRequest[],
    options?: ModelCallOptions,
  ): Promise<string[]>;
  loglikelihoodRolling?(
    requests: readonly RollingRequest[],
    options?: ModelCallOptions,
  ): Promise<number[]>;
}
