/**
 * Stable codes of {@link LoraError}.
 *
 * @example
 * ```ts
 * const code: LoraErrorCode = 'E_ADAPTER_CONFIG';
 * ```
 */
export type LoraErrorCode =
  | 'E_OPTIONS'
  | 'E_NO_TARGETS'
  | 'E_ALREADY_INJECTED'
  | 'E_NO_ADAPTER'
  | 'E_ADAPTER_CONFIG'
  | 'E_ADAPTER_WEIGHTS'
  | 'E_BASE_WEIGHT'
  | 'E_MERGE'
  | 'E_IO';

/**
 * The error class `@qlora/lora` throws. Messages read
 * `[@qlora/lora] <what failed>: expected <x>, got <y>`, then a hint.
 *
 * @example
 * ```ts
 * try { loadAdapter(model, './dora-adapter'); }
 * catch (e) { if (e instanceof LoraError) e.code; } // 'E_ADAPTER_CONFIG'
 * ```
 */
export class LoraError extends Error {
  override readonly name: string = 'LoraError';
  readonly code: LoraErrorCode;

  constructor(code: LoraErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/lora] ${message}`, options);
    this.code = code;
  }
}
