/**
 * The error class `@qlora/trainer` throws. Messages read
 * `[@qlora/trainer] <what failed>: expected <x>, got <y>`, then a hint; `code` is stable
 * (`E_BACKEND`, `E_CONFIG`, `E_CONFIG_UNSUPPORTED`, `E_MODEL_DIR`, `E_PICKLE`, `E_WEIGHT_MISSING`,
 * `E_WEIGHT_SHAPE`, `E_TOKENIZER`, `E_NO_TOKENIZER`, `E_INPUT`, `E_ABORTED`, `E_LLAMA2C`, `E_OPTIMIZER`, `E_SCHEDULE`, `E_NONFINITE`,
 * `E_CHECKPOINT`, `E_RUN_LOG`, `E_TRAIN_CONFIG`, `E_RESUME`, `E_WEIGHT_DTYPE`, `E_QUANTIZATION`, `E_QUANTIZED_WEIGHTS`, `E_SAVE`,
 * `E_SEQUENCE_TOO_LONG`, `E_OUT_OF_MEMORY`, `E_GPU`).
 *
 * @example
 * ```ts
 * try { await loadModel('./gpt2'); }
 * catch (e) { if (e instanceof TrainerError && e.code === 'E_CONFIG_UNSUPPORTED') console.error(e.message); }
 * ```
 */
export class TrainerError extends Error {
  override readonly name: string = 'TrainerError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/trainer] ${message}`, options);
    this.code = code;
  }
}
